use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::*;

const EXAMPLE: &str = include_str!("../../../deploy/examples/headend.toml");
const CLUSTER_EXAMPLE: &str = include_str!("../../../deploy/examples/cluster-node.toml");

const MINIMAL: &str = r#"
version = 1

[node]
id = "node-a"

[[channels]]
id = "rock"
name = "Rock"
program_number = 1
mux_rate = 4_000_000
[channels.multicast]
group = "239.255.0.1"
port = 5000
[channels.playlist]
source = { folder = "/srv/media/rock" }

[[channels]]
id = "jazz"
name = "Jazz"
program_number = 2
mux_rate = 3_000_000
[channels.multicast]
group = "239.255.0.2"
port = 5000
[channels.playlist]
source = { items = ["/a.ts", "/b.ts"] }
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(toml: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(toml, "test.toml", no_env)
}

fn parse_env(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_toml_str(toml, "test.toml", |k| map.get(k).cloned())
}

/// `MINIMAL` with `line` replaced by `with` (which must occur exactly once).
fn edit(line: &str, with: &str) -> String {
    assert_eq!(MINIMAL.matches(line).count(), 1, "{line:?}");
    MINIMAL.replace(line, with)
}

fn errors(toml: &str) -> ConfigErrors {
    parse(toml).expect_err("config should be rejected")
}

/// The only error of `toml`, with its display line.
fn single(toml: &str) -> (ConfigIssue, String) {
    let errs = errors(toml);
    assert_eq!(errs.len(), 1, "expected one error, got:\n{errs}");
    (errs.issues[0].clone(), errs.to_string())
}

fn minimal() -> Config {
    parse(MINIMAL).unwrap()
}

#[test]
fn cluster_example_parses_validates_and_takes_its_addresses_from_the_environment() {
    let config = parse(CLUSTER_EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.channels.is_empty());
    let c = config.node.cluster.as_ref().unwrap();
    assert_eq!(c.interfaces, vec![Ipv4Addr::new(10, 0, 1, 1)]);
    assert_eq!(config.node.failover.takeover_ms, 50);
    assert_eq!(config.node.recorder.retention_hours, 8);
    let n2 = parse_env(
        CLUSTER_EXAMPLE,
        &[
            ("HEADEND_NODE_ID", "n2"),
            ("HEADEND_RAFT_LISTEN", "10.0.0.2:7000"),
            ("HEADEND_ADMIN_LISTEN", "10.0.0.2:7001"),
            ("HEADEND_SEEDS", "10.0.0.1:7000, 10.0.0.3:7000"),
            ("HEADEND_INTERFACES", "10.0.1.2"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = n2.node.cluster.as_ref().unwrap();
    assert_eq!((n2.node.id.as_str(), c.raft_listen.to_string().as_str()), ("n2", "10.0.0.2:7000"));
    assert_eq!(c.seeds, vec!["10.0.0.1:7000".to_string(), "10.0.0.3:7000".to_string()]);
    assert_eq!(c.interfaces, vec![Ipv4Addr::new(10, 0, 1, 2)]);
    let e = parse_env(CLUSTER_EXAMPLE, &[("HEADEND_INTERFACES", "10.0.1.x")]).unwrap_err().to_string();
    assert!(e.contains("HEADEND_INTERFACES") && e.contains("10.0.1.x"), "{e}");
    let e = parse(&CLUSTER_EXAMPLE.replace("takeover_ms = 50", "takeover_ms = 1")).unwrap_err().to_string();
    assert!(e.contains("node.failover.takeover_ms"), "{e}");
    // Hitless mode: a second group for the backup's copy, not the channel's own.
    let hitless = MINIMAL.replacen("port = 5000\n", "port = 5000\nhitless_group = \"239.255.0.101\"\n", 1);
    let c = parse(&hitless).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.channels[0].multicast.hitless_group, Some(Ipv4Addr::new(239, 255, 0, 101)));
    let same = MINIMAL.replacen("port = 5000\n", "port = 5000\nhitless_group = \"239.255.0.1\"\n", 1);
    let e = parse(&same).unwrap_err().to_string();
    assert!(e.contains("multicast.hitless_group") && e.contains("second path"), "{e}");
}

#[test]
fn example_file_parses_and_validates() {
    let config = parse(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.channels.len(), 3);
    let pop = config.channel("pop").unwrap();
    assert_eq!(pop.render.as_ref().map(|r| r.template.as_str()), Some("default"));
    assert_eq!(pop.encode.as_ref().map(|e| e.video_bitrate), Some(2_500_000));
    let rock = config.channel("classic-rock").unwrap();
    assert_eq!(rock.original_network_id, 0xFF01);
    assert_eq!(rock.playlist.order, PlayOrder::Shuffle);
    assert_eq!(rock.playlist.shuffle_seed, Some(42));
    assert_eq!(config.node.log_format, LogFormat::Json);
    let jazz = config.channel("jazz").unwrap();
    assert_eq!(jazz.service_type, ServiceType::Radio);
    assert_eq!(jazz.service_name(), "Jazz Lounge");
    assert_eq!(jazz.pids, Pids::default());
    match jazz.playlist.source.kind() {
        Some(PlaylistSourceKind::Items(items)) => assert_eq!(items.len(), 3),
        other => panic!("unexpected source {other:?}"),
    }
    config.validate().unwrap();
}

#[test]
fn demo_config_validates_and_paths_exist_once_created() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::demo(dir.path());
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = config.channels.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["demo-rock", "demo-jazz"]);
    let rock = &config.channels[0];
    assert_eq!(rock.destination().to_string(), "239.255.10.1:5000");
    assert_eq!(
        config.channels[1].destination().to_string(),
        "239.255.10.2:5000"
    );
    assert_eq!(rock.multicast.interface, Ipv4Addr::LOCALHOST);
    assert!(rock.multicast.loopback);
    assert_eq!((rock.multicast.ttl, rock.mux_rate), (1, 3_000_000));

    // Rendered channels sync from the demo source folder and play their encoded items.
    for c in &config.channels {
        let render = c.render.as_ref().expect("demo channels are rendered");
        assert_eq!(render.template, "default");
        assert!(c.sync.as_ref().unwrap().source.starts_with("file:///"), "absolute file URL");
        assert_eq!(c.playlist.source, PlaylistSource::default());
    }
    // Before the demo command creates the fallback, the path check names it.
    let missing = config.validate_paths().unwrap_err();
    assert_eq!(missing.len(), 2, "{missing}");
    std::fs::create_dir_all(dir.path().join("demo")).unwrap();
    std::fs::write(dir.path().join("demo/fallback.ts"), b"").unwrap();
    config.validate_paths().unwrap();
}

