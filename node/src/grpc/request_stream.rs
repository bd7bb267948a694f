//! `RequestStream` (the patent's claim 1): a content provider's request becomes a channel
//! record: a channel named after the request's name or genre, its format, its
//! destination, its UI template, and a mux rate that carries the requested bit rates.

use headend_proto::admin as pb;
use std::collections::BTreeMap;
use std::path::Path;

use super::convert::{format_from_proto, free_program_number, ipv4, port, protocol_from_proto, validate};
use super::error::ApiError;
use crate::cluster::state::{AudioCodec, ChannelRecord, ClusterState, StreamFormat, VideoCodec};
use crate::cluster::types::ClusterNode;
use crate::config::{required_mux_rate, AudioFormat, ChannelConfig, ChannelEncode, VideoFormat, MUX_RATE_RANGE};

/// A channel id from a name or genre: lower case, `[a-z0-9-]`, at most 63 characters.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(63).collect()
}

/// `rate` rounded up to a step of 100 kbit/s, at least the smallest mux rate.
fn mux_rate_step(rate: u64) -> u64 {
    rate.div_ceil(100_000).saturating_mul(100_000).max(*MUX_RATE_RANGE.start())
}

/// The mux rate for a format: payload + overhead, rounded up to 100 kbit/s.
fn mux_rate(video: u64, audio: u64) -> u64 {
    mux_rate_step(ChannelConfig::min_mux_rate_for(video + audio))
}

