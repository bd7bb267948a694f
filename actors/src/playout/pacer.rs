//! The pacing thread of one channel: runs the mux in real time and sends each datagram
//! when its first packet is due. Deadlines are absolute (epoch + k packet times), so the
//! output rate matches the mux rate with no drift, whatever each sleep overshoots.

use super::clock::Clock;
use super::mux::{ChannelMux, MuxEvent};
use super::schedule::Schedule;
use super::failover::{Decision, FailoverSettings, GroupWatch};
use super::role::{Role, RoleCell, Stamp};
use super::sender::{check_collision, join_group, MulticastSender, OutputError, PACKETS_PER_DATAGRAM};
use super::spec::{ChannelSpec, MulticastOutput};
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

/// The role a pacer plays and, in a cluster, how it watches its group.
#[derive(Debug, Clone)]
pub struct PacerRole {
    /// Shared with the reconciler, read before every datagram.
    pub cell: Arc<RoleCell>,
    /// `None`: a standalone node, always main, nothing to watch.
    pub failover: Option<FailoverSettings>,
}

impl PacerRole {
    /// A standalone streamer: main at epoch 0, no failover.
    pub fn standalone() -> Self {
        PacerRole { cell: Arc::new(RoleCell::new(Role::Main, 0)), failover: None }
    }
}

/// What the pacing thread reports.
#[derive(Debug)]
pub enum PacerEvent {
    /// Another source is on the group; the pacer waits and listens again.
    Collision(String),
    /// Sending started at packet `k`.
    OnAir { k: u64 },
    /// Computing the stream without sending it (backup) from packet `k`.
    Shadow { k: u64 },
    /// This backup took over its silent group at packet `k` with `epoch`, first
    /// re-sending `resent` datagrams the main had not sent.
    TookOver { k: u64, epoch: u64, resent: u64 },
    /// This main heard a source that outranks it and stopped sending.
    Fenced { by: Stamp, k: u64 },
    /// This main heard another source send its very stream (one that took over while
    /// this node was cut off, before its stamp arrived) and stopped sending.
    Yielded { source: String, k: u64 },
    Mux(MuxEvent),
    /// The pacer fell behind by more than [`MAX_LATENESS`] and skipped `packets`.
    SkippedAhead { packets: u64 },
    SendError(String),
    /// Progress about every 100 ms: next packet index, datagrams sent so far, and for a
    /// backup whether it hears the group and is in step with it.
    Progress { k: u64, datagrams: u64, shadow: Option<ShadowProgress> },
    /// The thread ended (stopped, or failed to open its output).
    Stopped(Option<String>),
}

