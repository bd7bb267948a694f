//! The embedded demo configuration used by `headend demo`.
//!
//! Two channels on the loopback interface. Each syncs its songs from a local folder
//! (`file://<data_dir>/demo/source/<channel>`, which the demo command fills), renders
//! them with the built-in template and plays the encoded items; until the first item is
//! built, the channel plays its fallback.

use std::path::Path;

use super::{
    AudioFormat, ChannelEncode, ChannelRender, ChannelSync, Loudness, VideoFormat, ChannelConfig, Config, LogFormat, MulticastConfig, NodeConfig, Pids, PlayOrder, PlaylistConfig,
    PlaylistSource, ServiceType,
};

pub(super) fn demo(data_dir: &Path) -> Config {
    let demo_dir = data_dir.join("demo");
    let source = demo_dir.join("source");
    let channel = |id: &str, name: &str, program_number: u16, group: [u8; 4], encode: ChannelEncode| {
        ChannelConfig {
            id: id.to_owned(),
            name: name.to_owned(),
            service_name: Some(name.to_owned()),
            provider: "headend".to_owned(),
            program_number,
            transport_stream_id: 1,
            original_network_id: 1,
            mux_rate: 3_000_000,
            service_type: ServiceType::Tv,
            multicast: MulticastConfig {
                group: group.into(),
                port: 5000,
                interface: [127, 0, 0, 1].into(),
                ttl: 1,
                loopback: true,
                rtp: false,
                source: None,
                hitless_group: None,
            },
            pids: Pids::default(),
            playlist: PlaylistConfig {
                source: PlaylistSource::default(),
                order: PlayOrder::Sequential,
                shuffle_seed: None,
                fallback: Some(demo_dir.join("fallback.ts")),
            },
            sync: Some(ChannelSync {
                source: format!("file://{}", source.display()),
                folder: Some(id.to_owned()),
                options: Default::default(),
                interval_secs: Some(10),
            }),
            render: Some(ChannelRender { template: "default".into(), allow_network: false, media: None }),
            encode: Some(encode),
        }
    };
    Config {
        version: 1,
        node: NodeConfig {
            id: "demo".to_owned(),
            data_dir: data_dir.to_path_buf(),
            http_listen: ([127, 0, 0, 1], 8080).into(),
            rtsp_listen: None,
            log_format: LogFormat::Text,
            sync: Default::default(),
            encode: Default::default(),
            failover: Default::default(),
            recorder: Default::default(),
            cluster: None,
        },
        channels: vec![
            channel("demo-rock", "Demo Rock", 1, [239, 255, 10, 1], ChannelEncode { video_bitrate: 2_000_000, ..ChannelEncode::default() }),
            channel(
                "demo-jazz",
                "Demo Jazz",
                2,
                [239, 255, 10, 2],
                ChannelEncode {
                    video: VideoFormat::Mpeg2,
                    width: 720,
                    height: 576,
                    gop: Some(12),
                    video_bitrate: 2_000_000,
                    audio: AudioFormat::Mp2,
                    loudness: Loudness::EbuR128,
                    ..ChannelEncode::default()
                },
            ),
        ],
        source_name: "<demo>".to_owned(),
    }
}
