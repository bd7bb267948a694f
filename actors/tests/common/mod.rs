//! Fixtures shared by the playout tests: real items made with the FFmpeg libraries, and
//! channel specs on loopback multicast.
#![allow(dead_code)]

use headend_actors::playout::actor::{actor_name, ChannelMsg, ChannelStatus, NowPlaying};
use headend_actors::playout::clock::MonotonicClock;
use headend_actors::playout::supervisor::{PlayoutArgs, PlayoutSupervisor, SupervisorMsg};
use headend_actors::ts::analyzer::Report;
use ractor::{Actor, ActorRef};
use std::sync::Arc;
use headend_actors::encode::testcard::{generate_test_item, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec};
use headend_actors::playout::spec::*;
use headend_actors::ts::MuxRate;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Items {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    /// H.264/AAC 640x360, 800 kbit/s.
    pub h264_aac: PathBuf,
    /// MPEG-2/MP2 720x576, 1.2 Mbit/s.
    pub mpeg2_mp2: PathBuf,
    /// Audio only, MP2 192 kbit/s.
    pub audio_only: PathBuf,
}

pub const ITEM_SECONDS: f64 = 2.4;

fn write_item(path: &Path, title: &str, artist: &str, video: Option<VideoSpec>, audio: AudioSpec) {
    let spec = TestItemSpec {
        title: title.into(),
        artist: artist.into(),
        duration: Duration::from_secs_f64(ITEM_SECONDS),
        video,
        audio: Some(audio),
    };
    generate_test_item(&spec, path).unwrap_or_else(|e| panic!("making {}: {e}", path.display()));
    let meta = serde_json::json!({"media_id": title.to_lowercase(), "title": title, "artist": artist, "genre": "Test"});
    std::fs::write(format!("{}.json", path.display()), meta.to_string()).unwrap();
}

/// Items made once per test binary.
pub fn items() -> &'static Items {
    static ITEMS: OnceLock<Items> = OnceLock::new();
    ITEMS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_path_buf();
        let h264_aac = p.join("alpha.ts");
        write_item(
            &h264_aac,
            "Alpha",
            "The H264s",
            Some(VideoSpec { codec: VideoCodec::H264, width: 640, height: 360, fps: 25, bitrate: 800_000, gop: 25 }),
            AudioSpec { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 2, bitrate: 128_000, tone_hz: 440 },
        );
        let mpeg2_mp2 = p.join("bravo.ts");
        write_item(
            &mpeg2_mp2,
            "Bravo",
            "MPEG Two",
            Some(VideoSpec { codec: VideoCodec::Mpeg2, width: 720, height: 576, fps: 25, bitrate: 1_200_000, gop: 12 }),
            AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: 192_000, tone_hz: 660 },
        );
        let audio_only = p.join("charlie.ts");
        write_item(
            &audio_only,
            "Charlie",
            "Radio Only",
            None,
            AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: 192_000, tone_hz: 880 },
        );
        Items { dir: p, _dir: dir, h264_aac, mpeg2_mp2, audio_only }
    })
}

/// A channel on loopback multicast 239.255.77.`octet`:`port`.
pub fn spec(id: &str, octet: u8, port: u16, playlist: Vec<PathBuf>) -> ChannelSpec {
    ChannelSpec {
        id: id.into(),
        name: format!("Test {id}"),
        service_name: format!("Test {id} TV"),
        provider: "headend tests".into(),
        service_kind: ServiceKind::Tv,
        program_number: 1,
        transport_stream_id: 1,
        original_network_id: 1,
        mux_rate: MuxRate::new(3_000_000),
        pids: ChannelPids::default(),
        output: MulticastOutput {
            group: Ipv4Addr::new(239, 255, 77, octet),
            port,
            interface: Ipv4Addr::LOCALHOST,
            ttl: 1,
            loopback: true,
            rtp: false,
            source: None,
            hitless_group: None,
        },
        playlist: PlaylistSource::Items(playlist),
        order: PlayOrder::Sequential,
        fallback: None,
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T>(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Node {
    supervisor: ActorRef<SupervisorMsg>,
    _state: tempfile::TempDir,
}

impl Node {
    pub async fn start(channels: Vec<ChannelSpec>) -> Node {
        let state = tempfile::tempdir().unwrap();
        let supervisor = Self::spawn(channels, state.path()).await;
        Node { supervisor, _state: state }
    }

    /// A node keeping its state in `dir` (for restart tests).
    pub async fn start_in(channels: Vec<ChannelSpec>, dir: &Path) -> ActorRef<SupervisorMsg> {
        Self::spawn(channels, dir).await
    }

    async fn spawn(channels: Vec<ChannelSpec>, dir: &Path) -> ActorRef<SupervisorMsg> {
        let args = PlayoutArgs { channels, data_dir: dir.into(), clock: Arc::new(MonotonicClock::new()) };
        Actor::spawn(None, PlayoutSupervisor, args).await.unwrap().0
    }

    pub async fn stop(self) {
        self.supervisor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    }
}

pub fn channel(id: &str) -> Option<ActorRef<ChannelMsg>> {
    ractor::registry::where_is(actor_name(id)).map(ActorRef::from)
}

pub async fn now_playing(id: &str) -> Option<NowPlaying> {
    channel(id)?.call(ChannelMsg::NowPlaying, Some(Duration::from_secs(2))).await.ok()?.success_or(()).ok()?
}

pub async fn status(id: &str) -> Option<ChannelStatus> {
    channel(id)?.call(ChannelMsg::Status, Some(Duration::from_secs(2))).await.ok()?.success_or(()).ok()
}

/// Waits until the entry with global index `index` has been presented for `after`.
pub async fn wait_for_entry(id: &str, index: u64, after: Duration) -> NowPlaying {
    wait_for(Duration::from_secs(60), &format!("channel {id} to reach entry {index}"), async || {
        now_playing(id).await.filter(|n| n.index > index || (n.index == index && n.position_ms >= after.as_millis() as u64))
    })
    .await
}


pub fn describe(report: &Report) -> String {
    let errs: Vec<String> = report.p1_errors.iter().chain(&report.p2_errors).take(20).map(|e| format!("{:?}", e)).collect();
    format!("counts {:?}\nfirst errors:\n{}", report.error_counts, errs.join("\n"))
}

