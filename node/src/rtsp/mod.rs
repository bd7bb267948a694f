//! RTSP delivery (RFC 2326 subset): a channel requested with `PROTOCOL_RTSP` is served
//! by its main at `rtsp://<node.rtsp_listen>/<channel>` as one MPEG-TS RTP stream
//! (payload type 33, RFC 2250), over the RTSP connection (interleaved) or RTP/UDP
//! unicast. The server relays the node's own multicast output of the channel.
//!
//! * `message.rs` (pure): request parsing (incremental), responses, Transport, SDP.
//! * `server.rs`: the listener, one task per connection, one relay task per PLAY.

pub mod message;
pub mod server;

pub use server::{serve, RtspChannels};
