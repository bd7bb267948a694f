//! `failover-bench`: what a receiver on the multicast group sees when the sending
//! streamer dies (kill -9), N times: the arrival gap at the switch (p50/p99/max), trials
//! where two sources interleave, the time with two sources on the group, duplicate TS
//! packets, continuity-counter errors and TR 101 290 priority 1 errors around the switch.
//! Targets: p99 gap <= 100 ms, never two interleaved sources, no CC error at the switch.
//!
//! ```sh
//! export CARGO_TARGET_DIR=$HOME/.cache/headend-target
//! cargo build --release -p headend-node --bin headend
//! cargo build --release -p headend-bench --bin failover-bench
//! $CARGO_TARGET_DIR/release/failover-bench --trials 20
//! ```
//! The `headend` binary is `$HEADEND_BIN`, else the one beside this binary.
//!
//! Two setups play the same item (the playout bench's 10 s 720p25 H.264 + AAC test item):
//!
//! * **headend**: 3 `headend run` nodes on 127.0.0.1-3 (the cluster-tests harness); one
//!   requested channel plays a shared folder holding the item. Raft names a main and a
//!   backup; the backup computes the stream in shadow and takes over when the group has
//!   been silent for 50 ms. Each trial waits until the backup is in step (its
//!   `/channels/{id}/status` has `shadow.hearing` and `shadow.matched`), kills the main
//!   with SIGKILL, measures, restarts the killed node and waits until Raft's roles again
//!   have a running main on air and a running backup in step.
//! * **multilive + multicat**: two pairs, on 127.0.0.1 and 127.0.0.2. In each pair
//!   `multilive` (the election: announces on a control group, equal priorities so a
//!   restarted pair stays standby) drives a small `sh` loop: on `1` (master) it starts
//!   `multicat -U -k <now - epoch> item.ts group@<pair address>`, on `0` it kills it.
//!   The file is the item looped by ffmpeg into CBR at the channel's mux rate (multicat
//!   cannot loop) and `-k` starts it at the position a stream started at the shared
//!   epoch has reached, the closest multicat comes to headend's "resume at packet
//!   k(now)". A trial kills the master pair's process group (sh, multilive, multicat)
//!   with SIGKILL and restarts it as standby afterwards. Multicat 2.3's sockets cannot be
//!   given an outgoing multicast interface, so on this host they would leave by the
//!   default route (eth0); these processes and their receiver run in a private network
//!   namespace whose only interface is `lo`, with the multicast route on it.
//!
//! The receiver is the same for both: `playout::capture::Capture` on 127.0.0.1, sources
//! told apart by source address. Per trial, over [kill - 1 s, first datagram of the new
//! source + 1 s]: the largest gap between arrivals; whether any datagram from another
//! source arrives after the new source's first (interleaving) and for how long (two
//! sources); TS packets identical (same PID, CC and bytes) to the packet just before them
//! on their PID (duplicates, which TR 101 290 1.4 tolerates once); and the project's
//! analyzer over the window's bytes (CC errors, all priority 1 errors; priority 2 in the
//! log). Every change of source at the receiver more than 3 s after any kill is listed
//! too: the group changing hands, or two sources, with no failure injected.

use anyhow::{bail, ensure, Context};
use clap::Parser;
use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig, ErrorKind};
use headend_cluster_tests::cluster::{stream_request, ClusterBuilder, TestCluster};
use headend_cluster_tests::{die_with_parent, http_get};
use headend_proto::admin as pb;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The playout bench's test item and its looped CBR copy for multicat (shared source file).
#[path = "../items.rs"]
mod items;