/// A backup's view of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ShadowProgress {
    /// Something was heard on the group.
    pub hearing: bool,
    /// Start packet of the last datagram heard that this node computed too (the shadow
    /// is in step with the main).
    pub matched: Option<u64>,
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
        role: PacerRole,
        events: impl Fn(PacerEvent) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let name = format!("playout-{}", spec.id);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let outcome = run(spec, schedule, clock.as_ref(), &role, &rx, &events);
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
    role: &PacerRole,
    rx: &mpsc::Receiver<PacerCommand>,
    events: &dyn Fn(PacerEvent),
) -> Result<(), OutputError> {
    let ssrc = (spec.program_number as u32) << 16 | spec.output.port as u32;
    let mut sender = MulticastSender::open(&spec.output, ssrc)?;
    let own = sender.local_addr().ok();
    // The collision check: a main starting cold never sends over another source. (A
    // backup listens all along instead.)
    loop {
        if let Control::Stop = drain_commands(rx, |s| schedule = s) {
            return Ok(());
        }
        if role.cell.get().0 == Role::Backup {
            break;
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
    let mut mux = ChannelMux::resume(spec.clone(), schedule, first);
    let mut group = match role.failover {
        Some(settings) => Some(GroupListener::open(&spec, settings, own, clock.now_unix_ns(), mux.schedule().mux_rate)?),
        None => None,
    };
    // Hitless mode (in a cluster): whatever this node computes but does not send to the
    // group goes to the second path's group, so the backup's copy flows all along.
    let mut second_path = match (role.failover, spec.output.hitless_group) {
        (Some(_), Some(g)) => Some(MulticastSender::open(&MulticastOutput { group: g, ..spec.output.clone() }, ssrc ^ 0x8000_0000)?),
        _ => None,
    };
    // A main starting cold sends at once (the collision check heard nobody); a backup,
    // or a node named main while the old one may still send, starts in shadow.
    let mut sending = role.cell.get().0 == Role::Main;
    events(if sending { PacerEvent::OnAir { k: first } } else { PacerEvent::Shadow { k: first } });
    let mut datagram: Vec<TsPacket> = Vec::with_capacity(PACKETS_PER_DATAGRAM);
    let mut sent = 0u64;
    let mut computed = 0u64;
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
        let rate = mux.schedule().mux_rate;
        let mut send = |packets: &[TsPacket], at: u64, sender: &mut MulticastSender, epoch: u64| {
            let pcr = rate.pcr_of_packet(at).ticks();
            if let Err(e) = sender.send(&stamped(packets, role, epoch), pcr) {
                send_errors += 1;
                // One report per burst of errors is enough for the log.
                if send_errors.is_power_of_two() {
                    events(PacerEvent::SendError(format!("{e} ({send_errors} datagrams lost so far)")));
                }
            }
        };
        let (cell_role, mut epoch) = role.cell.get();
        let mut send_current = sending;
        match &mut group {
            None => send_current = cell_role == Role::Main,
            Some(g) => {
                let now = clock.now_unix_ns();
                g.listen(now);
                if !sending {
                    g.watch.computed(k, datagram.clone());
                } else {
                    g.watch.before_send(&datagram);
                }
                match g.watch.decide(now, sending, cell_role, epoch) {
                    Decision::Stay => {}
                    Decision::TakeOver { epoch: e, resend_after } => {
                        // First the datagrams the old main did not send, then on with the
                        // stream: the receiver sees every packet once.
                        role.cell.set(Role::Main, e);
                        epoch = e;
                        let mut resent = 0u64;
                        if let Some(after) = resend_after {
                            let backlog: Vec<(u64, Vec<TsPacket>)> =
                                g.watch.resend_after(after).map(|(at, d)| (at, d.to_vec())).collect();
                            for (at, d) in &backlog {
                                send(d, *at, &mut sender, epoch);
                                resent += 1;
                            }
                        }
                        sent += resent;
                        send_current = resent == 0;
                        sending = true;
                        g.watch.reset_heard(now);
                        events(PacerEvent::TookOver { k, epoch, resent });
                    }
                    Decision::Fence { by } => {
                        role.cell.set(Role::Backup, by.epoch);
                        (sending, send_current) = (false, false);
                        g.watch.reset_sent();
                        events(PacerEvent::Fenced { by, k });
                    }
                    Decision::StandDown => {
                        (sending, send_current) = (false, false);
                        g.watch.reset_sent();
                        events(PacerEvent::Shadow { k });
                    }
                    Decision::Yield { source } => {
                        role.cell.set(Role::Backup, epoch);
                        (sending, send_current) = (false, false);
                        g.watch.reset_sent();
                        events(PacerEvent::Yielded { source: source.to_string(), k });
                    }
                }
            }
        }
        if send_current {
            send(&datagram, k, &mut sender, epoch);
            sent += 1;
            if let Some(g) = &mut group {
                g.watch.sent(&datagram);
            }
        } else if let Some(second) = &mut second_path {
            send(&datagram, k, second, epoch);
        }
        computed += 1;
        for e in mux.drain_events() {
            events(PacerEvent::Mux(e));
        }
        if computed.is_multiple_of(progress_every) {
            let shadow = group
                .as_ref()
                .filter(|_| !sending)
                .map(|g| ShadowProgress { hearing: g.watch.hearing(clock.now_unix_ns()), matched: g.watch.matched() });
            events(PacerEvent::Progress { k: mux.position(), datagrams: sent, shadow });
        }
    }
}

/// A main's datagram as sent: its PCR-only packets carry the sender's stamp when the
/// node runs with failover (a standalone node sends the packets as computed).
fn stamped(packets: &[TsPacket], role: &PacerRole, epoch: u64) -> Vec<TsPacket> {
    let mut out = packets.to_vec();
    if let Some(f) = &role.failover {
        let stamp = Stamp { epoch, node: f.node }.to_bytes();
        for p in &mut out {
            p.set_private_data(&stamp);
        }
    }
    out
}

/// The group as a streamer hears it: a socket joined to it, and the watch that decides.
struct GroupListener {
    socket: std::net::UdpSocket,
    own: Option<std::net::SocketAddr>,
    watch: GroupWatch,
    buf: Vec<u8>,
    packets: Vec<TsPacket>,
}

impl GroupListener {
    fn open(
        spec: &ChannelSpec,
        settings: FailoverSettings,
        own: Option<std::net::SocketAddr>,
        now_ns: u64,
        rate: crate::ts::MuxRate,
    ) -> Result<Self, OutputError> {
        let out = &spec.output;
        let err = |what| move |source| OutputError::Socket { group: out.group, port: out.port, what, source };
        let socket = join_group(out.group, out.port, out.interface).map_err(err("join the group to watch it"))?;
        socket.set_nonblocking(true).map_err(err("make the group socket non-blocking"))?;
        let keep = (rate.packets_in_ms(settings.keep.as_millis() as u64) / PACKETS_PER_DATAGRAM as u64).max(8) as usize;
        Ok(GroupListener {
            socket,
            own,
            watch: GroupWatch::new(settings, now_ns, keep),
            buf: vec![0u8; 2048],
            packets: Vec::with_capacity(PACKETS_PER_DATAGRAM),
        })
    }

    fn is_own(&self, from: std::net::SocketAddr) -> bool {
        self.own.is_some_and(|own| own.port() == from.port() && (own.ip().is_unspecified() || own.ip() == from.ip()))
    }

    /// Reads everything waiting on the group.
    fn listen(&mut self, now_ns: u64) {
        loop {
            let (n, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => return,
            };
            if self.is_own(from) {
                continue;
            }
            // Without RTP, if any; a datagram that is not TS still counts as heard.
            let body = crate::recorder::ts_payload(&self.buf[..n]).unwrap_or(&[]);
            self.packets.clear();
            self.packets.extend(body.chunks_exact(188).filter(|c| c[0] == 0x47).map(|c| {
                let mut b = [0u8; 188];
                b.copy_from_slice(c);
                TsPacket(b)
            }));
            self.watch.heard(now_ns, from, &self.packets);
        }
    }
}
