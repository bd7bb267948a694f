//! The embedded demo configuration used by `headend demo`.
//!
//! Two channels on the loopback interface; the demo command creates the media
//! files at the paths listed here.

use std::path::Path;

use super::{
    ChannelConfig, Config, LogFormat, MulticastConfig, NodeConfig, Pids, PlayOrder, PlaylistConfig,
    PlaylistSource, ServiceType,
};

/// Item file names of each demo channel, under `<data_dir>/demo/<channel id>/`.
pub const DEMO_ITEMS: [&str; 3] = ["01.ts", "02.ts", "03.ts"];

pub(super) fn demo(data_dir: &Path) -> Config {
    let demo_dir = data_dir.join("demo");
    let channel = |id: &str, name: &str, program_number: u16, group: [u8; 4]| {
        let items = DEMO_ITEMS
            .iter()
            .map(|f| demo_dir.join(id).join(f))
            .collect();
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
            },
            pids: Pids::default(),
            playlist: PlaylistConfig {
                source: PlaylistSource {
                    folder: None,
                    items: Some(items),
                },
                order: PlayOrder::Sequential,
                shuffle_seed: None,
                fallback: Some(demo_dir.join("fallback.ts")),
            },
            sync: None,
        }
    };
    Config {
        version: 1,
        node: NodeConfig {
            id: "demo".to_owned(),
            data_dir: data_dir.to_path_buf(),
            http_listen: ([127, 0, 0, 1], 8080).into(),
            log_format: LogFormat::Text,
            sync: Default::default(),
        },
        channels: vec![
            channel("demo-rock", "Demo Rock", 1, [239, 255, 10, 1]),
            channel("demo-jazz", "Demo Jazz", 2, [239, 255, 10, 2]),
        ],
        source_name: "<demo>".to_owned(),
    }
}
