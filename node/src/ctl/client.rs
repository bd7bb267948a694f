//! The admin API client of `headend ctl`: TLS with a client certificate and/or a bearer
//! token on every call.

use headend_proto::admin::admin_client::AdminClient;
use std::path::PathBuf;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Status};

use crate::cluster::tls::{TlsError, CLUSTER_TLS_NAME};

/// How to reach and authenticate to a node's admin API.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `host:port` of `node.cluster.admin_listen`.
    pub addr: String,
    pub token: Option<String>,
    /// The cluster CA (PEM): connect with TLS.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Adds `authorization: Bearer <token>` when a token is set.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// An admin client.
pub type Admin = AdminClient<InterceptedService<Channel, Bearer>>;

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("admin address {addr:?}: {message}; fix: use host:port of node.cluster.admin_listen")]
    Address { addr: String, message: String },
    #[error("--token: not a valid header value; fix: use the token as written in the token file")]
    Token,
}

impl Connection {
    /// The gRPC channel (connected lazily).
    pub fn channel(&self) -> Result<Channel, ConnectError> {
        let read = |what, path: &PathBuf| {
            std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.clone(), source })
        };
        let client_tls = match &self.ca {
            Some(ca) => {
                crate::cluster::tls::install_crypto_provider();
                let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("ca", ca)?)).domain_name(CLUSTER_TLS_NAME);
                if let Some((cert, key)) = &self.identity {
                    tls = tls.identity(Identity::from_pem(read("cert", cert)?, read("key", key)?));
                }
                Some(tls)
            }
            None => None,
        };
        crate::cluster::network::channel(&self.addr, client_tls.as_ref())
            .map_err(|e| ConnectError::Address { addr: self.addr.clone(), message: e.to_string() })
    }

    /// An admin client with the bearer token attached.
    pub fn admin(&self) -> Result<Admin, ConnectError> {
        let bearer = match &self.token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| ConnectError::Token)?),
            None => None,
        };
        Ok(AdminClient::with_interceptor(self.channel()?, Bearer(bearer)))
    }
}
