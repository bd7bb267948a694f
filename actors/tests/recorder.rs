//! The recorder on real parts: a channel's stream made by the project's mux from items
//! made with the FFmpeg libraries, sent over real multicast on loopback (plain and RTP),
//! recorded by the recorder actor into rolling segments, checked with the project's
//! TR 101 290 analyzer and ffprobe, and read back. Groups 239.255.88.x, ports 588x.

mod common;

use common::wait_for;
use headend_actors::playout::clock::{unix_now_ns, Clock, MonotonicClock};
use headend_actors::playout::extend::{extend, ProbeCache};
use headend_actors::playout::mux::ChannelMux;
use headend_actors::playout::schedule::Schedule;
use headend_actors::playout::sender::{MulticastSender, PACKETS_PER_DATAGRAM};
use headend_actors::playout::spec::ChannelSpec;
use headend_actors::recorder::{
    part_path, RecorderActor, RecorderArgs, RecorderError, RecorderMsg, RecorderSettings, RecorderStatus, RecordingReader,
    SegmentIndex, SegmentInfo, SegmentState, ACTOR_NAME,
};
use headend_actors::ts::analyzer::{analyze_file, ErrorKind};
use ractor::{Actor, ActorRef};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// One datagram as sent: its TS bytes (without RTP).
#[derive(Debug, Clone)]
struct Sent {
    ts: Vec<u8>,
}

/// A channel's stream paced in real time by the project's mux, sent by its multicast
/// sender. A pause delays the stream (nothing is skipped), so it stays continuous.
struct TestSender {
    sent: Arc<Mutex<Vec<Sent>>>,
    pause_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _state: tempfile::TempDir,
}

