//! The headend node: configuration, the HTTP API, and running channels.

pub mod certs;
pub mod check;
pub mod cluster;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod demo_media;
pub mod encode;
pub mod grpc;
pub mod http;
pub mod items;
pub mod reconcile;
pub mod rtsp;
pub mod run;
pub mod scheduler;
pub mod spec;
pub mod sync;
