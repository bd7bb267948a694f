//! Conversions between admin.proto messages and the domain types, and the validation of
//! a channel through the same checks a `[[channels]]` table gets.

use headend_proto::admin as pb;
use std::net::Ipv4Addr;

use super::error::ApiError;
use crate::cluster::state::{AudioCodec, ChannelRecord, ClusterState, GroupRoles, Protocol, StreamFormat, VideoCodec};
use crate::config::{ChannelConfig, Config, NodeConfig};

/// The proto form of a channel and the roles of its group.
pub fn channel_to_proto(rec: &ChannelRecord, roles: Option<&GroupRoles>) -> pb::Channel {
    let c = &rec.config;
    pb::Channel {
        id: c.id.clone(),
        name: c.name.clone(),
        service_name: c.service_name().to_owned(),
        provider: c.provider.clone(),
        program_number: c.program_number.into(),
        mux_rate: c.mux_rate,
        multicast: Some(pb::Multicast {
            group: c.multicast.group.to_string(),
            port: c.multicast.port.into(),
            interface: c.multicast.interface.to_string(),
            ttl: c.multicast.ttl.into(),
            loopback: c.multicast.loopback,
            rtp: c.multicast.rtp,
        }),
        playlist: Some(pb::Playlist {
            folder: c.playlist.source.folder.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            items: c.playlist.source.items.iter().flatten().map(|p| p.display().to_string()).collect(),
            shuffle: c.playlist.order == crate::config::PlayOrder::Shuffle,
            fallback: c.playlist.fallback.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        }),
        genre: rec.genre.clone(),
        format: rec.format.as_ref().map(format_to_proto),
        template: rec.template.clone(),
        revision: rec.revision,
        roles: roles.map(|g| roles_to_proto(&rec.group_key(), g)),
    }
}

/// The proto form of a group's roles.
pub fn roles_to_proto(group: &str, g: &GroupRoles) -> pb::GroupRoles {
    pb::GroupRoles {
        group: group.to_owned(),
        main: g.main.clone().unwrap_or_default(),
        backup: g.backup.clone().unwrap_or_default(),
        epoch: g.epoch,
    }
}

fn format_to_proto(f: &StreamFormat) -> pb::StreamFormat {
    pb::StreamFormat {
        video_codec: match f.video_codec {
            VideoCodec::H264 => pb::VideoCodec::H264,
            VideoCodec::Mpeg2 => pb::VideoCodec::Mpeg2,
            VideoCodec::Hevc => pb::VideoCodec::Hevc,
            VideoCodec::None => pb::VideoCodec::None,
        } as i32,
        width: f.width,
        height: f.height,
        video_bitrate: f.video_bitrate,
        audio_codec: match f.audio_codec {
            AudioCodec::Aac => pb::AudioCodec::Aac,
            AudioCodec::Mp2 => pb::AudioCodec::Mp2,
            AudioCodec::Ac3 => pb::AudioCodec::Ac3,
        } as i32,
        audio_bitrate: f.audio_bitrate,
    }
}

/// Default audio bit rate when a request leaves it at 0.
pub const DEFAULT_AUDIO_BITRATE: u64 = 128_000;