impl TestSender {
    fn start(spec: ChannelSpec) -> TestSender {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().to_path_buf();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let pause_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p, st) = (sent.clone(), pause_ns.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let clock = MonotonicClock::new();
            let mut schedule = Schedule::new(clock.now_unix_ns(), spec.mux_rate);
            let mut cache = ProbeCache::default();
            let report = extend(&mut schedule, &spec, &dir, &mut cache, 0);
            assert!(report.skipped.is_empty(), "{:?}", report.skipped);
            let rate = spec.mux_rate;
            let mut mux = ChannelMux::resume(spec.clone(), schedule.clone(), 0);
            let mut sender = MulticastSender::open(&spec.output, 0x5EC0).unwrap();
            let mut offset = 0u64;
            let mut extended_at = 0u64;
            while !st.load(Ordering::Relaxed) {
                let k = mux.position();
                if k > extended_at + rate.packets_in_ms(10_000) {
                    extend(&mut schedule, &spec, &dir, &mut cache, k);
                    mux.update_schedule(schedule.clone());
                    extended_at = k;
                }
                offset += p.swap(0, Ordering::Relaxed);
                clock.sleep_until_unix_ns(schedule.unix_ns_of_packet(k) + offset);
                let packets: Vec<_> = (0..PACKETS_PER_DATAGRAM).map(|_| mux.next_packet()).collect();
                sender.send(&packets, rate.pcr_of_packet(k).ticks()).unwrap();
                let ts = packets.iter().flat_map(|p| p.0).collect();
                s.lock().unwrap().push(Sent { ts });
            }
        });
        TestSender { sent, pause_ns, stop, thread: Some(thread), _state: state }
    }

    fn pause(&self, d: Duration) {
        self.pause_ns.store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn datagrams(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    fn finish(mut self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("sender thread");
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

/// An H.264/AAC channel at 3 Mbit/s on 239.255.88.`n`:`5880 + n`.
fn channel_spec(id: &str, n: u8, rtp: bool) -> ChannelSpec {
    let mut spec = common::spec(id, n, 5880 + n as u16, vec![common::items().h264_aac.clone()]);
    spec.output.group = Ipv4Addr::new(239, 255, 88, n);
    spec.output.rtp = rtp;
    spec
}

fn settings(dir: &Path) -> RecorderSettings {
    let mut s = RecorderSettings::new(dir);
    s.segment_length = Duration::from_secs(1);
    s.pat_wait = Duration::from_millis(500);
    s.disk_floor_bytes = 0;
    s.gap_threshold = Duration::from_millis(250);
    s
}

async fn spawn(name: Option<&str>, settings: RecorderSettings, index: Option<SegmentIndex>) -> ActorRef<RecorderMsg> {
    Actor::spawn(name.map(str::to_string), RecorderActor, RecorderArgs { settings, index }).await.unwrap().0
}

fn record(r: &ActorRef<RecorderMsg>, channel: &str, spec: &ChannelSpec) {
    r.send_message(RecorderMsg::Record {
        channel: channel.into(),
        group: spec.output.group,
        port: spec.output.port,
        interface: Ipv4Addr::LOCALHOST,
    })
    .unwrap();
}

async fn status(r: &ActorRef<RecorderMsg>) -> RecorderStatus {
    ractor::call_t!(r, RecorderMsg::Status, 5_000).unwrap()
}

async fn list(r: &ActorRef<RecorderMsg>, channel: &str) -> Vec<SegmentInfo> {
    let all: Vec<SegmentInfo> = ractor::call_t!(r, RecorderMsg::List, 5_000).unwrap();
    all.into_iter().filter(|s| s.channel == channel).collect()
}

fn complete(v: &[SegmentInfo]) -> Vec<SegmentInfo> {
    v.iter().filter(|s| s.state == SegmentState::Complete).cloned().collect()
}

async fn wait_complete(r: &ActorRef<RecorderMsg>, channel: &str, n: usize) -> Vec<SegmentInfo> {
    wait_for(WAIT, &format!("{n} complete segments of {channel}"), async || {
        let c = complete(&list(r, channel).await);
        (c.len() >= n).then_some(c)
    })
    .await
}

/// Stops recording `channel` and waits until its last segment is closed.
async fn stop_recording(r: &ActorRef<RecorderMsg>, channel: &str) -> Vec<SegmentInfo> {
    r.send_message(RecorderMsg::Stop { channel: channel.into() }).unwrap();
    wait_for(WAIT, "the recording to stop", async || {
        let st = status(r).await;
        let segs = list(r, channel).await;
        (!st.channel(channel).unwrap().recording && segs.iter().all(|s| s.state == SegmentState::Complete)).then_some(segs)
    })
    .await
}

/// Where `needle` starts in the sent stream, if it is a contiguous part of it. (The last
/// segment of a stopped recording may hold only a few packets, if the stop came just
/// after a roll; it must still be whole packets of the stream.)
fn find_in(sent: &[u8], needle: &[u8]) -> Option<usize> {
    assert!(!needle.is_empty() && needle.len().is_multiple_of(188), "whole packets: {} bytes", needle.len());
    let head = &needle[..needle.len().min(188 * 20)];
    (0..sent.len().saturating_sub(needle.len()) / 188 + 1)
        .map(|i| i * 188)
        .find(|&at| &sent[at..at + head.len()] == head && &sent[at..at + needle.len()] == needle)
}

fn sent_ts(sent: &[Sent]) -> Vec<u8> {
    sent.iter().flat_map(|s| s.ts.iter().copied()).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn ffprobe_frames(path: &Path) -> Vec<(String, u64)> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.to_string(), f.next()?.trim().parse().unwrap_or(0)))
        })
        .collect()
}