#[test]
fn demo_config_round_trips_through_toml() {
    let config = Config::demo(Path::new("/tmp/headend-data"));
    let text = config.to_toml_string().unwrap();
    let back =
        Config::from_toml_str(&text, "<demo>", no_env).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, config);
}

#[test]
fn defaults_apply() {
    let config = minimal();
    let rock = &config.channels[0];
    assert_eq!(config.node.data_dir, PathBuf::from("./data"));
    assert_eq!(config.node.http_listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.node.log_format, LogFormat::Text);
    assert_eq!(rock.service_name(), "Rock");
    assert_eq!(rock.provider, "headend");
    assert_eq!((rock.transport_stream_id, rock.original_network_id), (1, 1));
    assert_eq!(rock.service_type, ServiceType::Tv);
    assert_eq!(rock.multicast.interface, Ipv4Addr::UNSPECIFIED);
    assert_eq!(rock.multicast.ttl, 16);
    assert!(!rock.multicast.loopback && !rock.multicast.rtp);
    assert_eq!(rock.multicast.source, None);
    assert_eq!(rock.playlist.order, PlayOrder::Sequential);
    assert_eq!(rock.playlist.fallback, None);
    assert_eq!(
        rock.pids,
        Pids {
            pmt: 0x1000,
            pcr: 0x01FF,
            video: 0x0100,
            audio: 0x0101,
            metadata: 0x0102
        }
    );
}

#[test]
fn default_node_id_is_valid() {
    let id = default_node_id();
    assert!(validate::node_id("node.id", &id).is_none(), "{id:?}");
}

#[test]
fn pids_accept_hex_literals_and_partial_tables() {
    let toml = edit(
        "[channels.playlist]\nsource = { folder",
        "[channels.pids]\npmt = 0x0200\nvideo = 0x1fde\n[channels.playlist]\nsource = { folder",
    );
    let config = parse(&toml).unwrap();
    let pids = config.channels[0].pids;
    assert_eq!((pids.pmt, pids.video), (0x0200, 0x1FDE));
    assert_eq!(
        (pids.pcr, pids.audio, pids.metadata),
        (0x01FF, 0x0101, 0x0102)
    );
}

#[test]
fn order_sequential_and_shuffle_parse() {
    let seq = edit(
        "source = { folder = \"/srv/media/rock\" }",
        "source = { folder = \"/srv/media/rock\" }\norder = \"sequential\"",
    );
    assert_eq!(
        parse(&seq).unwrap().channels[0].playlist.order,
        PlayOrder::Sequential
    );
    let shuffle = edit(
        "source = { folder = \"/srv/media/rock\" }",
        "source = { folder = \"/srv/media/rock\" }\norder = \"shuffle\"\nshuffle_seed = 7",
    );
    let config = parse(&shuffle).unwrap();
    assert_eq!(config.channels[0].playlist.order, PlayOrder::Shuffle);
    assert_eq!(config.channels[0].playlist.shuffle_seed, Some(7));
    let bad = edit(
        "source = { folder = \"/srv/media/rock\" }",
        "source = { folder = \"/srv/media/rock\" }\norder = \"random\"",
    );
    let (issue, msg) = single(&bad);
    assert!(matches!(issue, ConfigIssue::Parse { .. }), "{issue:?}");
    assert!(msg.contains("channels[0].playlist.order"), "{msg}");
}

