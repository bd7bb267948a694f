//! headend gRPC definitions. Generated from `admin.proto` and `cluster.proto` by
//! `build.rs` (tonic-prost-build); conversions to domain types live in `headend-node`.
