//! Keeps a channel's schedule extended ahead of time from its playlist: probes items
//! (blocking I/O, run off the async executor), passes over bad ones with a reason, and
//! falls back to the channel's fallback item or a generated slate when a whole pass has
//! nothing playable, so the channel never goes silent.

use super::mux::transmission_end;
use super::probe::probe;
use super::reader::ItemError;
use super::schedule::{pass_order, EntryKind, ItemFacts, Schedule};
use super::spec::ChannelSpec;
use crate::encode::testcard::{self, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How far ahead of now the schedule is kept.
pub const HORIZON: Duration = Duration::from_secs(30);
/// Entries kept scheduled after the one on air, whatever their length.
pub const MIN_ENTRIES_AHEAD: usize = 2;

/// Delay before the first entry of a new or resumed schedule.
pub const START_DELAY: Duration = Duration::from_secs(1);

/// An item passed over, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub kind: &'static str,
    pub reason: String,
    /// First time this failure (this file version) was seen.
    pub first_time: bool,
}

type FileKey = (PathBuf, u64, Option<SystemTime>);

/// Probe results by file version, so unchanged files are probed once.
#[derive(Debug, Default)]
pub struct ProbeCache {
    entries: HashMap<FileKey, Result<ItemFacts, (&'static str, String)>>,
}

impl ProbeCache {
    fn key(path: &Path) -> FileKey {
        let meta = std::fs::metadata(path).ok();
        (path.to_path_buf(), meta.as_ref().map_or(0, |m| m.len()), meta.and_then(|m| m.modified().ok()))
    }

    /// The item's facts at `rate`, and whether this answer is new.
    pub fn probe(&mut self, path: &Path, spec: &ChannelSpec) -> (Result<ItemFacts, (&'static str, String)>, bool) {
        let key = Self::key(path);
        if let Some(r) = self.entries.get(&key) {
            return (r.clone(), false);
        }
        let r = probe(path, spec.mux_rate).map_err(|e: ItemError| (e.kind(), e.to_string()));
        self.entries.insert(key, r.clone());
        (r, true)
    }
}

/// What one extension did.
#[derive(Debug, Default)]
pub struct ExtendReport {
    pub appended: usize,
    pub skipped: Vec<Skipped>,
    pub fallback_used: bool,
    pub slate_used: bool,
    /// A peer's recording filled in for failed content.
    pub recording_used: bool,
    pub playlist_error: Option<String>,
}

/// The slate file for a channel: bars and tone, generated once per mux rate.
pub fn slate_path(state_dir: &Path, spec: &ChannelSpec) -> PathBuf {
    state_dir.join(format!("slate-{}.ts", spec.mux_rate.bits_per_second()))
}

/// Generates the slate (SMPTE bars with the channel name, 1 kHz tone) sized to fit the
/// channel's mux rate. Blocking.
pub fn make_slate(path: &Path, spec: &ChannelSpec) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let rate = spec.mux_rate.bits_per_second();
    let audio_bps = 128_000;
    // Half of what is left after audio and tables: VBR video with VBV stays well inside.
    let video_bps = ((rate as f64 * 0.85) as u64).saturating_sub(audio_bps) / 2;
    let item = TestItemSpec {
        title: format!("{}: programme will resume shortly", spec.name),
        artist: spec.provider.clone(),
        duration: Duration::from_secs(10),
        video: (video_bps >= 150_000).then_some(VideoSpec {
            codec: VideoCodec::H264,
            width: if video_bps >= 1_000_000 { 1280 } else { 640 },
            height: if video_bps >= 1_000_000 { 720 } else { 360 },
            fps: 25,
            bitrate: video_bps,
            gop: 25,
        }),
        audio: Some(AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: audio_bps, tone_hz: 1000 }),
    };
    let meta = super::schedule::ItemMeta {
        media_id: format!("slate-{}", spec.id),
        title: item.title.clone(),
        artist: item.artist.clone(),
        album: String::new(),
        genre: String::new(),
    };
    let sidecar = PathBuf::from(format!("{}.json", path.display()));
    std::fs::write(&sidecar, serde_json::to_vec(&meta).expect("metadata serializes"))
        .map_err(|e| format!("cannot write {}: {e}", sidecar.display()))?;
    testcard::generate_test_item(&item, path).map(|_| ()).map_err(|e| e.to_string())
}

