//! Turns a validated channel configuration into the playout engine's channel spec.

use crate::config::{ChannelConfig, PlayOrder, PlaylistSourceKind, ServiceType};
use headend_actors::playout::spec::{
    ChannelPids, ChannelSpec, MulticastOutput, PlayOrder as Order, PlaylistSource, ServiceKind,
};
use headend_actors::ts::{MuxRate, Pid};
use std::path::{Path, PathBuf};

/// Where a rendered channel's encoded items go (and its playlist folder).
pub fn items_dir(data_dir: &Path, channel_id: &str) -> PathBuf {
    data_dir.join("channels").join(channel_id).join("items")
}

/// The playout spec of a channel on a node with this data folder and sync cache folder
/// (`crate::sync::cache_root`). The config must have passed `validate()`. A rendered
/// channel plays its items folder; a synced channel without a playlist source plays its
/// cache folder.
pub fn channel_spec(c: &ChannelConfig, data_dir: &Path, cache_root: &Path) -> ChannelSpec {
    let playlist = match c.playlist.source.kind() {
        _ if c.render.is_some() => PlaylistSource::Folder(items_dir(data_dir, &c.id)),
        Some(PlaylistSourceKind::Folder(dir)) => PlaylistSource::Folder(dir.to_path_buf()),
        Some(PlaylistSourceKind::Items(items)) => PlaylistSource::Items(items.to_vec()),
        None => crate::sync::cache_folder(c, cache_root).map_or(PlaylistSource::Items(Vec::new()), PlaylistSource::Folder),
    };
    ChannelSpec {
        id: c.id.clone(),
        name: c.name.clone(),
        service_name: c.service_name().to_string(),
        provider: c.provider.clone(),
        service_kind: match c.service_type {
            ServiceType::Tv => ServiceKind::Tv,
            ServiceType::Radio => ServiceKind::Radio,
        },
        program_number: c.program_number,
        transport_stream_id: c.transport_stream_id,
        original_network_id: c.original_network_id,
        mux_rate: MuxRate::new(c.mux_rate),
        pids: ChannelPids {
            pmt: Pid::new(c.pids.pmt),
            pcr: Pid::new(c.pids.pcr),
            video: Pid::new(c.pids.video),
            audio: Pid::new(c.pids.audio),
            metadata: Pid::new(c.pids.metadata),
        },
        output: MulticastOutput {
            group: c.multicast.group,
            port: c.multicast.port,
            interface: c.multicast.interface,
            ttl: c.multicast.ttl as u32,
            loopback: c.multicast.loopback,
            rtp: c.multicast.rtp,
            source: c.multicast.source,
            hitless_group: c.multicast.hitless_group,
        },
        playlist,
        order: match c.playlist.order {
            PlayOrder::Sequential => Order::Sequential,
            PlayOrder::Shuffle => Order::Shuffle { seed: c.playlist.shuffle_seed.unwrap_or(0) },
        },
        fallback: c.playlist.fallback.clone(),
    }
}
