//! headend gRPC definitions. Generated from `proto/admin.proto` and `proto/cluster.proto`
//! by `build.rs` (tonic-prost-build); conversions to domain types live in `headend-node`.

/// The operator admin API (`headend.admin.v1`).
#[allow(missing_docs, clippy::all)]
pub mod admin {
    tonic::include_proto!("headend.admin.v1");
}

/// Node-to-node RPCs (`headend.cluster.v1`).
#[allow(missing_docs, clippy::all)]
pub mod cluster {
    tonic::include_proto!("headend.cluster.v1");
}

/// Encoded file descriptor set of both packages, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("headend_descriptor");