#[derive(Debug, Parser)]
#[command(about = "Failover at the receiver after kill -9 of the sender: headend's shadow backup against multilive + multicat")]
struct Args {
    /// kill -9 trials per setup.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Node lease, ms (the node default; the test harness's own default is 1 s).
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    /// multilive settings to run, as `<announce period ms>x<dead periods>`, comma
    /// separated (multilive's defaults are 200x5; 10x5 detects a dead master after
    /// 50 ms of silence, as headend's backup does).
    #[arg(long, default_value = "200x5,10x5", value_delimiter = ',')]
    multilive: Vec<String>,
    /// Skip the headend setup.
    #[arg(long)]
    skip_headend: bool,
    /// Skip the multilive + multicat setups.
    #[arg(long)]
    skip_multicat: bool,
    /// Where the test item and its CBR copy are kept (default: bench-items in the
    /// target directory, shared with the playout bench).
    #[arg(long)]
    items_dir: Option<PathBuf>,
    /// Video bit rate of the requested channel format (the item's is 2.3 Mbit/s); the
    /// channel's mux rate follows from it.
    #[arg(long, default_value_t = 2_300_000)]
    video_bitrate: u64,
}

/// Groups: 239.255.214.x, loopback only.
const HEADEND_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 214, 1);
const HEADEND_PORT: u16 = 5310;
const MULTICAT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 214, 2);
const MULTICAT_PORT: u16 = 5320;
const CONTROL: &str = "239.255.214.3:5330";
/// Receiver data kept before the kill and after the new source's first datagram.
const WINDOW: Duration = Duration::from_secs(1);
const CONVERGE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Receiver

/// A capture with arrival times since `t0` and the datagrams taken from it so far.
struct Receiver {
    capture: Capture,
    t0: Instant,
    kept: Vec<Datagram>,
    /// Every change of source between consecutive datagrams: (arrival, from, to).
    changes: Vec<(Duration, IpAddr, IpAddr)>,
    last_source: Option<IpAddr>,
    /// When the bench killed a sender.
    kills: Vec<Duration>,
}

impl Receiver {
    fn start(group: Ipv4Addr, port: u16) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let capture = Capture::start(group, port, Ipv4Addr::LOCALHOST).with_context(|| format!("joining {group}:{port} on lo"))?;
        Ok(Receiver { capture, t0, kept: Vec::new(), changes: Vec::new(), last_source: None, kills: Vec::new() })
    }

    /// Time on the capture's clock (its arrivals are measured from just after `t0`).
    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn pump(&mut self) {
        let new = self.capture.take();
        for d in &new {
            let ip = d.source.ip();
            if let Some(prev) = self.last_source.filter(|p| *p != ip) {
                self.changes.push((d.arrival, prev, ip));
            }
            self.last_source = Some(ip);
        }
        self.kept.extend(new);
    }

    /// Source changes more than 3 s after every kill: the group changed hands, or two
    /// sources alternated, with no failure injected.
    fn unplanned_changes(&self) -> Vec<(Duration, IpAddr, IpAddr)> {
        let planned = |t: Duration| self.kills.iter().any(|k| t >= *k && t <= *k + Duration::from_secs(3));
        self.changes.iter().copied().filter(|(t, _, _)| !planned(*t)).collect()
    }

    /// Drops what arrived before `t`.
    fn forget_before(&mut self, t: Duration) {
        self.pump();
        let first = self.kept.partition_point(|d| d.arrival < t);
        self.kept.drain(..first);
    }

    /// Sources heard since `t`, with datagram counts.
    fn sources_since(&mut self, t: Duration) -> Vec<(IpAddr, usize)> {
        self.pump();
        let mut by: Vec<(IpAddr, usize)> = Vec::new();
        for d in self.kept.iter().filter(|d| d.arrival >= t) {
            match by.iter_mut().find(|(ip, _)| *ip == d.source.ip()) {
                Some((_, n)) => *n += 1,
                None => by.push((d.source.ip(), 1)),
            }
        }
        by
    }

    /// Waits until a datagram from a source other than `old` has arrived after `since`,
    /// then until `WINDOW` more has been received; returns the window's datagrams.
    fn switch_window(&mut self, old: IpAddr, since: Duration, timeout: Duration) -> anyhow::Result<(Vec<Datagram>, Duration)> {
        let deadline = Instant::now() + timeout;
        let first_new = loop {
            self.pump();
            if let Some(d) = self.kept.iter().find(|d| d.arrival >= since && d.source.ip() != old) {
                break d.arrival;
            }
            ensure!(Instant::now() < deadline, "no other source than {old} within {timeout:?} of the kill");
            std::thread::sleep(Duration::from_millis(5));
        };
        while self.now() < first_new + WINDOW + Duration::from_millis(100) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.pump();
        let start = since.saturating_sub(WINDOW);
        let end = first_new + WINDOW;
        Ok((self.kept.iter().filter(|d| d.arrival >= start && d.arrival <= end).cloned().collect(), first_new))
    }
}

