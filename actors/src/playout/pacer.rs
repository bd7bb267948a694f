//! The pacing thread of one channel: runs the mux in real time and sends each datagram
//! when its first packet is due. Deadlines are absolute (epoch + k packet times), so the
//! output rate matches the mux rate with no drift, whatever each sleep overshoots.

use super::clock::Clock;
use super::mux::{ChannelMux, MuxEvent};
use super::schedule::Schedule;
use super::sender::{check_collision, MulticastSender, OutputError, PACKETS_PER_DATAGRAM};
use super::spec::ChannelSpec;
use crate::ts::TsPacket;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How far behind its deadline the pacer may fall before it skips ahead to now (the
/// skipped packets are computed, not sent, so the stream stays consistent).
pub const MAX_LATENESS: Duration = Duration::from_millis(200);
/// How long the group is listened to before the first datagram.
pub const COLLISION_WINDOW: Duration = Duration::from_millis(300);
/// How long to wait after a collision before listening again.
pub const COLLISION_RETRY: Duration = Duration::from_millis(700);

/// Orders to the pacing thread.
#[derive(Debug)]
pub enum PacerCommand {
    /// A newer version of the schedule.
    Schedule(Schedule),
    Stop,
}

/// What the pacing thread reports.
#[derive(Debug)]
pub enum PacerEvent {
    /// Another source is on the group; the pacer waits and listens again.
    Collision(String),
    /// Sending started at packet `k`.
    OnAir { k: u64 },
    Mux(MuxEvent),
    /// The pacer fell behind by more than [`MAX_LATENESS`] and skipped `packets`.
    SkippedAhead { packets: u64 },
    SendError(String),
    /// Progress: next packet index and datagrams sent so far (about every 100 ms).
    Progress { k: u64, datagrams: u64 },
    /// The thread ended (stopped, or failed to open its output).
    Stopped(Option<String>),
}

/// Handle to a running pacing thread.
#[derive(Debug)]
pub struct Pacer {
    commands: mpsc::Sender<PacerCommand>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts the channel's pacing thread. Events go to `events` (a plain function so
    /// the caller picks the channel type).
    pub fn start(
        spec: ChannelSpec,
        schedule: Schedule,
        clock: Arc<dyn Clock>,
        events: impl Fn(PacerEvent) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let name = format!("playout-{}", spec.id);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let outcome = run(spec, schedule, clock.as_ref(), &rx, &events);
            events(PacerEvent::Stopped(outcome.err().map(|e| e.to_string())));
        })?;
        Ok(Pacer { commands: tx, thread: Some(thread) })
    }

    pub fn update_schedule(&self, schedule: Schedule) {
        let _ = self.commands.send(PacerCommand::Schedule(schedule));
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        let _ = self.commands.send(PacerCommand::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Pacer {
    /// Tells a stuck thread to stop without waiting for it.
    pub fn abandon(mut self) {
        let _ = self.commands.send(PacerCommand::Stop);
        self.thread.take();
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Control {
    Continue,
    Stop,
}

fn drain_commands(rx: &mpsc::Receiver<PacerCommand>, mut on_schedule: impl FnMut(Schedule)) -> Control {
    loop {
        match rx.try_recv() {
            Ok(PacerCommand::Schedule(s)) => on_schedule(s),
            Ok(PacerCommand::Stop) | Err(mpsc::TryRecvError::Disconnected) => return Control::Stop,
            Err(mpsc::TryRecvError::Empty) => return Control::Continue,
        }
    }
}

fn run(
    spec: ChannelSpec,
    mut schedule: Schedule,
    clock: &dyn Clock,
    rx: &mpsc::Receiver<PacerCommand>,
    events: &dyn Fn(PacerEvent),
) -> Result<(), OutputError> {
    let ssrc = (spec.program_number as u32) << 16 | spec.output.port as u32;
    let mut sender = MulticastSender::open(&spec.output, ssrc)?;
    let own = sender.local_addr().ok();
    // The collision check: never start sending over another source.
    loop {
        if let Control::Stop = drain_commands(rx, |s| schedule = s) {
            return Ok(());
        }
        match check_collision(&spec.output, COLLISION_WINDOW, own) {
            Ok(()) => break,
            Err(OutputError::Collision { source_addr, .. }) => {
                events(PacerEvent::Collision(source_addr));
                clock.sleep_until_unix_ns(clock.now_unix_ns() + COLLISION_RETRY.as_nanos() as u64);
            }
            Err(e) => return Err(e),
        }
    }

    let per = PACKETS_PER_DATAGRAM as u64;
    let first = schedule.packet_at_unix_ns(clock.now_unix_ns()).div_ceil(per) * per;
    let mut mux = ChannelMux::resume(spec, schedule, first);
    events(PacerEvent::OnAir { k: first });
    let mut datagram: Vec<TsPacket> = Vec::with_capacity(PACKETS_PER_DATAGRAM);
    let mut sent = 0u64;
    let progress_every = (mux.schedule().mux_rate.packets_in_ms(100) / per).max(1);
    let mut send_errors = 0u64;
    loop {
        if let Control::Stop = drain_commands(rx, |s| mux.update_schedule(s)) {
            return Ok(());
        }
        let k = mux.position();
        let due = mux.schedule().unix_ns_of_packet(k);
        let now = clock.now_unix_ns();
        if now > due + MAX_LATENESS.as_nanos() as u64 {
            let target = mux.schedule().packet_at_unix_ns(now).div_ceil(per) * per;
            while mux.position() < target {
                mux.next_packet();
            }
            events(PacerEvent::SkippedAhead { packets: target - k });
            continue;
        }
        if due > now {
            clock.sleep_until_unix_ns(due);
        }
        datagram.clear();
        for _ in 0..per {
            datagram.push(mux.next_packet());
        }
        let pcr = mux.schedule().mux_rate.pcr_of_packet(k).ticks();
        if let Err(e) = sender.send(&datagram, pcr) {
            send_errors += 1;
            // One report per burst of errors is enough for the log.
            if send_errors.is_power_of_two() {
                events(PacerEvent::SendError(format!("{e} ({send_errors} datagrams lost so far)")));
            }
        }
        sent += 1;
        for e in mux.drain_events() {
            events(PacerEvent::Mux(e));
        }
        if sent.is_multiple_of(progress_every) {
            events(PacerEvent::Progress { k: mux.position(), datagrams: sent });
        }
    }
}
