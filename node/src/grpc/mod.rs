//! The gRPC admin API (proto/admin.proto) with server reflection, behind mutual TLS or a
//! bearer token, on `node.cluster.admin_listen`.
//!
//! * `admin`: the service; `request_stream`, `status`: its larger calls;
//! * `convert`: proto <-> domain and channel validation (the config's own checks);
//! * `error`: domain errors -> gRPC codes, in one place; `auth`: the interceptor.

pub mod admin;
pub mod auth;
pub mod convert;
pub mod error;
pub mod request_stream;
pub mod status;

use headend_proto::admin::admin_server::AdminServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::cluster::node::stopped;
use crate::cluster::{ClusterRuntime, StartError};
use crate::config::{ClusterConfig, Config};
pub use admin::AdminService;
pub use auth::AdminAuth;
pub use error::ApiError;

/// Environment variable holding the admin bearer token.
pub const TOKEN_ENV: &str = "HEADEND_ADMIN_TOKEN";

/// The admin token: `HEADEND_ADMIN_TOKEN`, else the first line of
/// `node.cluster.admin_token_file`.
pub fn admin_token(c: &ClusterConfig) -> Result<Option<String>, StartError> {
    if let Some(t) = std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    match &c.admin_token_file {
        None => Ok(None),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| StartError::Token { path: path.clone(), source })?;
            Ok(text.lines().next().map(|l| l.trim().to_owned()).filter(|t| !t.is_empty()))
        }
    }
}

/// Starts the cluster part of the node and its admin API when the config has
/// `[node.cluster]`; `None` for a standalone node.
pub async fn start(config: &Config) -> Result<Option<ClusterRuntime>, StartError> {
    let Some(c) = &config.node.cluster else { return Ok(None) };
    let endpoints = crate::cluster::Endpoints {
        http: config.node.http_listen.to_string(),
        rtsp: config.node.rtsp_listen.map(|a| a.to_string()).unwrap_or_default(),
    };
    let token = admin_token(c)?;
    let admin_listener = tokio::net::TcpListener::bind(c.admin_listen)
        .await
        .map_err(|source| StartError::Bind { field: "node.cluster.admin_listen", addr: c.admin_listen, source })?;
    let runtime = crate::cluster::start(&config.node.id, &config.node.data_dir, &endpoints, c).await?;
    let auth = AdminAuth::new(token, runtime.tls.is_some());
    if !auth.required() {
        tracing::warn!("the admin API is not authenticated: set [node.cluster.tls] or an admin token");
    }
    let service = AdminService::new(runtime.handle().clone(), config.node.data_dir.clone());
    let mut server = Server::builder().tcp_nodelay(true);
    if let Some(tls) = &runtime.tls {
        // With a token, a client may authenticate either way: the certificate is optional.
        server = server.tls_config(tls.server(auth.has_token())).map_err(|e| StartError::Raft(format!("admin TLS: {e}")))?;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(headend_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Raft(format!("reflection: {e}")))?;
    let (a, b) = (auth.clone(), auth);
    let admin = InterceptedService::new(AdminServer::new(service), move |r| a.check(r));
    let reflection = InterceptedService::new(reflection, move |r| b.check(r));
    let incoming = TcpIncoming::from(admin_listener).with_nodelay(Some(true));
    let serve = server.add_service(admin).add_service(reflection).serve_with_incoming_shutdown(incoming, stopped(runtime.stopping()));
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin gRPC API stopped");
        }
    });
    tracing::info!(admin = %c.admin_listen, "admin gRPC API listening");
    Ok(Some(runtime))
}
