//! headend's media work: MPEG-TS, playout, sync, render, encode and (later) recording.
//! No tonic or openraft in here: those belong to the node.

pub mod ts;
pub mod encode;
pub mod frame;
pub mod hls;
pub mod jobs;
pub mod playout;
pub mod render;
pub mod sync;
pub mod supervise;
pub mod recorder;