#[test]
fn version_is_required_and_checked() {
    let (issue, msg) = single(&MINIMAL.replace("version = 1", ""));
    assert_eq!(issue, ConfigIssue::MissingVersion);
    assert!(msg.starts_with("test.toml: version: missing"), "{msg}");

    // A newer file with unknown fields still gets the version message.
    let v2 = MINIMAL.replace("version = 1", "version = 2\nnew_thing = true");
    let (issue, msg) = single(&v2);
    assert_eq!(issue, ConfigIssue::UnsupportedVersion { found: "2".into() });
    assert!(msg.contains("this build reads config version 1"), "{msg}");

    let mut config = minimal();
    config.version = 3;
    let errs = config.validate().unwrap_err();
    assert!(matches!(
        errs.issues[0],
        ConfigIssue::UnsupportedVersion { .. }
    ));
}

#[test]
fn unknown_field_is_rejected_with_line_and_path() {
    let toml = edit(
        "port = 5000\n[channels.playlist]\nsource = { items",
        "port = 5000\nbogus = 1\n[channels.playlist]\nsource = { items",
    );
    let line = toml.lines().position(|l| l == "bogus = 1").unwrap() + 1;
    let (issue, msg) = single(&toml);
    match &issue {
        ConfigIssue::UnknownField {
            line: l,
            column,
            field,
            message,
        } => {
            assert_eq!((*l, *column), (line, 1));
            assert_eq!(field, "channels[1].multicast.bogus");
            assert!(message.contains("unknown field `bogus`"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        msg.starts_with(&format!("test.toml: line {line}, column 1:")),
        "{msg}"
    );

    // Top level, node table and inline tables too.
    let (issue, _) = single(&MINIMAL.replace("version = 1", "version = 1\nchanels = 1"));
    assert!(
        matches!(issue, ConfigIssue::UnknownField { ref field, .. } if field == "chanels"),
        "{issue:?}"
    );
    let (issue, _) = single(&edit(
        "id = \"node-a\"",
        "id = \"node-a\"\ndatadir = \"/x\"",
    ));
    assert!(
        matches!(issue, ConfigIssue::UnknownField { ref field, .. } if field == "node.datadir"),
        "{issue:?}"
    );
    let (issue, _) = single(&edit(
        "{ folder = \"/srv/media/rock\" }",
        "{ foldr = \"/srv/media/rock\" }",
    ));
    assert!(
        matches!(issue, ConfigIssue::UnknownField { ref field, .. } if field == "channels[0].playlist.source.foldr"),
        "{issue:?}"
    );
}

#[test]
fn missing_required_field_is_named() {
    let (issue, msg) = single(&edit("mux_rate = 3_000_000\n", ""));
    assert!(
        matches!(issue, ConfigIssue::MissingField { .. }),
        "{issue:?}"
    );
    assert!(msg.contains("mux_rate"), "{msg}");
}

#[test]
fn syntax_and_type_errors_have_positions() {
    let (issue, msg) = single(&edit(
        "port = 5000\n[channels.playlist]\nsource = { folder",
        "port = \"5000\"\n[channels.playlist]\nsource = { folder",
    ));
    assert!(matches!(issue, ConfigIssue::Parse { .. }), "{issue:?}");
    assert!(msg.contains("channels[0].multicast.port"), "{msg}");
    let (issue, _) = single(&edit("program_number = 1", "program_number = 70000"));
    assert!(
        matches!(issue, ConfigIssue::Parse { ref field, .. } if field == "channels[0].program_number"),
        "{issue:?}"
    );
    let (issue, _) = single(&edit("group = \"239.255.0.1\"", "group = \"239.255.0\""));
    assert!(matches!(issue, ConfigIssue::Parse { .. }), "{issue:?}");
    let (issue, _) = single("version = 1\n[node\n");
    assert!(
        matches!(issue, ConfigIssue::Parse { line: 2, .. }),
        "{issue:?}"
    );
}

#[test]
fn bad_ids() {
    let (issue, msg) = single(&edit("id = \"node-a\"", "id = \"Node_A\""));
    assert!(
        matches!(issue, ConfigIssue::InvalidId { ref field, .. } if field == "node.id"),
        "{issue:?}"
    );
    assert!(msg.contains("[a-z0-9-]"), "{msg}");
    let (issue, msg) = single(&edit("id = \"jazz\"", "id = \"jazz fm\""));
    assert!(
        matches!(issue, ConfigIssue::InvalidId { ref field, .. } if field == "channels[1].id"),
        "{issue:?}"
    );
    assert!(msg.contains("' '"), "{msg}");
    let long = "a".repeat(64);
    let (issue, _) = single(&edit("id = \"node-a\"", &format!("id = \"{long}\"")));
    assert!(matches!(issue, ConfigIssue::InvalidId { .. }));
    let (issue, _) = single(&edit("id = \"jazz\"", "id = \"\""));
    assert!(matches!(issue, ConfigIssue::InvalidId { ref reason, .. } if reason == "empty"));
    // '_' is fine in channel ids.
    parse(&edit("id = \"jazz\"", "id = \"smooth_jazz\"")).unwrap();
}

#[test]
fn names() {
    let (issue, msg) = single(&edit("name = \"Jazz\"", "name = \"  \""));
    assert_eq!(
        issue,
        ConfigIssue::EmptyName {
            field: "channels[\"jazz\"].name".into()
        }
    );
    assert!(
        msg.contains("channels[\"jazz\"].name: must not be empty"),
        "{msg}"
    );
    let long = "x".repeat(65);
    let (issue, _) = single(&edit(
        "name = \"Jazz\"",
        &format!("name = \"{long}\"\nservice_name = \"Jazz\""),
    ));
    assert!(
        matches!(
            issue,
            ConfigIssue::TooLong {
                len: 65,
                max: 64,
                ..
            }
        ),
        "{issue:?}"
    );
    // 32 two-byte chars = 64 bytes is fine, 33 is not.
    parse(&edit(
        "name = \"Jazz\"",
        &format!("name = \"Jazz\"\nservice_name = \"{}\"", "é".repeat(32)),
    ))
    .unwrap();
    let (issue, _) = single(&edit(
        "name = \"Jazz\"",
        &format!("name = \"Jazz\"\nservice_name = \"{}\"", "é".repeat(33)),
    ));
    assert!(
        matches!(issue, ConfigIssue::TooLong { ref field, len: 66, unit: "bytes", .. } if field.ends_with(".service_name")),
        "{issue:?}"
    );
}

#[test]
fn multicast_group_checks() {
    let (issue, msg) = single(&edit("group = \"239.255.0.2\"", "group = \"10.0.0.1\""));
    assert_eq!(
        issue,
        ConfigIssue::NotMulticast {
            field: "channels[\"jazz\"].multicast.group".into(),
            group: Ipv4Addr::new(10, 0, 0, 1)
        }
    );
    assert!(
        msg.starts_with("test.toml: channels[\"jazz\"].multicast.group:"),
        "{msg}"
    );
    let (issue, msg) = single(&edit("group = \"239.255.0.2\"", "group = \"224.0.0.251\""));
    assert!(
        matches!(issue, ConfigIssue::ReservedMulticast { .. }),
        "{issue:?}"
    );
    assert!(
        msg.contains("use an administratively scoped group such as 239.255.x.x"),
        "{msg}"
    );
    parse(&edit("group = \"239.255.0.2\"", "group = \"224.0.1.1\"")).unwrap();
}

#[test]
fn port_ttl_interface_checks() {
    let (issue, _) = single(&edit(
        "port = 5000\n[channels.playlist]\nsource = { items",
        "port = 0\n[channels.playlist]\nsource = { items",
    ));
    assert_eq!(
        issue,
        ConfigIssue::InvalidPort {
            field: "channels[\"jazz\"].multicast.port".into()
        }
    );
    let (issue, _) = single(&edit(
        "group = \"239.255.0.2\"",
        "group = \"239.255.0.2\"\nttl = 0",
    ));
    assert_eq!(
        issue,
        ConfigIssue::ZeroTtl {
            field: "channels[\"jazz\"].multicast.ttl".into()
        }
    );
    let (issue, _) = single(&edit(
        "group = \"239.255.0.2\"",
        "group = \"239.255.0.2\"\ninterface = \"239.1.1.1\"",
    ));
    assert!(
        matches!(issue, ConfigIssue::InvalidUnicastAddress { ref field, .. } if field.ends_with("multicast.interface"))
    );
}

#[test]
fn mux_rate_range_and_hook() {
    let (issue, msg) = single(&edit("mux_rate = 3_000_000", "mux_rate = 499_999"));
    assert_eq!(
        issue,
        ConfigIssue::MuxRateOutOfRange {
            field: "channels[\"jazz\"].mux_rate".into(),
            value: 499_999
        }
    );
    assert!(msg.contains("500000..=80000000"), "{msg}");
    let (issue, _) = single(&edit("mux_rate = 3_000_000", "mux_rate = 80_000_001"));
    assert!(matches!(issue, ConfigIssue::MuxRateOutOfRange { .. }));

    assert_eq!(ChannelConfig::min_mux_rate_for(1_000_000), 1_080_000);
    assert_eq!(ChannelConfig::min_mux_rate_for(1), 2); // rounded up
    assert_eq!(ChannelConfig::min_mux_rate_for(u64::MAX), u64::MAX);
    let jazz = minimal().channels[1].clone();
    jazz.check_mux_rate_for(2_777_777).unwrap();
    let err = jazz.check_mux_rate_for(2_800_000).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigIssue::MuxRateTooLow {
                required: 3_024_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("channels[\"jazz\"].mux_rate:"),
        "{err}"
    );
}

#[test]
fn program_number_zero() {
    let (issue, _) = single(&edit("program_number = 2", "program_number = 0"));
    assert_eq!(
        issue,
        ConfigIssue::InvalidProgramNumber {
            field: "channels[\"jazz\"].program_number".into()
        }
    );
}

#[test]
fn pid_checks() {
    let pids = "[channels.pids]\npmt = 0x0010\npcr = 0x1FFF\nvideo = 0x2000\naudio = 0x0100\n";
    let toml = edit(
        "[channels.playlist]\nsource = { items",
        &format!("{pids}[channels.playlist]\nsource = {{ items"),
    );
    let errs = errors(&toml);
    let p = "channels[\"jazz\"].pids";
    assert_eq!(
        errs.issues,
        vec![
            ConfigIssue::ReservedPid {
                field: format!("{p}.pmt"),
                pid: 0x0010
            },
            ConfigIssue::ReservedPid {
                field: format!("{p}.pcr"),
                pid: 0x1FFF
            },
            ConfigIssue::PidOutOfRange {
                field: format!("{p}.video"),
                pid: 0x2000
            },
        ]
    );
    // video was out of range so audio=0x0100 only clashes with another PID if one holds it.
    let toml = edit(
        "[channels.playlist]\nsource = { items",
        "[channels.pids]\naudio = 0x0100\n[channels.playlist]\nsource = { items",
    );
    let (issue, msg) = single(&toml);
    assert_eq!(
        issue,
        ConfigIssue::DuplicatePid {
            field: format!("{p}.audio"),
            other: format!("{p}.video"),
            pid: 0x0100
        }
    );
    assert!(msg.contains("PID 0x0100"), "{msg}");
    // The PIDs playout derives per codec family must be free as well.
    let toml = edit(
        "[channels.playlist]\nsource = { items",
        "[channels.pids]\nmetadata = 0x0110\n[channels.playlist]\nsource = { items",
    );
    let (issue, msg) = single(&toml);
    assert_eq!(
        issue,
        ConfigIssue::DuplicatePid {
            field: format!("{p}.video (+0x10 for MPEG-2 video)"),
            other: format!("{p}.metadata"),
            pid: 0x0110
        }
    );
    assert!(msg.contains("MPEG-2 video"), "{msg}");
}

#[test]
fn playlist_source_checks() {
    let (issue, _) = single(&edit(
        "source = { items = [\"/a.ts\", \"/b.ts\"] }",
        "source = { items = [\"/a.ts\"], folder = \"/m\" }",
    ));
    assert_eq!(
        issue,
        ConfigIssue::PlaylistSourceAmbiguous {
            field: "channels[\"jazz\"].playlist.source".into()
        }
    );
    let (issue, _) = single(&edit(
        "source = { items = [\"/a.ts\", \"/b.ts\"] }",
        "order = \"shuffle\"",
    ));
    assert_eq!(
        issue,
        ConfigIssue::PlaylistSourceMissing {
            field: "channels[\"jazz\"].playlist.source".into()
        }
    );
    let (issue, _) = single(&edit(
        "source = { items = [\"/a.ts\", \"/b.ts\"] }",
        "source = {}",
    ));
    assert!(matches!(issue, ConfigIssue::PlaylistSourceMissing { .. }));
    let (issue, _) = single(&edit("[\"/a.ts\", \"/b.ts\"]", "[]"));
    assert_eq!(
        issue,
        ConfigIssue::EmptyPlaylist {
            field: "channels[\"jazz\"].playlist.source.items".into()
        }
    );
    let (issue, _) = single(&edit("[\"/a.ts\", \"/b.ts\"]", "[\"/a.ts\", \"\"]"));
    assert_eq!(
        issue,
        ConfigIssue::EmptyPath {
            field: "channels[\"jazz\"].playlist.source.items[1]".into()
        }
    );
}

#[test]
fn duplicates_across_channels() {
    let toml = MINIMAL
        .replace("id = \"jazz\"", "id = \"rock\"")
        .replace("name = \"Jazz\"", "name = \"Rock\"")
        .replace("program_number = 2", "program_number = 1")
        .replace("239.255.0.2", "239.255.0.1");
    let errs = errors(&toml);
    assert_eq!(errs.len(), 4, "{errs}");
    assert_eq!(
        errs.issues[0],
        ConfigIssue::DuplicateChannelId {
            field: "channels[1].id".into(),
            id: "rock".into(),
            first: "channels[0]".into()
        }
    );
    assert!(
        matches!(errs.issues[1], ConfigIssue::DuplicateChannelName { ref field, .. } if field == "channels[1].name")
    );
    assert!(matches!(
        errs.issues[2],
        ConfigIssue::DuplicateProgramNumber {
            program_number: 1,
            ..
        }
    ));
    assert!(matches!(
        errs.issues[3],
        ConfigIssue::DuplicateDestination { .. }
    ));

    // group:port clash alone names both channels.
    let (issue, msg) = single(&MINIMAL.replace("239.255.0.2", "239.255.0.1"));
    assert!(matches!(issue, ConfigIssue::DuplicateDestination { .. }));
    assert!(
        msg.contains("\"rock\" and \"jazz\" both send to 239.255.0.1:5000"),
        "{msg}"
    );
    // Same group on another port is fine.
    parse(&edit(
        "group = \"239.255.0.2\"\nport = 5000",
        "group = \"239.255.0.1\"\nport = 5002",
    ))
    .unwrap();
}

#[test]
fn all_errors_are_reported_one_per_line() {
    let toml = MINIMAL
        .replace("id = \"node-a\"", "id = \"NODE\"")
        .replace("name = \"Jazz\"", "name = \"\"")
        .replace("mux_rate = 4_000_000", "mux_rate = 100")
        .replace("239.255.0.2", "192.168.1.1")
        .replace("[\"/a.ts\", \"/b.ts\"]", "[]");
    let errs = errors(&toml);
    let kinds: Vec<&str> = errs
        .iter()
        .map(|i| match i {
            ConfigIssue::InvalidId { .. } => "id",
            ConfigIssue::EmptyName { .. } => "name",
            ConfigIssue::MuxRateOutOfRange { .. } => "mux",
            ConfigIssue::NotMulticast { .. } => "group",
            ConfigIssue::EmptyPlaylist { .. } => "items",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["id", "mux", "name", "group", "items"], "{errs}");
    let text = errs.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with("test.toml: ") && l.contains("fix: ")),
        "{text}"
    );
    assert!(text.contains("channels[\"rock\"].mux_rate"), "{text}");
    assert!(
        text.contains("channels[\"jazz\"].multicast.group"),
        "{text}"
    );
}

#[test]
fn no_channels() {
    let (issue, _) = single("version = 1\n[node]\nid = \"x\"\n");
    assert_eq!(issue, ConfigIssue::NoChannels);
}

#[test]
fn env_overrides_apply() {
    let config = parse_env(
        MINIMAL,
        &[
            ("HEADEND_NODE_ID", "node-b"),
            ("HEADEND_DATA_DIR", "/var/lib/headend"),
            ("HEADEND_HTTP_LISTEN", "0.0.0.0:9090"),
            ("HEADEND_LOG_FORMAT", "json"),
            ("HEADEND_CHANNEL_ROCK_MUX_RATE", "6_000_000"),
            ("HEADEND_CHANNEL_ROCK_GROUP", "239.255.1.1"),
            ("HEADEND_CHANNEL_ROCK_PORT", "6000"),
            ("HEADEND_CHANNEL_ROCK_INTERFACE", "127.0.0.1"),
        ],
    )
    .unwrap();
    assert_eq!(config.node.id, "node-b");
    assert_eq!(config.node.data_dir, PathBuf::from("/var/lib/headend"));
    assert_eq!(config.node.http_listen.to_string(), "0.0.0.0:9090");
    assert_eq!(config.node.log_format, LogFormat::Json);
    let rock = &config.channels[0];
    assert_eq!(rock.mux_rate, 6_000_000);
    assert_eq!(rock.destination().to_string(), "239.255.1.1:6000");
    assert_eq!(rock.multicast.interface, Ipv4Addr::LOCALHOST);
    assert_eq!(config.channels[1], minimal().channels[1]);
}

#[test]
fn env_channel_key_uppercases_and_maps_dashes() {
    let toml = MINIMAL.replace("id = \"jazz\"", "id = \"smooth-jazz\"");
    let config = parse_env(&toml, &[("HEADEND_CHANNEL_SMOOTH_JAZZ_PORT", "7000")]).unwrap();
    assert_eq!(config.channels[1].multicast.port, 7000);
    assert_eq!(env::env_key("demo-rock_2"), "DEMO_ROCK_2");
}

#[test]
fn bad_env_overrides_name_the_variable() {
    let errs = parse_env(
        MINIMAL,
        &[
            ("HEADEND_NODE_ID", "Bad Id"),
            ("HEADEND_HTTP_LISTEN", "localhost"),
            ("HEADEND_LOG_FORMAT", "xml"),
            ("HEADEND_CHANNEL_ROCK_MUX_RATE", "fast"),
            ("HEADEND_CHANNEL_ROCK_GROUP", "224.0.0.1"),
            ("HEADEND_CHANNEL_JAZZ_PORT", "70000"),
            ("HEADEND_CHANNEL_JAZZ_INTERFACE", "eth0"),
        ],
    )
    .unwrap_err();
    let vars: Vec<&str> = errs
        .iter()
        .map(|i| match i {
            ConfigIssue::InvalidEnvOverride { var, .. } => var.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        vars,
        [
            "HEADEND_NODE_ID",
            "HEADEND_HTTP_LISTEN",
            "HEADEND_LOG_FORMAT",
            "HEADEND_CHANNEL_ROCK_MUX_RATE",
            "HEADEND_CHANNEL_ROCK_GROUP",
            "HEADEND_CHANNEL_JAZZ_PORT",
            "HEADEND_CHANNEL_JAZZ_INTERFACE",
        ]
    );
    let text = errs.to_string();
    assert!(text.contains("environment variable HEADEND_CHANNEL_ROCK_GROUP=\"224.0.0.1\": overrides channels[\"rock\"].multicast.group"), "{text}");
    assert!(
        text.contains(
            "HEADEND_CHANNEL_ROCK_MUX_RATE=\"fast\": overrides channels[\"rock\"].mux_rate"
        ),
        "{text}"
    );
}

#[test]
fn env_override_for_ambiguous_channel_keys_is_rejected() {
    let toml = MINIMAL
        .replace("id = \"rock\"", "id = \"a-b\"")
        .replace("id = \"jazz\"", "id = \"a_b\"");
    parse(&toml).unwrap();
    let (issue, msg) = {
        let errs = parse_env(&toml, &[("HEADEND_CHANNEL_A_B_PORT", "6000")]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs}");
        (errs.issues[0].clone(), errs.to_string())
    };
    assert!(
        matches!(issue, ConfigIssue::InvalidEnvOverride { ref var, .. } if var == "HEADEND_CHANNEL_A_B_PORT")
    );
    assert!(msg.contains("ambiguous"), "{msg}");
}

#[test]
fn validate_paths_reports_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("rock");
    std::fs::create_dir(&media).unwrap();
    let item = dir.path().join("a.ts");
    std::fs::write(&item, b"").unwrap();
    let mut config = minimal();
    config.channels[0].playlist.source.folder = Some(media.clone());
    config.channels[1].playlist.source.items = Some(vec![
        item.clone(),
        dir.path().join("missing.ts"),
        media.clone(),
    ]);
    config.channels[1].playlist.fallback = Some(dir.path().join("nofallback.ts"));
    config.validate().unwrap();
    let errs = config.validate_paths().unwrap_err();
    assert_eq!(
        errs.issues,
        vec![
            ConfigIssue::PathNotFound {
                field: "channels[\"jazz\"].playlist.source.items[1]".into(),
                path: dir.path().join("missing.ts")
            },
            ConfigIssue::WrongPathKind {
                field: "channels[\"jazz\"].playlist.source.items[2]".into(),
                path: media.clone(),
                expected: "file"
            },
            ConfigIssue::FallbackNotFound {
                field: "channels[\"jazz\"].playlist.fallback".into(),
                path: dir.path().join("nofallback.ts")
            },
        ]
    );
    assert!(errs
        .to_string()
        .contains(&dir.path().join("missing.ts").display().to_string()));
    config.channels[0].playlist.source.folder = Some(item);
    assert!(matches!(
        config.validate_paths().unwrap_err().issues[0],
        ConfigIssue::WrongPathKind {
            expected: "directory",
            ..
        }
    ));
}

#[test]
fn load_reads_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("headend.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.source_name, path.display().to_string());

    std::fs::write(
        &path,
        MINIMAL.replace("ttl", "x").replace(
            "port = 5000\n[channels.playlist]\nsource = { items",
            "port = 0\n[channels.playlist]\nsource = { items",
        ),
    )
    .unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)));
    assert!(
        err.to_string().starts_with(&format!(
            "{}: channels[\"jazz\"].multicast.port",
            path.display()
        )),
        "{err}"
    );
    let err = config.validate().map(|_| ()).and_then(|_| {
        let mut c = config.clone();
        c.channels[0].multicast.ttl = 0;
        c.validate()
    });
    assert!(err
        .unwrap_err()
        .to_string()
        .starts_with(&format!("{}: ", path.display())));

    let err = Config::load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn service_type_codes() {
    assert_eq!(ServiceType::Tv.dvb_service_type(), 0x01);
    assert_eq!(ServiceType::Radio.dvb_service_type(), 0x02);
}