/// Extends `schedule` until it reaches `now_k` plus the horizon. Blocking.
pub fn extend(
    schedule: &mut Schedule,
    spec: &ChannelSpec,
    state_dir: &Path,
    cache: &mut ProbeCache,
    now_k: u64,
) -> ExtendReport {
    let mut report = ExtendReport::default();
    let rate = schedule.mux_rate;
    let horizon_k = now_k + rate.packets_in_ms(HORIZON.as_millis() as u64);
    // A new schedule, or one resumed after a gap (a node that was down), starts its next
    // entry a second after now: after the collision check, so the item airs from its
    // first packet.
    let not_before = now_k + rate.packets_in_ms(START_DELAY.as_millis() as u64);
    let ahead = |s: &Schedule| s.position_at(now_k).map_or(s.entries.len(), |p| s.entries.len() - 1 - p);
    let mut empty_passes = 0;
    while schedule.end_packet() < horizon_k || ahead(schedule) < MIN_ENTRIES_AHEAD {
        let items = match spec.playlist.list() {
            Ok(items) => items,
            Err(e) => {
                report.playlist_error = Some(e.to_string());
                Vec::new()
            }
        };
        let order = pass_order(items.len(), schedule.cursor.pass, spec.order);
        if !order.is_empty() && schedule.cursor.position >= order.len() {
            // The playlist shrank under the cursor (media removed): this pass is over,
            // not empty; the next one starts.
            schedule.cursor.pass += 1;
            schedule.cursor.position = 0;
            continue;
        }
        let mut appended_this_pass = false;
        while schedule.cursor.position < order.len() {
            let path = &items[order[schedule.cursor.position]];
            schedule.cursor.position += 1;
            if try_place(schedule, spec, cache, path, EntryKind::Item, not_before, &mut report.skipped) {
                report.appended += 1;
                appended_this_pass = true;
                break;
            }
        }
        if schedule.cursor.position >= order.len() {
            schedule.cursor.pass += 1;
            schedule.cursor.position = 0;
            if !appended_this_pass && schedule_filler(schedule, spec, state_dir, cache, not_before, &mut report) {
                empty_passes += 1;
            }
        }
        if empty_passes > 2 && report.appended == 0 && !report.fallback_used && !report.slate_used && !report.recording_used {
            // Nothing at all can be scheduled (not even a slate): give up for now.
            break;
        }
    }
    report
}

/// Probes `path` and appends it as a `kind` entry; a file that cannot be probed or placed
/// is recorded in `skipped` with its reason. Returns whether it was appended.
fn try_place(
    schedule: &mut Schedule,
    spec: &ChannelSpec,
    cache: &mut ProbeCache,
    path: &Path,
    kind: EntryKind,
    not_before: u64,
    skipped: &mut Vec<Skipped>,
) -> bool {
    let (reason, kind, first_time) = match cache.probe(path, spec) {
        (Ok(facts), _) => match place(schedule, spec, kind, facts, not_before) {
            Ok(()) => return true,
            Err(reason) => (reason, "unreadable", true),
        },
        (Err((kind, reason)), first_time) => (reason, kind, first_time),
    };
    skipped.push(Skipped { path: path.to_path_buf(), kind, reason, first_time });
    false
}

/// Appends an item and measures where its last packet leaves.
fn place(schedule: &mut Schedule, spec: &ChannelSpec, kind: EntryKind, facts: ItemFacts, not_before: u64) -> Result<(), String> {
    schedule.append(kind, facts, not_before);
    let pos = schedule.entries.len() - 1;
    match transmission_end(spec, schedule, pos) {
        Ok(end) => {
            schedule.entries[pos].transmission_end = end;
            Ok(())
        }
        Err(reason) => {
            schedule.entries.pop();
            Err(reason)
        }
    }
}

/// Schedules filler when no item of the playlist can play: a peer's recording of the
/// channel (rotating through the copies), else the fallback item, else the slate.
/// Returns whether the pass was empty.
fn schedule_filler(
    schedule: &mut Schedule,
    spec: &ChannelSpec,
    state_dir: &Path,
    cache: &mut ProbeCache,
    not_before: u64,
    report: &mut ExtendReport,
) -> bool {
    let recordings = super::peer::list(&super::peer::peer_recordings_dir(state_dir));
    if !recordings.is_empty() {
        let n = recordings.len();
        for i in 0..n {
            let path = &recordings[(schedule.cursor.pass as usize + i) % n];
            if try_place(schedule, spec, cache, path, EntryKind::Recording, not_before, &mut report.skipped) {
                report.recording_used = true;
                return true;
            }
        }
    }
    if let Some(fallback) = &spec.fallback {
        if try_place(schedule, spec, cache, fallback, EntryKind::Fallback, not_before, &mut report.skipped) {
            report.fallback_used = true;
            return true;
        }
    }
    let slate = slate_path(state_dir, spec);
    if let Err(e) = make_slate(&slate, spec) {
        report.skipped.push(Skipped { path: slate.clone(), kind: "slate", reason: e, first_time: true });
        return true;
    }
    if try_place(schedule, spec, cache, &slate, EntryKind::Slate, not_before, &mut report.skipped) {
        report.slate_used = true;
    }
    true
}