/// The channel record a request asks for, created or updated over `state`'s channel of
/// the same id. `data_dir` gives the default media folder `<data_dir>/cache/<genre or id>`.
pub fn record(req: &pb::RequestStreamRequest, state: &ClusterState, data_dir: &Path) -> Result<ChannelRecord, ApiError> {
    use pb::request_stream_request::Channel;
    let (field, name, genre) = match &req.channel {
        Some(Channel::Name(n)) => ("name", n.trim().to_owned(), String::new()),
        Some(Channel::Genre(g)) => ("genre", g.trim().to_owned(), g.trim().to_owned()),
        None => return Err(ApiError::invalid("channel", "missing; fix: set name or genre")),
    };
    let id = slug(&name);
    if id.is_empty() {
        return Err(ApiError::invalid(field, format!("{name:?} has no letter or digit; fix: name the channel or genre")));
    }
    let format = req.format.as_ref().ok_or_else(|| {
        ApiError::invalid("format", "missing; fix: set video_codec, width, height, video_bitrate and audio_codec")
    })?;
    let format = format_from_proto(format, "format")?;
    let protocol = protocol_from_proto(req.protocol)?;
    let dest = req.destination.as_ref().ok_or_else(|| ApiError::invalid("destination", "missing; fix: set group and port"))?;
    let group = ipv4("destination.group", &dest.group)?;
    let port = port("destination.port", dest.port)?;
    let template = req.template.trim();
    let render = req.render || !template.is_empty();
    let media = media(req.media_folder.trim(), data_dir, if genre.is_empty() { &id } else { &genre });
    let program_number = state.channels.get(&id).map_or_else(|| free_program_number(state, &id), |c| c.config.program_number);
    let mut json = serde_json::json!({
        "id": id,
        "name": name,
        "program_number": program_number,
        "mux_rate": mux_rate(format.video_bitrate, format.audio_bitrate),
        "service_type": if format.video_bitrate == 0 { "radio" } else { "tv" },
        "multicast": { "group": group.to_string(), "port": port },
    });
    match (&media, render) {
        (Media::Folder(f), false) => json["playlist"] = serde_json::json!({ "source": { "folder": f } }),
        (Media::Folder(f), true) => json["render"] = serde_json::json!({ "template": template_or_default(template), "media": f }),
        (Media::Synced { .. }, true) => json["render"] = serde_json::json!({ "template": template_or_default(template) }),
        (Media::Synced { .. }, false) => {}
    }
    if let Media::Synced { url, folder, options } = &media {
        json["sync"] = serde_json::json!({ "source": url, "folder": folder, "options": options });
    }
    if render {
        let encode = encode_config(&format)?;
        // The items' own rate (with TS overhead) decides the channel's mux rate.
        json["mux_rate"] = rendered_mux_rate(encode.item_rate()).into();
        json["encode"] = serde_json::to_value(&encode).map_err(|e| ApiError::invalid("format", e.to_string()))?;
    }
    let mut config: ChannelConfig = serde_json::from_value(json).map_err(|e| ApiError::invalid("channel", e.to_string()))?;
    if let Some(existing) = state.channels.get(&id) {
        // Keep what the request does not speak about (PIDs, interface, TTL, ...).
        let mut kept = existing.config.clone();
        kept.name = config.name.clone();
        kept.service_name = Some(config.name.clone());
        kept.mux_rate = config.mux_rate;
        kept.service_type = config.service_type;
        kept.multicast.group = group;
        kept.multicast.port = port;
        if req.media_folder.trim().is_empty() {
            // Same media as before; only whether (and how) they are rendered follows the
            // request. A folder moves between the playlist and the render media.
            let folder = existing.config.render.as_ref().and_then(|r| r.media.clone()).or_else(|| existing.config.playlist.source.folder.clone());
            match config.render.clone() {
                Some(mut r) => {
                    r.media = folder;
                    r.allow_network = existing.config.render.as_ref().is_some_and(|e| e.allow_network);
                    kept.render = Some(r);
                    kept.playlist.source = Default::default();
                }
                None => {
                    kept.render = None;
                    if folder.is_some() {
                        kept.playlist.source.folder = folder;
                    }
                }
            }
        } else {
            kept.playlist = config.playlist.clone();
            kept.sync = config.sync.clone();
            kept.render = config.render.clone();
        }
        kept.encode = config.encode.clone();
        config = kept;
    } else {
        config.service_name = Some(config.name.clone());
    }
    let rename = |path: &str| match path {
        "multicast" => "destination".to_owned(),
        "multicast.group" => "destination.group".to_owned(),
        "multicast.port" => "destination.port".to_owned(),
        "mux_rate" => "format.video_bitrate".to_owned(),
        "id" | "name" | "service_name" => field.to_owned(),
        p if p.starts_with("playlist") || p.starts_with("sync") || p == "render.media" => "media_folder".to_owned(),
        "render.template" => "template".to_owned(),
        p if p.starts_with("encode.") => format!("format.{}", &p["encode.".len()..]),
        other => other.to_owned(),
    };
    validate(&config, state, &rename)?;
    Ok(ChannelRecord { config, genre, format: Some(format), protocol, template: req.template.trim().to_owned(), revision: 0 })
}

/// The mux rate for rendered items of `item_rate` bit/s (TS overhead included): the
/// items plus the channel's own tables, in steps of 100 kbit/s.
fn rendered_mux_rate(item_rate: u64) -> u64 {
    let mut rate = mux_rate_step(item_rate);
    while required_mux_rate(item_rate, rate) > rate && rate < *MUX_RATE_RANGE.end() {
        rate += 100_000;
    }
    rate
}

/// Where a requested channel's media are.
enum Media {
    /// A folder on every node.
    Folder(String),
    /// An object-store URL; each node syncs `<url>/<folder>/` into its cache, with the
    /// store options given as the URL's query (`?endpoint=http://host:9000&region=x`).
    Synced { url: String, folder: String, options: BTreeMap<String, String> },
}

/// `media_folder` of a request: a URL (`scheme://...`) is synced, anything else is a
/// folder; empty is the cache folder of `name` (the genre or id).
fn media(media_folder: &str, data_dir: &Path, name: &str) -> Media {
    if media_folder.contains("://") {
        let (url, query) = media_folder.split_once('?').unwrap_or((media_folder, ""));
        let options = query.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        });
        Media::Synced { url: url.to_owned(), folder: name.to_owned(), options: options.collect() }
    } else if media_folder.is_empty() {
        Media::Folder(data_dir.join("cache").join(name).display().to_string())
    } else {
        Media::Folder(media_folder.to_owned())
    }
}