/// What the receiver saw around one switch.
#[derive(Debug, Clone)]
struct Switch {
    /// Largest gap between consecutive arrivals in the window.
    gap: Duration,
    /// A datagram from another source arrived after the new source's first one.
    interleaved: bool,
    /// From the new source's first datagram to the last one of another source.
    two_sources: Duration,
    /// TS packets identical (PID, CC, bytes) to the packet just before them on their PID.
    duplicates: u64,
    cc_errors: u64,
    p1_errors: u64,
    new_source: IpAddr,
    /// Kill to the new source's first datagram.
    kill_to_new: Duration,
    /// Duplicates by PID and by where the two copies came from.
    duplicate_detail: String,
    /// Priority 2 errors by kind (for the log).
    p2_errors: String,
}

fn packet_key(p: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

/// Measures a switch from `old` in `window` (arrival order), the kill at `kill_at`.
fn measure(window: &[Datagram], old: IpAddr, kill_at: Duration) -> anyhow::Result<Switch> {
    let first = window.iter().position(|d| d.source.ip() != old).context("no new source in the window")?;
    let new_source = window[first].source.ip();
    let first_at = window[first].arrival;
    let gap = window.windows(2).map(|w| w[1].arrival.saturating_sub(w[0].arrival)).max().unwrap_or_default();
    let late: Vec<&Datagram> = window[first..].iter().filter(|d| d.source.ip() != new_source).collect();
    let two_sources = late.last().map_or(Duration::ZERO, |d| d.arrival.saturating_sub(first_at));
    // Duplicates: a packet with the same bytes (so PID and CC) as the packet just before
    // it on its PID, as TR 101 290 1.4 tolerates once. Null packets are all alike.
    let mut last: HashMap<u16, (u64, IpAddr)> = HashMap::new();
    let mut duplicates = 0;
    let mut duplicate_pids: std::collections::BTreeMap<(u16, &str), u64> = Default::default();
    for d in window {
        for p in ts_bytes(std::slice::from_ref(d)).chunks_exact(188) {
            let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1FFF;
            if pid == 0x1FFF {
                continue;
            }
            let key = packet_key(p);
            if let Some((_, from)) = last.get(&pid).filter(|(k, _)| *k == key) {
                duplicates += 1;
                let how = if *from == d.source.ip() { "same source" } else { "old, then new source" };
                *duplicate_pids.entry((pid, how)).or_default() += 1;
            }
            last.insert(pid, (key, d.source.ip()));
        }
    }
    let duplicate_detail = duplicate_pids.iter().map(|((pid, how), n)| format!("{n} on PID {pid:#x} ({how})")).collect::<Vec<_>>().join(", ");
    let report = analyze_bytes(&ts_bytes(window), AnalyzerConfig::default());
    let p1_errors = report.error_counts.iter().filter(|(k, _)| k.priority() == 1).map(|(_, n)| n).sum();
    let p2_errors = report.error_counts.iter().filter(|(k, _)| k.priority() == 2).map(|(k, n)| format!("{k:?} {n}")).collect::<Vec<_>>().join(", ");
    Ok(Switch {
        gap,
        interleaved: !late.is_empty(),
        two_sources,
        duplicates,
        cc_errors: report.error_count(ErrorKind::ContinuityCountError),
        p1_errors,
        new_source,
        kill_to_new: first_at.saturating_sub(kill_at),
        duplicate_detail,
        p2_errors,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// One row of the table.
struct Row {
    tool: String,
    switches: Vec<Switch>,
    /// Trials where no other source came within the timeout.
    failed: usize,
    /// Source changes at the receiver with no kill in the 3 s before.
    unplanned: Vec<(Duration, IpAddr, IpAddr)>,
}

impl Row {
    fn print(&self) {
        let s = &self.switches;
        let mut gaps: Vec<Duration> = s.iter().map(|t| t.gap).collect();
        gaps.sort();
        let mut two: Vec<Duration> = s.iter().map(|t| t.two_sources).collect();
        two.sort();
        let with = |f: &dyn Fn(&Switch) -> u64| {
            let total: u64 = s.iter().map(f).sum();
            let trials = s.iter().filter(|t| f(t) > 0).count();
            format!("{total} ({trials} trials)")
        };
        let trials = if self.failed > 0 { format!("{} (+{} no switch)", s.len(), self.failed) } else { s.len().to_string() };
        println!(
            "| {} | {} | {} / {} / {} | {} | {} / {} | {} | {} | {} |",
            self.tool,
            trials,
            ms(quantile(&gaps, 0.5)),
            ms(quantile(&gaps, 0.99)),
            ms(gaps.last().copied().unwrap_or_default()),
            s.iter().filter(|t| t.interleaved).count(),
            ms(quantile(&two, 0.5)),
            ms(two.last().copied().unwrap_or_default()),
            with(&|t| t.duplicates),
            with(&|t| t.cc_errors),
            with(&|t| t.p1_errors),
        );
    }
}

fn log_trial(tool: &str, trial: usize, old: IpAddr, s: &Switch, extra: &str) {
    eprintln!(
        "{tool} trial {trial}: {old} -> {}: gap {} ms, kill to new source {} ms, two sources {} ms{}, duplicates {}{}, CC errors {}, P1 errors {}, P2 errors [{}]{extra}",
        s.new_source,
        ms(s.gap),
        ms(s.kill_to_new),
        ms(s.two_sources),
        if s.interleaved { " (INTERLEAVED)" } else { "" },
        s.duplicates,
        if s.duplicate_detail.is_empty() { String::new() } else { format!(" [{}]", s.duplicate_detail) },
        s.cc_errors,
        s.p1_errors,
        s.p2_errors
    );
}

// ---------------------------------------------------------------------------------------
// headend

fn channel_status(c: &TestCluster, i: usize, id: &str) -> Option<Value> {
    let r = http_get(c.nodes[i].http, &format!("/channels/{id}/status")).ok()?;
    (r.status == 200).then(|| r.json())
}

/// Raft's roles for channel `id`, read from the first running node that answers.
fn roles(c: &TestCluster, id: &str) -> Option<pb::GroupRoles> {
    (0..c.nodes.len()).filter(|i| c.running(*i)).find_map(|i| c.channels(i).ok()?.into_iter().find(|ch| ch.id == id)?.roles)
}

fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until Raft has a running main on air and a running backup in step with it;
/// returns (main, backup).
fn steady(c: &TestCluster, id: &str) -> anyhow::Result<(usize, usize)> {
    poll(CONVERGE, "a main on air and a backup in step", || {
        let r = roles(c, id)?;
        let (m, b) = (c.nodes.iter().position(|n| n.name == r.main)?, c.nodes.iter().position(|n| n.name == r.backup)?);
        if m == b || !c.running(m) || !c.running(b) {
            return None;
        }
        let main_on = channel_status(c, m, id).is_some_and(|s| s["on_air"] == true && s["role"] == "main");
        let backup_in_step = channel_status(c, b, id)
            .is_some_and(|s| s["on_air"] == false && s["shadow"]["hearing"] == true && !s["shadow"]["matched"].is_null());
        (main_on && backup_in_step).then_some((m, b))
    })
}

/// `resent=N` of the last takeover node `i` logged.
fn resent_in_log(c: &TestCluster, i: usize) -> Option<u64> {
    // Without the terminal colour codes the text format may carry.
    let mut log = String::new();
    let mut escape = false;
    for ch in c.log(i).chars() {
        match (escape, ch) {
            (false, '\u{1b}') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, ch) => log.push(ch),
        }
    }
    let line = log.lines().rev().find(|l| l.contains("took over"))?;
    let at = line.find("resent=")? + "resent=".len();
    line[at..].split(|ch: char| !ch.is_ascii_digit()).next()?.parse().ok()
}

fn run_headend(args: &Args, item: &Path) -> anyhow::Result<(Row, u64)> {
    let media = tempfile::Builder::new().prefix("failover-bench-media-").tempdir()?;
    let name = item.file_name().context("item name")?;
    std::fs::copy(item, media.path().join(name))?;
    let sidecar = PathBuf::from(format!("{}.json", item.display()));
    if sidecar.is_file() {
        std::fs::copy(&sidecar, media.path().join(format!("{}.json", name.to_string_lossy())))?;
    }
    eprintln!("headend: starting 3 nodes (lease {} ms)", args.lease_ms);
    let mut c = ClusterBuilder::new(3).lease_ms(args.lease_ms).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    let mut req = stream_request("Failover Bench", &HEADEND_GROUP.to_string(), HEADEND_PORT.into());
    req.media_folder = media.path().display().to_string();
    if let Some(f) = req.format.as_mut() {
        f.video_bitrate = args.video_bitrate;
    }
    let mut admin = c.admin(leader);
    let d = c.block_on(admin.request_stream(req)).context("RequestStream")?.into_inner();
    let id = d.channel_id.clone();
    let mux_rate = c.channels(leader).map_err(|e| anyhow::anyhow!("{e}"))?.into_iter().find(|ch| ch.id == id).map_or(0, |ch| ch.mux_rate);
    eprintln!("headend: channel {id} at {mux_rate} bit/s on {HEADEND_GROUP}:{HEADEND_PORT}, main {}, backup {}", d.main_node, d.backup_node);
    let mut rx = Receiver::start(HEADEND_GROUP, HEADEND_PORT)?;
    let mut row = Row { tool: "headend: 3 nodes, shadow backup, takeover after 50 ms of silence".into(), switches: Vec::new(), failed: 0, unplanned: Vec::new() };
    let logs = tempfile::Builder::new().prefix("failover-bench-headend-").tempdir()?.keep();
    let mut trial = 0;
    let mut skipped = 0;
    while trial < args.trials {
        let (main, backup) = steady(&c, &id)?;
        // At least one window of the main alone before the kill.
        std::thread::sleep(WINDOW + Duration::from_millis(200));
        let before = rx.now().saturating_sub(WINDOW);
        rx.forget_before(before.saturating_sub(Duration::from_millis(500)));
        let old = IpAddr::V4(c.nodes[main].ip);
        let heard = rx.sources_since(before);
        if heard.len() != 1 || heard[0].0 != old {
            // Not a kill: the group changed hands or carried two sources on its own. Keep
            // the nodes' logs, say so, and try again once it is steady.
            skipped += 1;
            ensure!(skipped <= args.trials, "too many trials without a steady group; logs in {}", logs.display());
            let dir = logs.join(format!("unsteady-before-trial-{trial}-{skipped}"));
            std::fs::create_dir_all(&dir)?;
            for (i, n) in c.nodes.iter().enumerate() {
                std::fs::write(dir.join(format!("{}.log", n.name)), c.log(i))?;
            }
            eprintln!(
                "headend before trial {trial}: Raft main {} (backup {}) on air, but the group carried {heard:?} in the last second; logs in {}",
                c.nodes[main].name,
                c.nodes[backup].name,
                dir.display()
            );
            continue;
        }
        let kill_at = rx.now();
        rx.kills.push(kill_at);
        c.kill(main);
        match rx.switch_window(old, kill_at, Duration::from_secs(20)) {
            Ok((window, _)) => {
                let s = measure(&window, old, kill_at)?;
                let new = c.nodes.iter().position(|n| IpAddr::V4(n.ip) == s.new_source);
                let resent = new.and_then(|i| resent_in_log(&c, i)).map_or(String::new(), |r| format!(", the new main re-sent {r} datagrams"));
                let who = format!(" (killed {}, backup was {}{resent})", c.nodes[main].name, c.nodes[backup].name);
                log_trial("headend", trial, old, &s, &who);
                row.switches.push(s);
            }
            Err(e) => {
                eprintln!("headend trial {trial}: {e}");
                row.failed += 1;
            }
        }
        c.start(main);
        trial += 1;
    }
    let dir = logs.join("end");
    std::fs::create_dir_all(&dir)?;
    for (i, n) in c.nodes.iter().enumerate() {
        std::fs::write(dir.join(format!("{}.log", n.name)), c.log(i))?;
    }
    row.unplanned = rx.unplanned_changes();
    eprintln!("headend: node logs in {}", logs.display());
    Ok((row, mux_rate))
}

// ---------------------------------------------------------------------------------------
// multilive + multicat

/// Process groups to kill if the bench is interrupted.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn killpg(pgid: i32) {
    let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
}

fn kill_groups_on_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        for g in GROUPS.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            killpg(g);
        }
        std::process::exit(130);
    })?;
    Ok(())
}

