//! The recorder: each node records the live output of the multicast groups it backs up,
//! so that when a channel's content fails the schedule can switch to a peer's recording.
//!
//! - `capture.rs`: one OS thread per recorded group: joins the group, strips RTP, writes
//!   the transport packets into rolling segments.
//! - `datagram.rs` (pure): RTP stripping, TS validation, where the PAT starts.
//! - `roll.rs` (pure): when a segment starts, is cut (at a PAT packet) or closed.
//! - `segment.rs`: one segment file: `<dir>/<channel>/<start_unix_ms>.ts.part` while
//!   written (buffered), fsynced and renamed to `.ts` when closed.
//! - `index.rs`: the sled index of segments ([`SegmentInfo`]), lookups by time.
//! - `recover.rs`: leftover `.part` files from a crash, closed or removed on start.
//! - `retention.rs`: age and byte-cap retention (a pure plan, then deletions of the
//!   recorder's own segments only); `disk.rs`: the free-space floor.
//! - `reader.rs`: [`RecordingReader`], the recorded packets from a given time on.
//! - `actor.rs` ([`RecorderActor`], registered as `recorder`): starts, stops, restarts
//!   the capture threads, runs retention, answers list and status.

mod actor;
mod capture;
mod datagram;
mod disk;
mod error;
mod index;
mod reader;
mod recover;
mod retention;
mod roll;
mod segment;
mod settings;
mod stats;

pub use actor::{RecorderActor, RecorderArgs, RecorderMsg, ACTOR_NAME};
pub use capture::{CaptureExit, CaptureSpec, CaptureThread};
pub use datagram::{pat_start, ts_payload, InvalidDatagram};
pub use disk::{check_floor, free_bytes};
pub use error::RecorderError;
pub use index::{validate_channel, SegmentIndex, SegmentInfo, SegmentState};
pub use reader::RecordingReader;
pub use recover::{recover_all, recover_channel, Recovered};
pub use retention::{apply_retention, plan_retention, RetentionReport};
pub use roll::{Placement, Roller};
pub use segment::{part_path, segment_path, SegmentWriter};
pub use settings::RecorderSettings;
pub use stats::{CaptureStats, ChannelRecordingStatus, RecorderStatus, StatsSnapshot};