#[test]
fn sync_sections_are_checked() {
    let toml = edit(
        "[channels.playlist]\nsource = { items",
        "[channels.sync]\nsource = \"ftp://media/rock\"\noptions = { endpoint = \"http://127.0.0.1:9000\", secret_access_key = \"x\" }\nfolder = \"../up\"\n[channels.playlist]\nsource = { items",
    );
    let errors = parse(&toml).unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.len(), 3, "{text}");
    assert!(text.contains("sync.source: \"ftp://media/rock\" cannot be synced from: unknown scheme \"ftp\""), "{text}");
    assert!(text.contains("sync.options.secret_access_key"), "{text}");
    assert!(!text.contains("\"x\""), "a credential's value is never echoed: {text}");
    assert!(text.contains("sync.folder"), "{text}");
    let ok = edit(
        "[channels.playlist]\nsource = { items",
        "[channels.sync]\nsource = \"s3://media/library\"\nfolder = \"rock\"\noptions = { endpoint = \"http://127.0.0.1:9000\", allow_http = \"true\" }\n[channels.playlist]\nsource = { items",
    );
    let config = parse(&ok).unwrap();
    assert_eq!(config.channels.iter().find_map(|c| c.sync.as_ref()).unwrap().folder.as_deref(), Some("rock"));
    assert_eq!(config.node.sync.parallel, 4);
}