/// The domain form of a requested format; `prefix` is the request's field (`format`).
pub fn format_from_proto(f: &pb::StreamFormat, prefix: &str) -> Result<StreamFormat, ApiError> {
    let field = |name: &str| format!("{prefix}.{name}");
    let video_codec = match pb::VideoCodec::try_from(f.video_codec) {
        Ok(pb::VideoCodec::H264) => VideoCodec::H264,
        Ok(pb::VideoCodec::Mpeg2) => VideoCodec::Mpeg2,
        Ok(pb::VideoCodec::Hevc) => VideoCodec::Hevc,
        Ok(pb::VideoCodec::None) => VideoCodec::None,
        _ => return Err(ApiError::invalid(field("video_codec"), "missing or unknown; fix: VIDEO_CODEC_H264, _MPEG2, _HEVC or _NONE (radio)")),
    };
    let audio_codec = match pb::AudioCodec::try_from(f.audio_codec) {
        Ok(pb::AudioCodec::Aac) => AudioCodec::Aac,
        Ok(pb::AudioCodec::Mp2) => AudioCodec::Mp2,
        Ok(pb::AudioCodec::Ac3) => AudioCodec::Ac3,
        _ => return Err(ApiError::invalid(field("audio_codec"), "missing or unknown; fix: AUDIO_CODEC_AAC, _MP2 or _AC3")),
    };
    if video_codec != VideoCodec::None {
        if !(16..=7680).contains(&f.width) {
            return Err(ApiError::invalid(field("width"), format!("{} is out of range; fix: use 16..=7680 pixels", f.width)));
        }
        if !(16..=4320).contains(&f.height) {
            return Err(ApiError::invalid(field("height"), format!("{} is out of range; fix: use 16..=4320 lines", f.height)));
        }
        if !(50_000..=60_000_000).contains(&f.video_bitrate) {
            return Err(ApiError::invalid(
                field("video_bitrate"),
                format!("{} bit/s is out of range; fix: use 50000..=60000000 bit/s", f.video_bitrate),
            ));
        }
    }
    let audio_bitrate = if f.audio_bitrate == 0 { DEFAULT_AUDIO_BITRATE } else { f.audio_bitrate };
    if !(16_000..=1_000_000).contains(&audio_bitrate) {
        return Err(ApiError::invalid(field("audio_bitrate"), format!("{audio_bitrate} bit/s is out of range; fix: use 16000..=1000000 bit/s (0: 128000)")));
    }
    let (width, height, video_bitrate) = if video_codec == VideoCodec::None { (0, 0, 0) } else { (f.width, f.height, f.video_bitrate) };
    Ok(StreamFormat { video_codec, width, height, video_bitrate, audio_codec, audio_bitrate })
}

/// The domain form of a requested protocol.
pub fn protocol_from_proto(p: i32) -> Result<Protocol, ApiError> {
    match pb::Protocol::try_from(p) {
        Ok(pb::Protocol::Multicast) => Ok(Protocol::Multicast),
        Ok(pb::Protocol::Hls) => Ok(Protocol::Hls),
        Ok(pb::Protocol::Rtsp) => Ok(Protocol::Rtsp),
        _ => Err(ApiError::invalid("protocol", "missing or unknown; fix: use PROTOCOL_MULTICAST, PROTOCOL_HLS or PROTOCOL_RTSP")),
    }
}

/// An IPv4 address from a request field.
pub fn ipv4(field: &str, value: &str) -> Result<Ipv4Addr, ApiError> {
    value.trim().parse().map_err(|_| ApiError::invalid(field, format!("{value:?} is not an IPv4 address; fix: use dotted quad such as 239.255.0.1")))
}

/// A port from a request field (range checked by the config validation).
pub fn port(field: &str, value: u32) -> Result<u16, ApiError> {
    u16::try_from(value).map_err(|_| ApiError::invalid(field, format!("{value} is not a UDP port; fix: use 1..=65535")))
}

/// The lowest program number no other channel uses.
pub fn free_program_number(state: &ClusterState, except: &str) -> u16 {
    let used: std::collections::BTreeSet<u16> =
        state.channels.values().filter(|c| c.config.id != except).map(|c| c.config.program_number).collect();
    (1..=u16::MAX).find(|n| !used.contains(n)).unwrap_or(1)
}

