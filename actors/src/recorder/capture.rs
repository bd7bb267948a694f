//! One OS thread per recorded group: joins the group, takes each datagram's TS packets
//! (RTP stripped), counts arrival gaps and writes the packets into rolling segments as
//! `roll.rs` decides. Blocking socket and file work stay off the async executor. The
//! thread ends when asked to (closing its segment), on an error, or on a panic, and
//! reports how through `on_exit`.

use super::datagram::{pat_start, ts_payload};
use super::disk::check_floor;
use super::error::RecorderError;
use super::index::{validate_channel, SegmentIndex};
use super::recover::recover_channel;
use super::roll::{Placement, Roller};
use super::segment::SegmentWriter;
use super::settings::RecorderSettings;
use super::stats::CaptureStats;
use crate::playout::clock::unix_now_ns;
use crate::playout::sender::join_group;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a quiet socket wakes the thread (stop flag, idle close).
const POLL: Duration = Duration::from_millis(100);

/// Which group to record for which channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    pub channel: String,
    pub group: Ipv4Addr,
    pub port: u16,
    /// Interface address to join on.
    pub interface: Ipv4Addr,
}

/// How a capture thread ended.
#[derive(Debug)]
pub enum CaptureExit {
    /// Asked to stop; its segment was closed.
    Stopped,
    Failed(RecorderError),
    Panicked(String),
}

/// A running capture thread. Dropping it asks the thread to stop without waiting.
#[derive(Debug)]
pub struct CaptureThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CaptureThread {
    /// Starts recording `spec` into `settings.dir`. Leftovers of an earlier thread for
    /// the channel are recovered first (on the thread), so only start one once the
    /// previous one for the channel has ended.
    pub fn start(
        spec: CaptureSpec,
        settings: RecorderSettings,
        index: SegmentIndex,
        stats: Arc<CaptureStats>,
        on_exit: impl FnOnce(CaptureExit) + Send + 'static,
    ) -> Result<Self, RecorderError> {
        validate_channel(&spec.channel)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = format!("rec-{}", spec.channel);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&spec, &settings, &index, &stats, &flag)));
                on_exit(match run {
                    Ok(Ok(())) => CaptureExit::Stopped,
                    Ok(Err(e)) => CaptureExit::Failed(e),
                    Err(panic) => CaptureExit::Panicked(
                        panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into()),
                    ),
                });
            })
            .map_err(RecorderError::io(PathBuf::from("<thread>"), "start a capture thread"))?;
        Ok(CaptureThread { stop, thread: Some(thread) })
    }

    /// Asks the thread to close its segment and end (within ~100 ms plus the close).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Asks the thread to stop and waits for it.
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for CaptureThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(spec: &CaptureSpec, settings: &RecorderSettings, index: &SegmentIndex, stats: &CaptureStats, stop: &AtomicBool) -> Result<(), RecorderError> {
    let dir = settings.channel_dir(&spec.channel);
    std::fs::create_dir_all(&dir).map_err(RecorderError::io(&dir, "create the channel's recording folder"))?;
    // Refused at once when the disk is already below the floor (and again before each
    // segment).
    check_floor(&dir, settings.disk_floor_bytes)?;
    let recovered = recover_channel(&dir, &spec.channel, index)?;
    if !recovered.closed.is_empty() || recovered.removed_empty > 0 {
        tracing::warn!(channel = %spec.channel, closed = recovered.closed.len(), removed_empty = recovered.removed_empty, "recovered segments left by an earlier capture");
    }
    let socket = join_group(spec.group, spec.port, spec.interface).map_err(|source| RecorderError::Join {
        channel: spec.channel.clone(),
        group: spec.group,
        port: spec.port,
        interface: spec.interface,
        source,
    })?;
    let receive_err = |source| RecorderError::Receive { channel: spec.channel.clone(), group: spec.group, port: spec.port, source };
    socket.set_read_timeout(Some(POLL)).map_err(receive_err)?;
    tracing::info!(channel = %spec.channel, group = %spec.group, port = spec.port, dir = %dir.display(), "recording");

    let mut rec = Recording {
        spec,
        settings,
        index,
        stats,
        dir,
        roller: Roller::new(settings.segment_length, settings.pat_wait),
        writer: None,
        last_arrival: None,
        gap_threshold_ns: settings.gap_threshold.as_nanos() as u64,
    };
    let base = Instant::now();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv(&mut buf) {
            Ok(n) => rec.on_datagram(&buf[..n], base.elapsed().as_nanos() as u64, unix_now_ns())?,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => {
                rec.on_idle(base.elapsed().as_nanos() as u64)?
            }
            Err(e) => return Err(receive_err(e)),
        }
    }
    rec.close()
}

/// The thread's recording state.
struct Recording<'a> {
    spec: &'a CaptureSpec,
    settings: &'a RecorderSettings,
    index: &'a SegmentIndex,
    stats: &'a CaptureStats,
    dir: PathBuf,
    roller: Roller,
    writer: Option<SegmentWriter>,
    /// Monotonic ns of the last valid datagram.
    last_arrival: Option<u64>,
    gap_threshold_ns: u64,
}

impl Recording<'_> {
    fn on_datagram(&mut self, datagram: &[u8], mono_ns: u64, unix_ns: u64) -> Result<(), RecorderError> {
        let Ok(ts) = ts_payload(datagram) else {
            self.stats.invalid();
            return Ok(());
        };
        self.stats.datagram(ts.len(), unix_ns);
        let gap = self.last_arrival.map(|t| mono_ns.saturating_sub(t)).filter(|&g| g > self.gap_threshold_ns);
        self.last_arrival = Some(mono_ns);
        if let Some(g) = gap {
            self.stats.gap(g);
        }
        // A gap belongs to the segment that gets the first packets after it.
        let mut gap = gap;
        let (current, next) = match self.roller.on_datagram(mono_ns, pat_start(ts)) {
            Placement::Discard => return Ok(()),
            Placement::Append => (ts, None),
            Placement::Start { at } => {
                self.open(unix_ns)?;
                (&ts[at * 188..], None)
            }
            Placement::Cut { at } => (&ts[..at * 188], Some(&ts[at * 188..])),
        };
        if !current.is_empty() {
            let w = self.writer.as_mut().expect("the roller placed packets in an open segment");
            if let Some(g) = gap.take() {
                w.note_gap(g);
            }
            w.write(current, unix_ns)?;
        }
        if let Some(rest) = next {
            self.close()?;
            self.open(unix_ns)?;
            let w = self.writer.as_mut().expect("just opened");
            if let Some(g) = gap.take() {
                w.note_gap(g);
            }
            w.write(rest, unix_ns)?;
        }
        Ok(())
    }

    fn on_idle(&mut self, mono_ns: u64) -> Result<(), RecorderError> {
        if self.roller.on_idle(mono_ns) {
            self.close()?;
        }
        Ok(())
    }

    fn open(&mut self, unix_ns: u64) -> Result<(), RecorderError> {
        check_floor(&self.dir, self.settings.disk_floor_bytes)?;
        let s = self.spec;
        self.writer = Some(SegmentWriter::open(self.index, &self.dir, &s.channel, s.group, s.port, unix_ns)?);
        Ok(())
    }

    fn close(&mut self) -> Result<(), RecorderError> {
        if let Some(w) = self.writer.take() {
            let info = w.close(self.index)?;
            self.stats.segment_closed();
            tracing::debug!(channel = %info.channel, path = %info.path.display(), bytes = info.bytes, "segment closed");
        }
        Ok(())
    }
}