fn first_packet_is_pat(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    b.len() >= 188 && b[0] == 0x47 && b[1] & 0x5F == 0x40 && b[2] == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_roll_decode_are_indexed_and_read_back() {
    let spec = channel_spec("rec-main", 1, false);
    let dir = tempfile::tempdir().unwrap();
    let index = SegmentIndex::open(&dir.path().join("index.sled")).unwrap();
    let recorder = spawn(Some(ACTOR_NAME), settings(dir.path()), Some(index.clone())).await;
    assert!(ractor::registry::where_is(ACTOR_NAME).is_some(), "registered as {ACTOR_NAME}");
    let sender = TestSender::start(spec.clone());
    // Join mid-stream (after the first item's lead-in), as a backup node does.
    wait_for(WAIT, "the stream to run for 2 s", async || (sender.datagrams() >= 570).then_some(())).await;
    record(&recorder, "main", &spec);
    wait_complete(&recorder, "main", 5).await;
    let segs = stop_recording(&recorder, "main").await;
    let st = status(&recorder).await;
    let sent = sender.finish();
    let stream = sent_ts(&sent);

    // Files: exactly the indexed segments, named by their start, nothing half-written.
    let chan = dir.path().join("main");
    let mut names: Vec<String> = segs.iter().map(|s| format!("{}.ts", s.start_unix_ms)).collect();
    names.sort();
    assert_eq!(files_in(&chan), names, "only complete segments on disk");
    for s in &segs {
        assert_eq!(s.path, chan.join(format!("{}.ts", s.start_unix_ms)));
        assert_eq!(s.start_unix_ms, s.first_arrival_unix_ns / 1_000_000);
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), s.bytes, "{}: index byte count", s.path.display());
        assert_eq!(s.bytes, s.packets * 188);
        assert_eq!((s.group, s.port), (spec.output.group, spec.output.port));
        assert!(!s.recovered);
    }
    let c = st.channel("main").unwrap();
    assert_eq!(c.counters.segments_closed, segs.len() as u64);
    assert_eq!(c.counters.bytes, c.counters.datagrams * 7 * 188);
    assert_eq!((c.counters.invalid_datagrams, c.restarts, c.last_error.as_deref()), (0, 0, None));

    // Rolling: a segment is cut at the first PAT once it is 1 s old (PATs come every 80
    // ms); the last one was closed by the stop.
    for w in segs.windows(2) {
        let ms = (w[1].first_arrival_unix_ns - w[0].first_arrival_unix_ns) / 1_000_000;
        assert!((995..=1_300).contains(&ms), "segment {} lasted {ms} ms", w[0].start_unix_ms);
    }

    // Every segment starts with a PAT, is TR 101 290 clean on its own (priority 1 and
    // 2) and decodes with FFmpeg.
    // (The last one, closed by the stop, may be too short to judge.)
    for s in &segs {
        assert!(first_packet_is_pat(&s.path), "{} starts with a PAT", s.path.display());
        let r = analyze_file(&s.path).unwrap();
        assert!(r.is_clean(), "{}: {}", s.path.display(), common::describe(&r));
        if s == segs.last().unwrap() {
            continue;
        }
        assert!(r.max_pat_interval_ms.unwrap() <= 100.0);
        let frames = ffprobe_frames(&s.path);
        for codec in ["h264", "aac"] {
            assert!(frames.iter().any(|(c, n)| c == codec && *n > 0), "{}: ffprobe {frames:?}", s.path.display());
        }
    }

    // Together the segments are exactly what was sent, from the first PAT on: no packet
    // lost, duplicated or cut.
    let recorded: Vec<u8> = segs.iter().flat_map(|s| std::fs::read(&s.path).unwrap()).collect();
    let at = find_in(&stream, &recorded).expect("the recording is a contiguous part of the sent stream");

    // Read back from the middle of the third segment: that segment and everything after.
    recorder.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    assert_eq!(index.all().unwrap(), segs, "the index holds exactly the listed segments");
    let middle = (segs[2].first_arrival_unix_ns + segs[2].last_arrival_unix_ns) / 2;
    let mut reader = RecordingReader::open(&index, "main", middle).unwrap();
    assert_eq!(reader.segment(), &segs[2]);
    let mut read = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        read.extend_from_slice(&p.0);
    }
    let from_third: Vec<u8> = segs[2..].iter().flat_map(|s| std::fs::read(&s.path).unwrap()).collect();
    assert_eq!(read.len(), from_third.len());
    assert!(read == from_third, "reader yields the segments' packets");
    let sent_at = find_in(&stream, &read).expect("what the reader yields was sent, in order");
    assert!(sent_at > at);
    assert_eq!(&read[..188 * 7], &stream[sent_at..sent_at + 188 * 7]);
    // A time in the hole before the recording starts reads from the first segment; one
    // after the end is refused with a clear error.
    assert_eq!(RecordingReader::open(&index, "main", 1).unwrap().segment(), &segs[0]);
    let after = segs.last().unwrap().last_arrival_unix_ns + 1;
    let e = RecordingReader::open(&index, "main", after).unwrap_err();
    assert!(matches!(e, RecorderError::NoRecording { .. }) && e.to_string().contains("channel main"), "{e}");
    // Lookups by time.
    let t = (segs[1].first_arrival_unix_ns + segs[1].last_arrival_unix_ns) / 2;
    assert_eq!(index.segments("main", t, t + 1).unwrap(), [segs[1].clone()]);
    let (from, to) = (segs[1].last_arrival_unix_ns + 1, segs[3].first_arrival_unix_ns);
    assert_eq!(index.segments("main", from, to).unwrap(), segs[2..=3].to_vec(), "overlapping segments only");
    assert!(index.segments("other", 0, u64::MAX).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rtp_sender_is_counted_as_a_gap() {
    let spec = channel_spec("rec-gap", 2, true);
    let dir = tempfile::tempdir().unwrap();
    let recorder = spawn(None, settings(dir.path()), None).await;
    let sender = TestSender::start(spec.clone());
    record(&recorder, "gap", &spec);
    wait_complete(&recorder, "gap", 1).await;
    let before = status(&recorder).await.channel("gap").unwrap().counters;
    sender.pause(Duration::from_millis(800));
    let after = wait_for(WAIT, "the gap to be counted", async || {
        let c = status(&recorder).await.channel("gap").unwrap().counters;
        (c.gaps > before.gaps && c.largest_gap_ns >= 750_000_000).then_some(c)
    })
    .await;
    assert!(after.largest_gap_ns < 3_000_000_000, "gap {} ns", after.largest_gap_ns);
    let n = complete(&list(&recorder, "gap").await).len();
    wait_complete(&recorder, "gap", n + 2).await;
    let segs = stop_recording(&recorder, "gap").await;
    let sent = finish_and_stop(sender, recorder).await;
    let stream = sent_ts(&sent);

    // The gap is in the segment that got the first packets after it.
    let with_gap: Vec<&SegmentInfo> = segs.iter().filter(|s| s.largest_gap_ns >= 750_000_000).collect();
    assert_eq!(with_gap.len(), 1, "{segs:#?}");
    assert!(with_gap[0].gaps >= 1);
    // RTP is stripped: each segment is plain TS, clean, and a contiguous part of what was
    // sent (the stream was delayed, not cut, so even the segment with the gap is clean).
    for s in &segs {
        let bytes = std::fs::read(&s.path).unwrap();
        assert!(bytes.chunks(188).all(|p| p[0] == 0x47));
        assert!(find_in(&stream, &bytes).is_some(), "{} is a part of the sent stream", s.path.display());
        let r = analyze_file(&s.path).unwrap();
        assert_eq!(r.p1_error_count(), 0, "{}: {}", s.path.display(), common::describe(&r));
    }
}

async fn finish_and_stop(sender: TestSender, recorder: ActorRef<RecorderMsg>) -> Vec<Sent> {
    let sent = sender.finish();
    recorder.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_left_by_a_crash_is_recovered_on_restart() {
    let spec = channel_spec("rec-crash", 3, false);
    let dir = tempfile::tempdir().unwrap();
    let index = SegmentIndex::open(&dir.path().join("own-index.sled")).unwrap();
    let recorder = spawn(None, settings(dir.path()), Some(index.clone())).await;
    let sender = TestSender::start(spec.clone());
    record(&recorder, "crash", &spec);
    wait_complete(&recorder, "crash", 2).await;
    let segs = stop_recording(&recorder, "crash").await;
    finish_and_stop(sender, recorder).await;

    // What a kill -9 leaves: the segment being written as a .part ending in half a
    // packet, indexed as recording with the counts it had at opening; and a .part
    // opened just before the crash, still empty.
    let chan = dir.path().join("crash");
    let victim = segs.last().unwrap().clone();
    let mut content = std::fs::read(&victim.path).unwrap();
    content.extend_from_slice(&[0x47, 0x00, 0x11, 0x10, 0xAB]);
    std::fs::remove_file(&victim.path).unwrap();
    std::fs::write(part_path(&victim.path), &content).unwrap();
    let at_open = SegmentInfo { bytes: 0, packets: 0, last_arrival_unix_ns: victim.first_arrival_unix_ns, state: SegmentState::Recording, ..victim.clone() };
    index.put(&at_open).unwrap();
    let empty_start = victim.start_unix_ms + 5_000;
    let empty = SegmentInfo { start_unix_ms: empty_start, path: chan.join(format!("{empty_start}.ts")), ..at_open.clone() };
    index.put(&empty).unwrap();
    std::fs::write(part_path(&empty.path), b"").unwrap();
    // Not the recorder's: left alone.
    std::fs::write(chan.join("notes.txt"), b"keep me").unwrap();
    std::fs::write(chan.join("x.ts.part"), b"not ours").unwrap();

    // The restarted recorder recovers before it answers anything.
    let recorder = spawn(None, settings(dir.path()), Some(index.clone())).await;
    let listed = list(&recorder, "crash").await;
    recorder.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    let recovered = index.get("crash", victim.start_unix_ms).unwrap().unwrap();
    assert_eq!(recovered.state, SegmentState::Complete);
    assert!(recovered.recovered);
    assert_eq!((recovered.bytes, recovered.packets), (victim.bytes, victim.packets), "cut back to whole packets");
    assert_eq!(std::fs::metadata(&victim.path).unwrap().len(), victim.bytes);
    assert!(recovered.last_arrival_unix_ns >= recovered.first_arrival_unix_ns);
    assert!(index.get("crash", empty_start).unwrap().is_none(), "the empty one is dropped");
    let mut expected: Vec<String> = segs.iter().map(|s| format!("{}.ts", s.start_unix_ms)).collect();
    expected.extend(["notes.txt".to_string(), "x.ts.part".to_string()]);
    expected.sort();
    assert_eq!(files_in(&chan), expected);
    assert_eq!(listed.len(), segs.len());
    assert!(listed.iter().all(|s| s.state == SegmentState::Complete));
    let r = analyze_file(&victim.path).unwrap();
    assert!(r.is_clean(), "the recovered segment is still clean: {}", common::describe(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_segments_and_keeps_under_the_cap() {
    let spec = channel_spec("rec-keep", 4, false);
    let dir = tempfile::tempdir().unwrap();
    let mut by_age = settings(&dir.path().join("age"));
    by_age.retention = Duration::from_secs(2);
    by_age.retention_interval = Duration::from_millis(200);
    let mut by_size = settings(&dir.path().join("size"));
    by_size.max_bytes = Some(1_000_000);
    by_size.retention_interval = Duration::from_millis(200);
    // Files in the channel folder that are not the recorder's segments.
    let foreign = dir.path().join("age/keep");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"keep me").unwrap();
    std::fs::write(foreign.join("1.ts"), b"not indexed").unwrap();

    let age = spawn(None, by_age, None).await;
    let size = spawn(None, by_size, None).await;
    let sender = TestSender::start(spec.clone());
    record(&age, "keep", &spec);
    record(&size, "keep", &spec);

    // Every segment seen, until some were deleted by age and by size.
    let mut seen = Vec::new();
    wait_for(WAIT, "retention to delete segments by age", async || {
        seen.extend(complete(&list(&age, "keep").await));
        (status(&age).await.deleted_segments >= 3).then_some(())
    })
    .await;
    let cap = wait_for(WAIT, "retention to delete segments by size", async || {
        let st = status(&size).await;
        (st.deleted_segments >= 2).then_some(st)
    })
    .await;
    let now = unix_now_ns();
    let kept = complete(&list(&age, "keep").await);
    let under_cap = complete(&list(&size, "keep").await);
    let st = status(&age).await;
    drop(sender.finish());
    for r in [age, size] {
        r.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    }

    assert!(st.last_retention_error.is_none(), "{:?}", st.last_retention_error);
    for s in &kept {
        let age_ms = now.saturating_sub(s.last_arrival_unix_ns) / 1_000_000;
        assert!(age_ms < 2_000 + 1_000, "segment {} kept at {age_ms} ms old", s.start_unix_ms);
    }
    let deleted: Vec<&SegmentInfo> = seen.iter().filter(|s| !kept.iter().any(|k| k.start_unix_ms == s.start_unix_ms)).collect();
    assert!(deleted.len() >= 3);
    for s in deleted {
        assert!(!s.path.exists(), "{} deleted", s.path.display());
    }
    for s in &kept {
        assert!(s.path.exists());
    }
    assert_eq!(std::fs::read(foreign.join("notes.txt")).unwrap(), b"keep me");
    assert_eq!(std::fs::read(foreign.join("1.ts")).unwrap(), b"not indexed");

    assert!(cap.kept_bytes <= 1_000_000, "kept {} bytes", cap.kept_bytes);
    assert!(under_cap.iter().map(|s| s.bytes).sum::<u64>() <= 1_000_000 + 450_000, "at most one segment closed since the last run");
    let on_disk: u64 = files_in(&dir.path().join("size/keep")).iter().map(|f| std::fs::metadata(dir.path().join("size/keep").join(f)).unwrap().len()).sum();
    assert!(on_disk <= 1_000_000 + 2 * 400_000, "{on_disk} bytes on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_below_the_floor_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.disk_floor_bytes = u64::MAX;
    let recorder = spawn(None, s, None).await;
    let spec = channel_spec("rec-floor", 5, false);
    record(&recorder, "floor", &spec);
    let c = wait_for(WAIT, "the refusal", async || {
        let c = status(&recorder).await.channel("floor").cloned()?;
        (c.last_error.is_some() && !c.recording).then_some(c)
    })
    .await;
    let e = c.last_error.unwrap();
    let chan = dir.path().join("floor");
    assert!(e.contains(&chan.display().to_string()), "names the folder: {e}");
    assert!(e.contains("disk floor") && e.contains("Free space"), "says what to do: {e}");
    assert_eq!(c.restarts, 0, "a refusal is not retried");
    assert!(files_in(&chan).is_empty(), "nothing written");
    assert!(list(&recorder, "floor").await.is_empty());
    recorder.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_thread_that_dies_is_restarted() {
    let spec = channel_spec("rec-die", 6, false);
    let dir = tempfile::tempdir().unwrap();
    let recorder = spawn(None, settings(dir.path()), None).await;
    let sender = TestSender::start(spec.clone());
    record(&recorder, "die", &spec);
    wait_complete(&recorder, "die", 1).await;
    // Pull the folder from under the thread: closing its segment fails.
    let chan = dir.path().join("die");
    std::fs::remove_dir_all(&chan).unwrap();
    let c = wait_for(WAIT, "the thread's death to be reported", async || {
        let c = status(&recorder).await.channel("die").cloned()?;
        (c.restarts >= 1).then_some(c)
    })
    .await;
    let e = c.last_error.clone().unwrap();
    assert!(e.contains(&chan.display().to_string()), "names the path: {e}");
    // Restarted after the backoff: it records into a new folder again.
    let new = wait_for(WAIT, "recording after the restart", async || {
        let segs = complete(&list(&recorder, "die").await);
        let fresh: Vec<SegmentInfo> = segs.into_iter().filter(|s| s.path.exists()).collect();
        (fresh.len() >= 2).then_some(fresh)
    })
    .await;
    let st = status(&recorder).await;
    let c = st.channel("die").unwrap();
    assert!(c.recording && c.restarts >= 1);
    assert!(sender.datagrams() > 0);
    finish_and_stop(sender, recorder).await;
    for s in &new {
        assert!(first_packet_is_pat(&s.path));
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), s.bytes);
        let r = analyze_file(&s.path).unwrap();
        assert!(!r.error_counts.contains_key(&ErrorKind::ContinuityCountError), "{}", common::describe(&r));
    }
    assert!(!files_in(&chan).iter().any(|f| f.ends_with(".part")), "no .part after a clean stop");
}