fn template_or_default(t: &str) -> &str {
    if t.is_empty() {
        "default"
    } else {
        t
    }
}

/// `[channels.encode]` for a requested format (the rest at its defaults).
fn encode_config(f: &StreamFormat) -> Result<ChannelEncode, ApiError> {
    let video = match f.video_codec {
        VideoCodec::H264 => VideoFormat::H264,
        VideoCodec::Mpeg2 => VideoFormat::Mpeg2,
        VideoCodec::None => VideoFormat::None,
        VideoCodec::Hevc => {
            return Err(ApiError::invalid("format.video_codec", "HEVC items cannot be rendered here; fix: VIDEO_CODEC_H264 or _MPEG2, or send HEVC items without render"))
        }
    };
    let audio = match f.audio_codec {
        AudioCodec::Aac => AudioFormat::Aac,
        AudioCodec::Mp2 => AudioFormat::Mp2,
        AudioCodec::Ac3 => AudioFormat::Ac3,
    };
    let mut e = ChannelEncode { video, audio, audio_bitrate: f.audio_bitrate, ..ChannelEncode::default() };
    if video != VideoFormat::None {
        (e.width, e.height, e.video_bitrate) = (f.width, f.height, f.video_bitrate);
    }
    Ok(e)
}

/// The member an `AddLearner` request names.
pub fn member(r: &pb::AddLearnerRequest) -> Result<ClusterNode, ApiError> {
    let valid = (1..=63).contains(&r.name.len()) && r.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ApiError::invalid("name", format!("{:?} is not a node id; fix: use 1..=63 characters from [a-z0-9-] (the node's node.id)", r.name)));
    }
    for (field, addr) in [("raft_addr", &r.raft_addr), ("admin_addr", &r.admin_addr)] {
        let ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
        if !ok {
            return Err(ApiError::invalid(field, format!("{addr:?} is not host:port; fix: use the node's advertised address such as 127.0.0.2:7001")));
        }
    }
    Ok(ClusterNode { name: r.name.clone(), raft_addr: r.raft_addr.clone(), admin_addr: r.admin_addr.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, group: &str, video_bitrate: u64) -> pb::RequestStreamRequest {
        pb::RequestStreamRequest {
            channel: Some(pb::request_stream_request::Channel::Name(name.into())),
            format: Some(pb::StreamFormat {
                video_codec: pb::VideoCodec::H264 as i32,
                width: 1280,
                height: 720,
                video_bitrate,
                audio_codec: pb::AudioCodec::Aac as i32,
                audio_bitrate: 0,
            }),
            protocol: pb::Protocol::Multicast as i32,
            destination: Some(pb::Destination { group: group.into(), port: 5000 }),
            template: String::new(),
            media_folder: String::new(),
            render: false,
        }
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::InvalidArgument { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn a_request_becomes_a_valid_channel() {
        let r = record(&request("Jazz & Blues", "239.255.1.1", 3_000_000), &ClusterState::default(), Path::new("/d")).unwrap();
        assert_eq!(r.config.id, "jazz-blues");
        assert_eq!(r.config.mux_rate, 3_400_000, "(3 Mbit/s + 128 kbit/s) x 1.08, rounded up");
        assert_eq!(r.config.playlist.source.folder.as_deref(), Some(Path::new("/d/cache/jazz-blues")));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let s = ClusterState::default();
        let d = Path::new("/d");
        assert_eq!(field_of(record(&request("x", "10.0.0.1", 3_000_000), &s, d).unwrap_err()), "destination.group");
        assert_eq!(field_of(record(&request("x", "nope", 3_000_000), &s, d).unwrap_err()), "destination.group");
        assert_eq!(field_of(record(&request("x", "239.255.1.1", 10), &s, d).unwrap_err()), "format.video_bitrate");
        assert_eq!(field_of(record(&request("--", "239.255.1.1", 3_000_000), &s, d).unwrap_err()), "name");
        let mut unknown = request("x", "239.255.1.1", 3_000_000);
        unknown.protocol = 99;
        assert_eq!(field_of(record(&unknown, &s, d).unwrap_err()), "protocol");
        let mut no_codec = request("x", "239.255.1.1", 3_000_000);
        no_codec.format.as_mut().unwrap().audio_codec = 0;
        assert_eq!(field_of(record(&no_codec, &s, d).unwrap_err()), "format.audio_codec");
    }

    #[test]
    fn a_template_renders_the_media_synced_from_a_store_url() {
        let mut req = request("Rock", "239.255.1.2", 1_000_000);
        req.channel = Some(pb::request_stream_request::Channel::Genre("Rock".into()));
        req.template = "default".into();
        req.media_folder = "s3://media?endpoint=http://127.0.0.1:9000&allow_http=true".into();
        let r = record(&req, &ClusterState::default(), Path::new("/d")).unwrap();
        let c = &r.config;
        let sync = c.sync.as_ref().expect("synced");
        assert_eq!((sync.source.as_str(), sync.folder.as_deref()), ("s3://media", Some("Rock")));
        assert_eq!(sync.options.get("endpoint").map(String::as_str), Some("http://127.0.0.1:9000"));
        let render = c.render.as_ref().expect("rendered");
        assert_eq!((render.template.as_str(), render.media.as_ref()), ("default", None), "media: the sync cache");
        let encode = c.encode.as_ref().expect("encoded in the requested format");
        assert_eq!((encode.width, encode.height, encode.video_bitrate), (1280, 720, 1_000_000));
        assert!(c.playlist.source.folder.is_none() && c.playlist.source.items.is_none(), "plays its items");

        // Asked again without render: the same synced media, played as they are.
        let mut s = ClusterState::default();
        s.apply(1, &crate::cluster::Command::PutChannel(Box::new(r)));
        req.template.clear();
        req.media_folder.clear();
        let again = record(&req, &s, Path::new("/d")).unwrap().config;
        assert!(again.render.is_none() && again.encode.is_none());
        assert_eq!(again.sync.as_ref().map(|s| s.source.as_str()), Some("s3://media"));
    }

    #[test]
    fn a_folder_becomes_the_render_media_and_bad_store_options_name_the_field() {
        let mut req = request("Jazz", "239.255.1.3", 1_000_000);
        req.render = true;
        req.media_folder = "/srv/jazz".into();
        let c = record(&req, &ClusterState::default(), Path::new("/d")).unwrap().config;
        assert_eq!(c.render.as_ref().and_then(|r| r.media.as_deref()), Some(Path::new("/srv/jazz")));
        req.media_folder = "s3://media?password=x".into();
        assert_eq!(field_of(record(&req, &ClusterState::default(), Path::new("/d")).unwrap_err()), "media_folder");
        req.media_folder = "ftp://host/x".into();
        assert_eq!(field_of(record(&req, &ClusterState::default(), Path::new("/d")).unwrap_err()), "media_folder");
        req.media_folder = "/srv/jazz".into();
        req.format.as_mut().unwrap().video_codec = pb::VideoCodec::Hevc as i32;
        assert_eq!(field_of(record(&req, &ClusterState::default(), Path::new("/d")).unwrap_err()), "format.video_codec");
    }

    #[test]
    fn a_taken_destination_is_refused() {
        let mut s = ClusterState::default();
        let first = record(&request("one", "239.255.1.1", 3_000_000), &s, Path::new("/d")).unwrap();
        s.apply(1, &crate::cluster::Command::PutChannel(Box::new(first)));
        let e = record(&request("two", "239.255.1.1", 3_000_000), &s, Path::new("/d")).unwrap_err();
        assert_eq!(field_of(e), "destination");
    }
}