/// MINIMAL's rock channel rendered from a media folder instead of a playlist source.
fn rendered(render_and_encode: &str) -> String {
    edit("source = { folder = \"/srv/media/rock\" }", &format!("order = \"sequential\"\n{render_and_encode}"))
}

#[test]
fn rendered_channel_defaults_and_plays_its_items_folder() {
    let config = parse(&rendered("[channels.render]\nmedia = \"/srv/songs\"")).unwrap_or_else(|e| panic!("{e}"));
    let rock = config.channel("rock").unwrap();
    let render = rock.render.as_ref().unwrap();
    assert_eq!((render.template.as_str(), render.allow_network), ("default", false));
    assert!(rock.encode.is_none(), "the default format applies");
    let spec = crate::spec::channel_spec(rock, Path::new("/data"), Path::new("/data/cache"));
    assert_eq!(spec.playlist, headend_actors::playout::spec::PlaylistSource::Folder("/data/channels/rock/items".into()));
    let e = ChannelEncode::default();
    assert_eq!((e.width, e.height, e.fps, e.gop(), e.video, e.audio, e.loudness), (1280, 720, 25, 25, VideoFormat::H264, AudioFormat::Aac, Loudness::AtscA85));
    assert_eq!(config.node.encode, EncodeNodeConfig::default());
}

