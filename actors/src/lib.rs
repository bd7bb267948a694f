//! headend's media work: MPEG-TS, playout, and (later) sync, render, encode and recording.
//! No tonic or openraft in here: those belong to the node.

pub mod ts;
pub mod encode;
pub mod playout;
pub mod sync;
pub mod supervise;
