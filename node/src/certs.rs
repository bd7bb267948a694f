//! `headend certs`: a development CA and certificates for nodes and admin clients (rcgen).
//!
//! Files in the output directory: `ca.pem`, `ca.key` (kept to sign more certificates
//! later), and `<name>.pem` + `<name>.key` per node and client. Node certificates carry
//! the cluster name [`CLUSTER_TLS_NAME`] (what peers verify), the node name, `localhost`
//! and the given hosts; every certificate can act as server and client.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

use crate::cluster::tls::CLUSTER_TLS_NAME;

const CA_NAME: &str = "headend development CA";

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{}: {source}; fix: check the directory and its permissions", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate for {name:?}: {source}; fix: use plain host names and IP addresses")]
    Rcgen {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("{name:?} is not a usable certificate name; fix: use 1..=63 characters from [a-z0-9-]")]
    BadName { name: String },
}

/// What to make.
#[derive(Debug, Clone, Default)]
pub struct CertsRequest {
    pub dir: PathBuf,
    /// Node names (their `node.id`).
    pub nodes: Vec<String>,
    /// Extra host names or IP addresses for every node certificate.
    pub hosts: Vec<String>,
    /// Admin client names (for `headend ctl --cert`).
    pub clients: Vec<String>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "headend");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), CertsError> {
    let io = |source| CertsError::Io { path: path.to_path_buf(), source };
    std::fs::write(path, text).map_err(io)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// Makes the CA (or reuses `ca.key` + `ca.pem` already in `dir`) and the requested
/// certificates; returns the files written.
pub fn make(req: &CertsRequest) -> Result<Vec<PathBuf>, CertsError> {
    let dir = &req.dir;
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Io { path: dir.clone(), source })?;
    let rc = |name: &str| {
        let name = name.to_owned();
        move |source| CertsError::Rcgen { name, source }
    };
    let mut written = Vec::new();
    let (ca_key_path, ca_pem_path) = (dir.join("ca.key"), dir.join("ca.pem"));
    let ca_key = if ca_key_path.is_file() && ca_pem_path.is_file() {
        let pem = std::fs::read_to_string(&ca_key_path).map_err(|source| CertsError::Io { path: ca_key_path.clone(), source })?;
        KeyPair::from_pem(&pem).map_err(rc("ca"))?
    } else {
        let key = KeyPair::generate().map_err(rc("ca"))?;
        let cert = ca_params().self_signed(&key).map_err(rc("ca"))?;
        write(&ca_key_path, &key.serialize_pem(), true)?;
        write(&ca_pem_path, &cert.pem(), false)?;
        written.extend([ca_key_path, ca_pem_path]);
        key
    };
    let issuer = Issuer::new(ca_params(), ca_key);
    let leaves = req.nodes.iter().map(|n| (n, true)).chain(req.clients.iter().map(|c| (c, false)));
    for (name, node) in leaves {
        let valid = (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(CertsError::BadName { name: name.clone() });
        }
        let mut sans = vec![name.clone()];
        if node {
            sans.extend([CLUSTER_TLS_NAME.to_owned(), "localhost".to_owned()]);
            sans.extend(req.hosts.iter().cloned());
        }
        let mut params = CertificateParams::new(sans).map_err(rc(name))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.as_str());
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate().map_err(rc(name))?;
        let cert = params.signed_by(&key, &issuer).map_err(rc(name))?;
        let (pem, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        write(&pem, &cert.pem(), false)?;
        write(&key_path, &key.serialize_pem(), true)?;
        written.extend([pem, key_path]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_a_ca_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let req = super::CertsRequest { dir: dir.path().into(), nodes: vec!["n1".into()], hosts: vec!["127.0.0.1".into()], clients: vec![] };
        let first = super::make(&req).unwrap();
        assert_eq!(first.len(), 4);
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let more = super::CertsRequest { nodes: vec![], clients: vec!["admin".into()], ..req };
        assert_eq!(super::make(&more).unwrap().len(), 2, "the CA is reused");
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        assert!(super::make(&super::CertsRequest { nodes: vec!["Bad Name".into()], ..more }).is_err());
    }
}