#[test]
fn rendered_channel_errors_name_the_field_and_fix() {
    // A playlist source on a rendered channel.
    let toml = edit("source = { folder = \"/srv/media/rock\" }", "source = { folder = \"/srv/media/rock\" }\n[channels.render]\nmedia = \"/m\"");
    let (issue, text) = single(&toml);
    assert!(matches!(issue, ConfigIssue::RenderedPlaylistSource { .. }), "{text}");
    assert!(text.contains("channels[\"rock\"].playlist.source") && text.contains("remove playlist.source"), "{text}");
    // No media folder and no sync source.
    let (issue, text) = single(&rendered("[channels.render]\ntemplate = \"default\""));
    assert!(matches!(issue, ConfigIssue::RenderWithoutMedia { .. }), "{text}");
    assert!(text.contains("channels[\"rock\"].render.media"), "{text}");
    // A template that is neither default, file:// nor http(s)://.
    let (_, text) = single(&rendered("[channels.render]\nmedia = \"/m\"\ntemplate = \"ftp://x/page.html\""));
    assert!(text.contains("render.template") && text.contains("file:///"), "{text}");
    let (_, text) = single(&rendered("[channels.render]\nmedia = \"/m\"\ntemplate = \"file://relative.html\""));
    assert!(text.contains("absolute path"), "{text}");
    // An odd width, an unknown codec and a format too fast for the channel.
    let (_, text) = single(&rendered("[channels.render]\nmedia = \"/m\"\n[channels.encode]\nwidth = 1279"));
    assert!(text.contains("channels[\"rock\"].encode.width") && text.contains("even width"), "{text}");
    let text = errors(&rendered("[channels.render]\nmedia = \"/m\"\n[channels.encode]\nvideo = \"vp9\"")).to_string();
    assert!(text.contains("vp9"), "{text}");
    let (issue, text) = single(&rendered("[channels.render]\nmedia = \"/m\"\n[channels.encode]\nvideo_bitrate = 8000000"));
    assert!(matches!(issue, ConfigIssue::ItemRateTooHigh { required, .. } if required > 8_000_000), "{text}");
    assert!(text.contains("channels[\"rock\"].mux_rate") && text.contains("lower encode.video_bitrate"), "{text}");
    // [channels.encode] alone.
    let (issue, _) = single(&edit("[channels.playlist]\nsource = { folder = \"/srv/media/rock\" }", "[channels.playlist]\nsource = { folder = \"/srv/media/rock\" }\n[channels.encode]\nfps = 25"));
    assert!(matches!(issue, ConfigIssue::EncodeWithoutRender { .. }));
    // [node.encode] limits.
    let toml = MINIMAL.replace("id = \"node-a\"", "id = \"node-a\"\n[node.encode]\nframe_timeout_secs = 0");
    let (_, text) = single(&toml);
    assert!(text.contains("node.encode.frame_timeout_secs"), "{text}");
}
