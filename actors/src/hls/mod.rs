//! HLS output: a channel's live transport stream, as its main sends it, cut into short
//! segments with a sliding media playlist that HTTP serves (`/hls/<channel>/index.m3u8`).
//!
//! * `playlist.rs` (pure): the media playlist (RFC 8216, version 3) of the last segments.
//! * `segmenter.rs`: one thread per channel joins the channel's group, cuts at a PAT once
//!   a segment is `target` long (the recorder's rule, so every segment starts with
//!   PAT+PMT), times segments by the stream's own PCR, writes each segment atomically and
//!   then the playlist, and deletes segments that left the window.
//! * `actor.rs` (`HlsActor`, registered `hls`): Start/Stop per channel.

mod actor;
mod playlist;
mod segmenter;

pub use actor::{HlsActor, HlsArgs, HlsMsg, ACTOR_NAME};
pub use playlist::{MediaPlaylist, Segment};
pub use segmenter::{HlsSettings, Segmenter, PLAYLIST};