/// The channel of an `UpdateChannel` request (`channel.*` fields).
pub fn channel_from_proto(p: &pb::Channel, state: &ClusterState) -> Result<ChannelRecord, ApiError> {
    let m = p.multicast.as_ref().ok_or_else(|| ApiError::invalid("channel.multicast", "missing; fix: set group and port"))?;
    let playlist = p.playlist.clone().unwrap_or_default();
    let group = ipv4("channel.multicast.group", &m.group)?;
    let interface = if m.interface.is_empty() { Ipv4Addr::UNSPECIFIED } else { ipv4("channel.multicast.interface", &m.interface)? };
    let program_number = match p.program_number {
        0 => state.channels.get(&p.id).map_or_else(|| free_program_number(state, &p.id), |c| c.config.program_number),
        n => u16::try_from(n).map_err(|_| ApiError::invalid("channel.program_number", format!("{n} is out of range; fix: use 1..=65535")))?,
    };
    let ttl = match m.ttl {
        0 => 16,
        t => u8::try_from(t).map_err(|_| ApiError::invalid("channel.multicast.ttl", format!("{t} is out of range; fix: use 1..=255")))?,
    };
    let source = match (playlist.folder.is_empty(), playlist.items.is_empty()) {
        (false, true) => serde_json::json!({ "folder": playlist.folder }),
        (true, false) => serde_json::json!({ "items": playlist.items }),
        (false, false) => serde_json::json!({ "folder": playlist.folder, "items": playlist.items }),
        (true, true) => serde_json::json!({}),
    };
    let mut json = serde_json::json!({
        "id": p.id,
        "name": p.name,
        "program_number": program_number,
        "mux_rate": p.mux_rate,
        "multicast": {
            "group": group.to_string(), "port": port("channel.multicast.port", m.port)?, "interface": interface.to_string(),
            "ttl": ttl, "loopback": m.loopback, "rtp": m.rtp,
        },
        "playlist": {
            "source": source,
            "order": if playlist.shuffle { "shuffle" } else { "sequential" },
        },
    });
    if !p.service_name.is_empty() {
        json["service_name"] = p.service_name.clone().into();
    }
    if !p.provider.is_empty() {
        json["provider"] = p.provider.clone().into();
    }
    if !playlist.fallback.is_empty() {
        json["playlist"]["fallback"] = playlist.fallback.clone().into();
    }
    let mut config: ChannelConfig =
        serde_json::from_value(json).map_err(|e| ApiError::invalid("channel", format!("{e}; fix: correct the channel fields")))?;
    if config.service_name.is_none() {
        config.service_name = Some(config.name.clone());
    }
    let format = p.format.as_ref().map(|f| format_from_proto(f, "channel.format")).transpose()?;
    validate(&config, state, &|path| format!("channel.{path}"))?;
    Ok(ChannelRecord { config, genre: p.genre.clone(), format, protocol: Protocol::Multicast, template: p.template.clone(), revision: 0 })
}

/// Checks `config` as a `[[channels]]` table next to the cluster's other channels (ids,
/// names, program numbers and destinations unique). The first problem becomes an
/// `InvalidArgument` naming the request field `rename(config path)`.
pub fn validate(config: &ChannelConfig, state: &ClusterState, rename: &dyn Fn(&str) -> String) -> Result<(), ApiError> {
    let mut channels: Vec<ChannelConfig> =
        state.channels.values().filter(|c| c.config.id != config.id).map(|c| c.config.clone()).collect();
    channels.push(config.clone());
    let index = channels.len() - 1;
    let all = Config { version: 1, node: NodeConfig::default(), channels, source_name: "request".into() };
    let Err(errors) = all.validate() else { return Ok(()) };
    let labels = [format!("channels[{:?}]", config.id), format!("channels[{index}]")];
    for issue in errors.iter() {
        let text = issue.to_string();
        let Some(label) = labels.iter().find(|l| text.starts_with(l.as_str())) else { continue };
        let (path, message) = text.split_once(": ").unwrap_or((text.as_str(), ""));
        let field = rename(path[label.len()..].trim_start_matches('.'));
        return Err(ApiError::invalid(field, message));
    }
    Ok(())
}
