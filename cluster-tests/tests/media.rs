//! Media of replicated channels, end to end on 3 node processes: a channel requested by
//! genre with the default UI template and an object-store URL is synced from a real
//! S3-compatible server (s3s-fs), rendered in headless Chromium and encoded on the one
//! node the scheduler placed its encode job on; its main and backup mirror that node's
//! items byte for byte, and the main plays them: clean on the wire (TR 101 290) and
//! decoded by ffprobe, with the songs' titles as now playing.

use headend_cluster_tests::cluster::{stream_request, ClusterBuilder, TestCluster};
use headend_cluster_tests::s3::S3Store;
use headend_cluster_tests::{analyze, describe, http_get, ts_bytes, wait_for, Capture};
use headend_proto::admin as pb;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(30);
/// Sync, Chromium start and two short builds on a 2-core machine shared with two other
/// nodes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

fn song(dir: &Path, file: &str, hz: u32, secs: u32, title: &str) {
    let src = format!("sine=frequency={hz}:duration={secs}:sample_rate=44100");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &src, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"])
        .args(["-metadata", &format!("title={title}"), "-metadata", "artist=The Cluster", "-metadata", "genre=Rock"])
        .arg(dir.join(file))
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
}

fn json(c: &TestCluster, node: usize, path: &str) -> Option<Value> {
    let r = http_get(c.nodes[node].http, path).ok().filter(|r| r.status == 200)?;
    serde_json::from_str(&r.body).ok()
}

