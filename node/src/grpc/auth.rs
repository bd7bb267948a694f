//! Admin API authentication: a client certificate that chained to the cluster CA (checked
//! by rustls during the TLS handshake), or `authorization: Bearer <token>`.

use tonic::{Request, Status};

/// How admin calls are authenticated.
#[derive(Clone)]
pub struct AdminAuth {
    token: Option<String>,
    mtls: bool,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").field("token", &self.token.as_ref().map(|_| "<set>")).field("mtls", &self.mtls).finish()
    }
}

impl AdminAuth {
    /// `token`: the bearer token, if any; `mtls`: the server runs TLS with the cluster CA
    /// as client root. With neither, calls are not authenticated.
    pub fn new(token: Option<String>, mtls: bool) -> Self {
        AdminAuth { token: token.filter(|t| !t.is_empty()), mtls }
    }

    /// Whether a bearer token is accepted.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether any authentication is required.
    pub fn required(&self) -> bool {
        self.token.is_some() || self.mtls
    }

    /// The interceptor: lets the call through or answers `Unauthenticated`.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.required() {
            return Ok(request);
        }
        if self.mtls && request.peer_certs().is_some_and(|c| !c.is_empty()) {
            return Ok(request);
        }
        let Some(expected) = &self.token else {
            return Err(Status::unauthenticated(
                "no client certificate; fix: connect with a certificate signed by the cluster CA (headend certs)",
            ));
        };
        match request.metadata().get("authorization").map(|v| v.to_str()) {
            None => Err(Status::unauthenticated(
                "no credentials; fix: send `authorization: Bearer <token>` (headend ctl --token) or a client certificate",
            )),
            Some(Ok(value)) => match value.strip_prefix("Bearer ") {
                Some(token) if constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) => Ok(request),
                Some(_) => Err(Status::unauthenticated("authorization: the bearer token does not match; fix: use the token of node.cluster.admin_token_file / HEADEND_ADMIN_TOKEN")),
                None => Err(Status::unauthenticated("authorization: not a bearer token; fix: send `authorization: Bearer <token>`")),
            },
            Some(Err(_)) => Err(Status::unauthenticated("authorization: not ASCII; fix: send `authorization: Bearer <token>`")),
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = value {
            r.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        r
    }

    #[test]
    fn bearer_token_is_checked() {
        let auth = AdminAuth::new(Some("s3cret".into()), false);
        assert!(auth.check(with_auth(Some("Bearer s3cret"))).is_ok());
        for bad in [None, Some("Bearer nope"), Some("Basic s3cret"), Some("Bearer s3cre")] {
            let e = auth.check(with_auth(bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn mtls_without_a_certificate_is_rejected() {
        let auth = AdminAuth::new(None, true);
        assert_eq!(auth.check(with_auth(Some("Bearer x"))).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(AdminAuth::new(None, false).check(with_auth(None)).is_ok());
    }
}
