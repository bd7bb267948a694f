//! Errors of the admin API and their gRPC codes, mapped here and nowhere else.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::cluster::ClusterError;

/// Metadata key carrying the leader's name when a write could not reach it.
pub const LEADER_METADATA: &str = "x-headend-leader";
/// Metadata key carrying the admin address of the node that plays a channel.
pub const NODE_METADATA: &str = "x-headend-node-admin";

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request was wrong; `field` is the request field to fix.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("no channel {0:?}; fix: ListChannels shows the channel ids")]
    NoChannel(String),
    #[error("{0}")]
    NotFound(String),
    /// The channel exists but this node does not play it.
    #[error("channel {channel:?} is not played on this node; fix: ask {node} (admin API at {admin_addr})")]
    NotHere { channel: String, node: String, admin_addr: String },
    #[error("channel {0:?} does not answer on this node (it may be restarting); fix: retry")]
    ChannelUnavailable(String),
    /// The cluster is not set up for what was asked.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl ApiError {
    /// An invalid argument naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidArgument { field: field.into(), message: message.into() }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::NoChannel(_) | ApiError::NotFound(_) => Code::NotFound,
            ApiError::NotHere { .. } | ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::ChannelUnavailable(_) => Code::Unavailable,
            ApiError::Cluster(e) => match e {
                ClusterError::NoLeader | ClusterError::NotCommitted { .. } | ClusterError::Forward { .. } => Code::Unavailable,
                ClusterError::UnknownMember(_) => Code::NotFound,
                ClusterError::NotALearner { .. } | ClusterError::Membership(_) => Code::FailedPrecondition,
                ClusterError::Rejected(_) => Code::Aborted,
                ClusterError::Stopped(_) => Code::Internal,
            },
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let mut status = Status::new(e.code(), e.to_string());
        let meta = match &e {
            ApiError::Cluster(ClusterError::Forward { leader, .. }) => Some((LEADER_METADATA, leader.clone())),
            ApiError::NotHere { admin_addr, .. } => Some((NODE_METADATA, admin_addr.clone())),
            _ => None,
        };
        if let Some((key, value)) = meta {
            if let Ok(v) = MetadataValue::try_from(value.as_str()) {
                status.metadata_mut().insert(key, v);
            }
        }
        status
    }
}
