//! TLS settings of the cluster: every node certificate (made by `headend certs`) carries
//! the name [`CLUSTER_TLS_NAME`], which clients verify against the cluster CA, so peers
//! can be reached by any address.

use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::ClusterTls;

/// The DNS name in every node certificate; clients verify it.
pub const CLUSTER_TLS_NAME: &str = "headend.cluster";

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} file {}: {source}; fix: check the path (node.cluster.tls.{what}, or ctl --{what}; `headend certs` makes the files)", path.display())]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Installs ring as the process's rustls crypto provider (once; a provider installed
/// before is kept). Both ring and aws-lc-rs are linked into headend, so rustls cannot
/// choose by itself.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// PEM material of one node or client.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl TlsFiles {
    /// Reads the files named in `[node.cluster.tls]`.
    pub fn load(tls: &ClusterTls) -> Result<Self, TlsError> {
        Self::from_paths(&tls.ca, &tls.cert, &tls.key)
    }

    /// Reads a CA, a certificate and a key.
    pub fn from_paths(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        install_crypto_provider();
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_path_buf(), source })
        };
        Ok(TlsFiles { ca: read("ca", ca)?, cert: read("cert", cert)?, key: read("key", key)? })
    }

    /// Server side: our identity; client certificates must chain to the CA (optional
    /// when `client_auth_optional`, e.g. an admin API that also takes a bearer token).
    pub fn server(&self, client_auth_optional: bool) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.ca))
            .client_auth_optional(client_auth_optional)
    }

    /// Client side: trust only the cluster CA, present our certificate.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
            .domain_name(CLUSTER_TLS_NAME)
    }
}
