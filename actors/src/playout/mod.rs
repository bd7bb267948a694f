//! Playout: splices a channel's items into one continuous CBR transport stream, paced
//! to the wall clock and sent as UDP multicast. The output is a pure function of the
//! channel's [`schedule::Schedule`].

pub mod probe;
pub mod schedule;
pub mod sender;
pub mod spec;
pub mod store;
pub mod supervisor;
pub mod tables;
pub mod actor;
pub mod capture;
pub mod clock;
pub mod extend;
pub mod failover;
pub mod fallback;
pub mod mux;
pub mod pacer;
pub mod peer;
pub mod reader;
pub mod role;
