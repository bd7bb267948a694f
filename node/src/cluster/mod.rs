//! The cluster control plane of a node: openraft on sled with a tonic network.
//!
//! * `types`: the openraft type configuration; node ids derived from node names.
//! * `state`: the replicated state ([`state::ClusterState`]) and its commands.
//! * `store`: the durable log and the state machine with snapshots (sled).
//! * `network`, `service`: Raft RPCs over the `Cluster` gRPC service.
//! * `proposal`, `handle`: writes, membership changes, forwarding to the leader.
//! * `node`: starting a node (initialize or join), its heartbeat (lease) and the
//!   leader's scheduler loop.
//! * `tls`: mutual TLS material.

pub mod error;
pub mod handle;
pub mod network;
pub mod node;
pub mod proposal;
pub mod service;
pub mod state;
pub mod store;
pub mod tls;
pub mod types;

pub use error::{ClusterError, StartError};
pub use handle::ClusterHandle;
pub use node::{start, ClusterRuntime, Endpoints};
pub use proposal::{Outcome, Proposal};
pub use state::{ClusterState, Command, CommandResult};