/// The `.ts` items (and sidecars) of a node's items folder of `channel`, with their bytes.
fn items(c: &TestCluster, node: usize, channel: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = c.nodes[node].data_dir.join("channels").join(channel).join("items");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.ends_with(".ts") || name.ends_with(".json")).then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_rendered_channel_synced_from_s3_is_built_once_and_played_by_main_and_backup() {
    let store = S3Store::start();
    let rock = store.bucket_dir().join("Rock");
    std::fs::create_dir_all(&rock).unwrap();
    song(&rock, "01-north.mp3", 440, 6, "North Star");
    song(&rock, "02-south.mp3", 660, 5, "South Wind");

    let mut builder = ClusterBuilder::new(3);
    for (k, v) in S3Store::env() {
        builder = builder.env(k, v);
    }
    let mut c = builder.start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    let mut req = stream_request("", "239.255.216.1", 5601);
    req.channel = Some(pb::request_stream_request::Channel::Genre("Rock".into()));
    req.template = "default".into();
    req.media_folder = store.media_url();
    let f = req.format.as_mut().unwrap();
    (f.width, f.height, f.video_bitrate, f.audio_bitrate) = (640, 360, 800_000, 96_000);
    let d = c.block_on(c.admin(leader).request_stream(req)).expect("request stream").into_inner();
    let id = d.channel_id.clone();
    assert_eq!(id, "rock");
    let (main, backup) = (c.index_of(&d.main_node), c.index_of(&d.backup_node));

    // The scheduler places the channel's one encode job; with three nodes it goes to the
    // node that streams nothing, so both main and backup mirror.
    let mut watch = c.block_on(c.admin(leader).watch_encode_jobs(pb::WatchEncodeJobsRequest { channel: id.clone() })).expect("watch").into_inner();
    let job = loop {
        let table = c.block_on(async { tokio::time::timeout(CONVERGE, watch.message()).await }).expect("a job table in time").expect("stream").expect("open");
        if let Some(j) = table.jobs.into_iter().find(|j| j.channel == id && !j.node.is_empty()) {
            break j;
        }
    };
    assert_eq!(job.id, "render:rock");
    let builder_node = c.index_of(&job.node);
    assert!(builder_node != main && builder_node != backup, "job on {}, main {}, backup {}", job.node, d.main_node, d.backup_node);

    // The builder syncs the songs from S3 and builds both.
    let done = wait_for(BUILD_TIMEOUT, "both songs built on the builder", || {
        let status = json(&c, builder_node, "/encode/status")?;
        let jobs = status["jobs"].as_array()?.clone();
        let done: Vec<Value> = jobs.into_iter().filter(|j| j["channel"] == id.as_str() && j["state"] == "done").collect();
        (done.len() == 2).then_some(done)
    });
    let mut titles: Vec<String> = done.iter().map(|j| j["title"].as_str().unwrap_or_default().to_owned()).collect();
    titles.sort();
    assert_eq!(titles, ["North Star", "South Wind"]);
    // Only the builder built: the others run no encode pool at all.
    for n in [main, backup] {
        let r = http_get(c.nodes[n].http, "/encode/status").unwrap();
        assert_eq!(r.status, 404, "node {n} encodes nothing: {}", r.body);
    }

    // Main and backup hold the builder's items, byte for byte.
    let built = items(&c, builder_node, &id);
    assert_eq!(built.iter().filter(|(n, _)| n.ends_with(".ts")).count(), 2, "{:?}", built.iter().map(|b| &b.0).collect::<Vec<_>>());
    for n in [main, backup] {
        wait_for(CONVERGE, &format!("node {n} to mirror the builder's items"), || (items(&c, n, &id) == built).then_some(()));
    }

    // The main plays them, clean, while the backup follows in shadow.
    wait_for(Duration::from_secs(60), "a song on air", || {
        let now = json(&c, main, &format!("/channels/{id}/now"))?;
        titles.iter().any(|t| now["title"] == t.as_str()).then_some(())
    });
    wait_for(CONVERGE, "the backup in step with the main", || {
        json(&c, backup, &format!("/channels/{id}/status")).filter(|s| s["shadow"]["hearing"] == true && !s["shadow"]["matched"].is_null())
    });
    let capture = Capture::start(Ipv4Addr::new(239, 255, 216, 1), 5601, Ipv4Addr::LOCALHOST).unwrap();
    let wanted = headend_cluster_tests::datagrams_in(d_mux_rate(&c, leader, &id), Duration::from_secs(4));
    wait_for(CONVERGE, "4 s of output", || (capture.count() >= wanted).then_some(()));
    let datagrams = capture.finish();
    let report = analyze(&datagrams);
    assert!(report.p1_error_count() == 0 && report.p2_error_count() == 0, "{}", describe(&report));
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("air.ts");
    std::fs::write(&ts, ts_bytes(&datagrams)).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json"])
        .arg(&ts)
        .output()
        .expect("ffprobe runs");
    let probe: Value = serde_json::from_slice(&probe.stdout).unwrap_or(Value::Null);
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    assert!(streams.iter().any(|s| s["codec_name"] == "h264" && s["width"] == 640 && s["height"] == 360), "{probe}");
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"), "{probe}");

    // kill -9 of the builder: its lease lapses and the job moves to a live node, which
    // syncs the songs itself. A synced file keeps the store's modification time, so the
    // media fingerprints, and the item names, are the same on every node: the new
    // builder finds the items it mirrored and builds nothing; both streaming nodes keep
    // the same bytes, and the channel stays on air, clean.
    c.kill(builder_node);
    let live: Vec<usize> = (0..3).filter(|n| *n != builder_node).collect();
    let moved = wait_for(CONVERGE, "the encode job on a live node", || {
        let n = *live.iter().find(|n| c.status(**n).is_ok())?;
        let jobs = job_table(&c, n, &id)?;
        jobs.into_iter().find(|j| j.channel == id && !j.node.is_empty() && j.node != job.node)
    });
    let rebuilder = c.index_of(&moved.node);
    assert!(live.contains(&rebuilder), "{} is not a live node", moved.node);
    wait_for(BUILD_TIMEOUT, "the new builder to know both songs, with nothing to build", || {
        let status = json(&c, rebuilder, "/encode/status")?;
        let jobs: Vec<Value> = status["jobs"].as_array()?.iter().filter(|j| j["channel"] == id.as_str()).cloned().collect();
        let pending = jobs.iter().any(|j| j["state"] != "done");
        (jobs.len() == 2 && !pending).then_some(())
    });
    for n in &live {
        assert_eq!(items(&c, *n, &id), built, "node {n} keeps the items, byte for byte (nothing rebuilt)");
    }
    let capture = Capture::start(Ipv4Addr::new(239, 255, 216, 1), 5601, Ipv4Addr::LOCALHOST).unwrap();
    wait_for(CONVERGE, "4 s of output after the builder's death", || (capture.count() >= wanted).then_some(()));
    let report = analyze(&capture.finish());
    assert!(report.p1_error_count() == 0 && report.p2_error_count() == 0, "{}", describe(&report));
}

/// The encode jobs of `channel` as `node` sees them (the first table of a watch).
fn job_table(c: &TestCluster, node: usize, channel: &str) -> Option<Vec<pb::EncodeJob>> {
    c.block_on(async {
        let mut admin = c.admin(node);
        let mut watch = admin.watch_encode_jobs(pb::WatchEncodeJobsRequest { channel: channel.into() }).await.ok()?.into_inner();
        let table = tokio::time::timeout(Duration::from_secs(2), watch.message()).await.ok()?.ok()??;
        Some(table.jobs)
    })
}

/// The channel's mux rate as the cluster holds it.
fn d_mux_rate(c: &TestCluster, node: usize, id: &str) -> u64 {
    let channels = c.channels(node).expect("list channels");
    channels.iter().find(|ch| ch.id == id).map(|ch| ch.mux_rate).expect("the channel is listed")
}