/// A process (and its process group) killed with SIGKILL on drop.
struct Group {
    child: Child,
    /// Killed and reaped: its id may already belong to another process.
    done: bool,
}

impl Group {
    fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.process_group(0);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(child.id() as i32);
        Ok(Group { child, done: false })
    }

    /// kill -9 of every process in the group (once).
    fn kill(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let pgid = self.child.id() as i32;
        killpg(pgid);
        let _ = self.child.wait();
        GROUPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|g| *g != pgid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A network namespace whose only interface is `lo`, up, with the multicast route on it.
struct Netns {
    holder: Group,
}

impl Netns {
    fn create() -> anyhow::Result<Self> {
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "sh", "-c", "ip link set lo up && ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 1000000"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        let mut holder = Group::spawn(cmd)?;
        let out = holder.child.stdout.take().context("holder stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        ensure!(line.trim() == "ready", "unshare --net failed (root needed): {line:?}");
        Ok(Netns { holder })
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.child.id())
    }

    /// Starts a receiver on `group:port` inside the namespace: its socket is created by a
    /// thread that entered the namespace (a socket stays in the namespace it was made in).
    fn receiver(&self, group: Ipv4Addr, port: u16) -> anyhow::Result<Receiver> {
        let path = self.path();
        std::thread::spawn(move || -> anyhow::Result<Receiver> {
            let ns = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            enter_netns(&ns)?;
            Receiver::start(group, port)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the receiver thread panicked"))?
    }
}

/// Moves the calling thread into the network namespace `ns`.
#[allow(unsafe_code)]
fn enter_netns(ns: &std::fs::File) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns only reads the descriptor, which `ns` keeps open for the call; it
    // changes this thread's network namespace and nothing in this process's memory.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    ensure!(r == 0, "setns: {}", std::io::Error::last_os_error());
    Ok(())
}

/// What a multicat pair plays and how it elects.
struct PairSetup<'a> {
    ns: &'a Netns,
    file: &'a Path,
    /// Length of the file, ns (positions wrap around it).
    file_ns: u64,
    epoch_ns: u64,
    period_ms: u64,
    dead: u64,
    logs: &'a Path,
}

/// The controller of one pair: multilive's state lines start and stop multicat.
const PAIR_SCRIPT: &str = r#"exec 2>>"$LOG"
multilive -y 1000 -p "$PERIOD" -d "$DEAD" "@$CONTROL" "$CONTROL@$CONTROL" | while read -r s; do
  case "$s" in
    1) if [ -z "$pid" ]; then
         now=$(date +%s%N)
         k=$(( (now - EPOCH) % DUR * 27 / 1000 ))
         multicat -U -k "$k" "$FILE" "$GROUP@$SRC" &
         pid=$!
         echo "$now up: multicat -k $k" >&2
       fi ;;
    0) echo "$(date +%s%N) down" >&2
       if [ -n "$pid" ]; then kill "$pid"; pid=""; fi ;;
  esac
