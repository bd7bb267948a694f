//! MPEG-2 transport stream: packets, timestamps, PSI/SI tables, PES, ID3 timed metadata,
//! the incremental parser and the TR 101 290 analyzer.
//!
//! Build side (writing tables and packets) and parse side (reading them back) live in
//! separate modules so the analyzer never trusts the writer's own code paths.

pub mod analyzer;
pub mod crc;
pub mod id3;
pub mod packet;
pub mod parser;
pub mod pes;
pub mod psi;
#[cfg(test)]
mod roundtrip;
pub mod si;
pub mod time;

pub use packet::{Pid, TsPacket, NULL_PID, TS_PACKET_SIZE};
pub use time::{MuxRate, Pcr, Pts};
