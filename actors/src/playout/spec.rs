//! What a channel is, as far as playout is concerned: identity, service information,
//! output, PIDs and playlist. The node's configuration converts into this.

use crate::ts::{MuxRate, Pid};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Stable output PIDs of a channel's single service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPids {
    pub pmt: Pid,
    pub pcr: Pid,
    pub video: Pid,
    pub audio: Pid,
    pub metadata: Pid,
}

impl Default for ChannelPids {
    fn default() -> Self {
        ChannelPids {
            pmt: Pid::new(0x1000),
            pcr: Pid::new(0x01FF),
            video: Pid::new(0x0100),
            audio: Pid::new(0x0101),
            metadata: Pid::new(0x0102),
        }
    }
}

/// Where and how the transport stream leaves the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastOutput {
    pub group: Ipv4Addr,
    pub port: u16,
    /// Outgoing interface address; `0.0.0.0` lets the kernel choose.
    pub interface: Ipv4Addr,
    pub ttl: u32,
    pub loopback: bool,
    /// RTP (RFC 2250, payload type 33) around each datagram.
    pub rtp: bool,
    /// Source address to bind, if any.
    pub source: Option<Ipv4Addr>,
    /// Hitless mode (SMPTE 2022-7 style), in a cluster: the backup sends the identical
    /// stream to this second group (same port) while the main sends to `group`; a
    /// receiver merging both loses nothing when either path or node fails.
    pub hitless_group: Option<Ipv4Addr>,
}

/// Play order of a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayOrder {
    Sequential,
    /// Reshuffled every pass through the playlist, reproducibly from the seed.
    Shuffle { seed: u64 },
}

/// Where a channel's items come from. A folder is listed again at every pass, so items
/// dropped into it join the rotation at the next pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistSource {
    /// Every `*.ts` file in the folder, by name.
    Folder(PathBuf),
    Items(Vec<PathBuf>),
}

impl PlaylistSource {
    /// The items of one pass, in playlist order. A folder that cannot be listed gives an
    /// error naming it.
    pub fn list(&self) -> std::io::Result<Vec<PathBuf>> {
        match self {
            PlaylistSource::Items(items) => Ok(items.clone()),
            PlaylistSource::Folder(dir) => {
                let mut items = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot list playlist folder {}: {e}", dir.display()))
                })? {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ts")) && path.is_file() {
                        items.push(path);
                    }
                }
                items.sort();
                Ok(items)
            }
        }
    }
}

/// DVB service type written in the SDT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Tv,
    Radio,
}

/// Everything the playout engine needs to know about one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub id: String,
    pub name: String,
    pub service_name: String,
    pub provider: String,
    pub service_kind: ServiceKind,
    pub program_number: u16,
    pub transport_stream_id: u16,
    pub original_network_id: u16,
    pub mux_rate: MuxRate,
    pub pids: ChannelPids,
    pub output: MulticastOutput,
    pub playlist: PlaylistSource,
    pub order: PlayOrder,
    pub fallback: Option<PathBuf>,
}