done
"#;

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl PairSetup<'_> {
    fn start(&self, src: Ipv4Addr) -> anyhow::Result<Group> {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.ns.path()))
            .args(["sh", "-c", PAIR_SCRIPT])
            .env("LOG", self.logs.join(format!("pair-{src}.log")))
            .env("PERIOD", (self.period_ms * 27_000).to_string())
            .env("DEAD", self.dead.to_string())
            .env("CONTROL", CONTROL)
            .env("EPOCH", self.epoch_ns.to_string())
            .env("DUR", self.file_ns.to_string())
            .env("FILE", self.file)
            .env("GROUP", format!("{MULTICAT_GROUP}:{MULTICAT_PORT}"))
            .env("SRC", src.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Group::spawn(cmd)
    }

    /// How long a standby pair needs to hear the master and settle (multilive's
    /// expiration: period x dead, plus a random skew of up to half that).
    fn settle(&self) -> Duration {
        Duration::from_millis(self.period_ms * self.dead * 2 + 300)
    }
}

fn run_multicat(args: &Args, ns: &Netns, rx: &mut Receiver, spec: &str, cbr: &Path, rate: u64) -> anyhow::Result<Row> {
    let (period_ms, dead) = spec
        .split_once('x')
        .and_then(|(p, d)| Some((p.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?)))
        .with_context(|| format!("--multilive {spec:?}: expected <period ms>x<dead periods>, e.g. 200x5"))?;
    let logs = tempfile::Builder::new().prefix("failover-bench-multicat-").tempdir()?;
    let file_ns = std::fs::metadata(cbr)?.len() * 8 * 1_000_000_000 / rate;
    let setup = PairSetup { ns, file: cbr, file_ns, epoch_ns: unix_ns(), period_ms, dead, logs: logs.path() };
    let addrs = [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)];
    eprintln!("multilive {period_ms} ms x {dead}: pairs on {} and {}, logs in {}", addrs[0], addrs[1], logs.path().display());
    let mut pairs: Vec<Option<Group>> = vec![Some(setup.start(addrs[0])?), None];
    poll(setup.settle() + Duration::from_secs(5), "the first pair on the group", || {
        rx.sources_since(rx.now().saturating_sub(Duration::from_millis(200))).iter().any(|(ip, _)| *ip == IpAddr::V4(addrs[0])).then_some(())
    })?;
    pairs[1] = Some(setup.start(addrs[1])?);
    let mut active = 0;
    let tool = if (period_ms, dead) == (200, 5) {
        "multilive (defaults: 200 ms announces, dead after 5) + multicat -k".to_string()
    } else {
        format!("multilive ({period_ms} ms announces, dead after {dead}) + multicat -k")
    };
    let mut row = Row { tool, switches: Vec::new(), failed: 0, unplanned: Vec::new() };
    let (mut trial, mut skipped) = (0, 0);
    while trial < args.trials {
        std::thread::sleep(setup.settle().max(WINDOW + Duration::from_millis(200)));
        let before = rx.now().saturating_sub(WINDOW);
        rx.forget_before(before.saturating_sub(Duration::from_millis(500)));
        let old = IpAddr::V4(addrs[active]);
        let heard = rx.sources_since(before);
        if heard.len() != 1 || heard[0].0 != old {
            // The election moved on its own (or both send): follow it, and say so.
            eprintln!("multilive before trial {trial}: the group carried {heard:?} in the last second (expected only {old}); waiting");
            skipped += 1;
            ensure!(skipped <= args.trials, "multilive: too many trials without a steady group");
            std::thread::sleep(setup.settle());
            let heard = rx.sources_since(rx.now().saturating_sub(WINDOW));
            ensure!(heard.len() == 1, "multilive: the group carries {heard:?}");
            active = addrs.iter().position(|a| IpAddr::V4(*a) == heard[0].0).context("unknown source")?;
            continue;
        }
        let kill_at = rx.now();
        rx.kills.push(kill_at);
        if let Some(mut p) = pairs[active].take() {
            p.kill();
        }
        match rx.switch_window(old, kill_at, Duration::from_secs(20)) {
            Ok((window, _)) => {
                let s = measure(&window, old, kill_at)?;
                log_trial("multilive", trial, old, &s, "");
                row.switches.push(s);
            }
            Err(e) => {
                eprintln!("multilive trial {trial}: {e}");
                row.failed += 1;
            }
        }
        pairs[active] = Some(setup.start(addrs[active])?);
        active = 1 - active;
        trial += 1;
    }
    drop(pairs);
    // Take what was still on its way, so the next setup starts from a silent group.
    std::thread::sleep(Duration::from_millis(300));
    rx.pump();
    rx.kept.clear();
    row.unplanned = rx.unplanned_changes();
    rx.changes.clear();
    rx.kills.clear();
    rx.last_source = None;
    // Keep the pair logs of a run that had trouble.
    if row.failed > 0 || row.switches.iter().any(|s| s.interleaved) {
        let kept = logs.keep();
        eprintln!("multilive logs kept in {}", kept.display());
    }
    Ok(row)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("HEADEND_BIN").is_none() {
        let exe = std::env::current_exe()?;
        let bin = exe.with_file_name("headend");
        ensure!(bin.is_file(), "{} not found; fix: cargo build --release -p headend-node --bin headend, or set HEADEND_BIN", bin.display());
        std::env::set_var("HEADEND_BIN", &bin);
    }
    eprintln!("failover-bench: headend = {}", std::env::var("HEADEND_BIN").unwrap_or_default());
    kill_groups_on_signal()?;
    let dir = args.items_dir.clone().unwrap_or_else(items::default_dir);
    // The item first (the CBR copy needs the channel's mux rate, known once it runs).
    let item = items::prepare(&dir, 4_000_000, Duration::ZERO)?.item;

    let mut rows = Vec::new();
    let mut mux_rate = 0;
    if !args.skip_headend {
        let (row, rate) = run_headend(&args, &item)?;
        mux_rate = rate;
        rows.push(row);
    }
    if !args.skip_multicat {
        if mux_rate == 0 {
            // The rate `RequestStream` gives the format: (video + audio) x 1.08, rounded
            // up to 100 kbit/s.
            mux_rate = ((args.video_bitrate + 128_000) * 108).div_ceil(100).div_ceil(100_000) * 100_000;
        }
        let per_trial = 6 + args.multilive.len() as u64;
        let cover = Duration::from_secs(60 + args.trials as u64 * per_trial);
        let it = items::prepare(&dir, mux_rate, cover)?;
        eprintln!(
            "multicat plays {} (CBR {mux_rate} bit/s, PCR PID {}; the item alone averages {:.0} kbit/s)",
            it.cbr.display(),
            it.cbr_pcr_pid,
            it.item_bps / 1000.0
        );
        let ns = Netns::create()?;
        let mut rx = ns.receiver(MULTICAT_GROUP, MULTICAT_PORT)?;
        for spec in &args.multilive {
            rows.push(run_multicat(&args, &ns, &mut rx, spec, &it.cbr, mux_rate)?);
        }
    }
    if rows.is_empty() {
        bail!("nothing to run (--skip-headend and --skip-multicat)");
    }
    println!("\nkill -9 of the sender, {} trials per setup, channel mux rate {mux_rate} bit/s\n", args.trials);
    println!("| tool | trials | gap p50 / p99 / max ms | trials with interleaving | two sources p50 / max ms | duplicate packets | CC errors at the switch | TR 101 290 P1 errors |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        r.print();
    }
    for r in &rows {
        let n = r.unplanned.len();
        println!("\n{}: source changes at the receiver with no kill in the 3 s before: {n}", r.tool);
        for (t, from, to) in r.unplanned.iter().take(20) {
            println!("  at {:.3} s: {from} -> {to}", t.as_secs_f64());
        }
    }
    Ok(())
}
