//! The headend node: configuration, the HTTP API, and running channels.

pub mod check;
pub mod config;
pub mod demo;
pub mod http;
pub mod run;
pub mod spec;
pub mod sync;
