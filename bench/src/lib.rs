//! Helpers shared by the benchmark binaries.

pub mod host;
