//! One channel's HLS segmenter: a thread joined to the channel's group that cuts the
//! stream into segments starting at a PAT (the recorder's [`Roller`]) and keeps the
//! playlist of the last ones. Durations come from the stream's PCR (first PCR of a
//! segment to the first PCR of the next), not from arrival times. Files are written
//! atomically (temporary name, rename) and the playlist only names finished segments.

use super::playlist::{MediaPlaylist, Segment};
use crate::playout::sender::join_group;
use crate::recorder::{pat_start, ts_payload, validate_channel, Placement, Roller};
use crate::ts::time::PCR_WRAP;
use crate::ts::TsPacket;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The playlist's file name in a channel's folder.
pub const PLAYLIST: &str = "index.m3u8";

/// Where and how segments are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsSettings {
    /// Root folder; a channel's files are in `<dir>/<channel>`.
    pub dir: PathBuf,
    /// Segment length (cut at the next PAT after it). [2 s]
    pub target: Duration,
    /// Segments in the playlist. [6]
    pub window: usize,
    /// Segments kept on disk after they left the playlist, for clients still fetching. [3]
    pub keep_extra: usize,
}

impl HlsSettings {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HlsSettings { dir: dir.into(), target: Duration::from_secs(2), window: 6, keep_extra: 3 }
    }
}

/// A running segmenter; stopping (or dropping) it ends its thread.
#[derive(Debug)]
pub struct Segmenter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Segmenter {
    /// Starts segmenting `group:port` (joined on `interface`) into `<dir>/<channel>`.
    /// Segment numbers start at the Unix time in seconds, so a restarted segmenter never
    /// reuses a number a player has seen.
    pub fn start(channel: &str, group: Ipv4Addr, port: u16, interface: Ipv4Addr, settings: &HlsSettings) -> std::io::Result<Self> {
        validate_channel(channel).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let dir = settings.dir.join(channel);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if is_ours(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
        let socket = join_group(group, port, interface)?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let settings = settings.clone();
        let first = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = format!("hls-{channel}");
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut state = State::new(dir, &settings, first);
            let mut buf = vec![0u8; 65536];
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let now = start.elapsed().as_nanos() as u64;
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        if let Ok(payload) = ts_payload(&buf[..n]) {
                            state.datagram(now, payload);
                        }
                    }
                    Err(_) => state.idle(now),
                }
            }
        })?;
        Ok(Segmenter { stop, thread: Some(thread) })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Segmenter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Files a segmenter writes: `<n>.ts`, `<n>.ts.tmp`, the playlist and its temporary.
fn is_ours(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.strip_suffix(".tmp").unwrap_or(name);
    stem == PLAYLIST || stem.strip_suffix(".ts").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

struct Open {
    sequence: u64,
    bytes: Vec<u8>,
    first_pcr: Option<u64>,
    last_pcr: Option<u64>,
}

/// A written segment waiting for the next segment's first PCR to know its duration.
struct Waiting {
    sequence: u64,
    first_pcr: Option<u64>,
    last_pcr: Option<u64>,
}

struct State {
    dir: PathBuf,
    roller: Roller,
    playlist: MediaPlaylist,
    retired: VecDeque<Segment>,
    keep_extra: usize,
    next: u64,
    open: Option<Open>,
    waiting: Option<Waiting>,
}

fn pcr_delta_s(from: u64, to: u64) -> f64 {
    ((to + PCR_WRAP - from) % PCR_WRAP) as f64 / 27_000_000.0
}

impl State {
    fn new(dir: PathBuf, s: &HlsSettings, first: u64) -> Self {
        State {
            dir,
            roller: Roller::new(s.target, Duration::from_secs(1)),
            playlist: MediaPlaylist::new(s.window),
            retired: VecDeque::new(),
            keep_extra: s.keep_extra,
            next: first,
            open: None,
            waiting: None,
        }
    }

    fn datagram(&mut self, now: u64, payload: &[u8]) {
        match self.roller.on_datagram(now, pat_start(payload)) {
            Placement::Discard => {}
            Placement::Start { at } => {
                self.open_segment();
                self.append(&payload[at * 188..]);
            }
            Placement::Append => self.append(payload),
            Placement::Cut { at } => {
                self.append(&payload[..at * 188]);
                self.close_segment();
                self.open_segment();
                self.append(&payload[at * 188..]);
            }
        }
    }

    fn idle(&mut self, now: u64) {
        if self.roller.on_idle(now) {
            self.close_segment();
            // Nothing follows: list it with what it measured.
            self.list_waiting(None);
        }
    }

    fn open_segment(&mut self) {
        self.open = Some(Open { sequence: self.next, bytes: Vec::with_capacity(1 << 20), first_pcr: None, last_pcr: None });
        self.next += 1;
    }

    fn append(&mut self, packets: &[u8]) {
        let Some(open) = &mut self.open else { return };
        open.bytes.extend_from_slice(packets);
        let pcrs = packets.chunks_exact(188).filter_map(|p| TsPacket::from_slice(p).ok()?.pcr().map(|p| p.ticks()));
        let mut first_here = None;
        for pcr in pcrs {
            if open.first_pcr.is_none() {
                open.first_pcr = Some(pcr);
                first_here = Some(pcr);
            }
            open.last_pcr = Some(pcr);
        }
        // The segment before this one ends where this one's first PCR is.
        if let Some(pcr) = first_here {
            self.list_waiting(Some(pcr));
        }
    }

    fn close_segment(&mut self) {
        let Some(open) = self.open.take() else { return };
        let path = self.dir.join(format!("{}.ts", open.sequence));
        let tmp = path.with_extension("ts.tmp");
        let written = std::fs::write(&tmp, &open.bytes).and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(segment = %path.display(), error = %e, "cannot write an HLS segment; fix: check the disk and the folder's permissions");
            return;
        }
        // A segment not yet listed is listed now with what it measured.
        self.list_waiting(None);
        self.waiting = Some(Waiting { sequence: open.sequence, first_pcr: open.first_pcr, last_pcr: open.last_pcr });
    }

    /// Lists the waiting segment, ending at `end_pcr` (the next segment's first PCR) or,
    /// without it, at its own last PCR.
    fn list_waiting(&mut self, end_pcr: Option<u64>) {
        let Some(w) = self.waiting.take() else { return };
        let duration_s = match (w.first_pcr, end_pcr.or(w.last_pcr)) {
            (Some(a), Some(b)) => pcr_delta_s(a, b),
            _ => 0.0,
        };
        if duration_s <= 0.0 || duration_s > 60.0 {
            // No usable timing (a stream without PCR): leave it off the playlist.
            let _ = std::fs::remove_file(self.dir.join(format!("{}.ts", w.sequence)));
            return;
        }
        if let Some(gone) = self.playlist.push(Segment { sequence: w.sequence, duration_s }) {
            self.retired.push_back(gone);
            while self.retired.len() > self.keep_extra {
                if let Some(old) = self.retired.pop_front() {
                    let _ = std::fs::remove_file(self.dir.join(old.file_name()));
                }
            }
        }
        let path = self.dir.join(PLAYLIST);
        let tmp = self.dir.join(format!("{PLAYLIST}.tmp"));
        if let Err(e) = std::fs::write(&tmp, self.playlist.render()).and_then(|_| std::fs::rename(&tmp, &path)) {
            tracing::warn!(playlist = %path.display(), error = %e, "cannot write the HLS playlist");
        }
    }
}
