//! The runs of `headend-bench playout`: one per tool and channel count, one after the
//! other so they never compete for the CPU. Each run captures its streams, starts its
//! processes, waits until every stream flows, lets them settle, then measures CPU (from
//! `/proc`) and captures over the same window, stops the processes and analyzes.

use crate::items::{self, Items};
use crate::procs::{self, ChildGuard, CpuTime};
use crate::streams::{self, Captures, StreamResult};
use crate::PlayoutBench;
use anyhow::{bail, Context};
use headend_actors::playout::sender::PACKETS_PER_DATAGRAM;
use headend_actors::ts::TS_PACKET_SIZE;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Ports per run: channel `i` of a run uses `run base + i`.
const PORTS_PER_RUN: usize = 1000;
/// Groups 239.255.200.1 ..= 239.255.200.250 (the range the bench may use).
const GROUPS: usize = 250;

/// Bytes of TS per datagram (every tool sends 7 packets per datagram).
pub const DATAGRAM_BYTES: usize = PACKETS_PER_DATAGRAM * TS_PACKET_SIZE;

/// Datagrams per second of one channel at `rate` bit/s.
pub fn datagrams_per_second(rate: u64) -> f64 {
    rate as f64 / (DATAGRAM_BYTES * 8) as f64
}

/// Output of channel `i`: group 239.255.200.(1 + i mod 250), port `port_base + i`.
pub fn channel_output(i: usize, port_base: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 200, (1 + i % GROUPS) as u8), port_base + i as u16)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Headend,
    /// ffmpeg as users run it: `-re`, output written as the muxer produces it.
    Ffmpeg,
    /// ffmpeg with its UDP protocol's own pacing (`bitrate=` on the output URL).
    FfmpegPaced,
    Multicat,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Headend => "headend",
            Tool::Ffmpeg => "ffmpeg",
            Tool::FfmpegPaced => "ffmpeg, udp bitrate=",
            Tool::Multicat => "multicat",
        }
    }
}

/// CPU of headend's threads over a window, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadShares {
    /// The channels' pacing threads (`playout-*`).
    pub pacers: CpuTime,
    /// Everything else: the tokio runtime running the channel actors and, on its
    /// blocking pool, schedule extension; threads that exited during the window.
    pub rest: CpuTime,
}

/// CPU measured over one window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub seconds: f64,
    /// All the run's processes.
    pub cpu: CpuTime,
    /// headend only.
    pub threads: Option<ThreadShares>,
    /// CPU of the bench process itself meanwhile (its capture threads), % of one core.
    pub bench_core_percent: f64,
    /// CPU the rest of the host used meanwhile (other people's builds and tests), % of
    /// one core.
    pub others_core_percent: f64,
    /// Hypervisor steal, % of one core.
    pub steal_core_percent: f64,
}

impl Window {
    /// CPU seconds per channel-hour.
    pub fn per_channel_hour(&self, channels: usize) -> f64 {
        self.cpu.total_s() / channels as f64 / self.seconds * 3600.0
    }
    /// CPU as a percentage of one core.
    pub fn core_percent(&self) -> f64 {
        self.cpu.total_s() / self.seconds * 100.0
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub tool: Tool,
    pub channels: usize,
    /// While every captured stream had a receiver on loopback (the captures).
    pub received: Window,
    /// Right after, with no receiver at all (the kernel then drops the datagrams
    /// without copying them to a socket), as when receivers are on other hosts.
    pub unreceived: Option<Window>,
    /// From starting the processes until every captured stream had arrived.
    pub startup_s: f64,
    pub streams: Vec<StreamResult>,
    /// Host-wide UDP receive-buffer drops during the captured window (receiver side,
    /// not the sender's fault).
    pub rx_drops: u64,
    /// Warning and error lines the processes logged (first few, and the count).
    pub log_lines: Vec<String>,
    pub log_count: usize,
}

impl RunResult {
    /// The window CPU comparisons use: without receivers when measured.
    pub fn cpu_window(&self) -> &Window {
        self.unreceived.as_ref().unwrap_or(&self.received)
    }
    pub fn cpu_per_channel_hour(&self) -> f64 {
        self.cpu_window().per_channel_hour(self.channels)
    }
    pub fn core_percent(&self) -> f64 {
        self.cpu_window().core_percent()
    }
}

/// Everything a bench measured.
#[derive(Debug)]
pub struct Bench {
    pub items: Items,
    pub runs: Vec<RunResult>,
}

/// Runs ffmpeg, multicat, then headend at each channel count.
pub fn run_all(args: &PlayoutBench) -> anyhow::Result<Bench> {
    let max_channels = args
        .channels
        .iter()
        .copied()
        .chain([args.ffmpeg_channels, args.ffmpeg_paced_channels, args.multicat_channels])
        .max()
        .unwrap_or(0);
    if max_channels > PORTS_PER_RUN {
        bail!("at most {PORTS_PER_RUN} channels per run");
    }
    let runs: Vec<(Tool, usize)> = [
        (Tool::Ffmpeg, args.ffmpeg_channels),
        (Tool::FfmpegPaced, args.ffmpeg_paced_channels),
        (Tool::Multicat, args.multicat_channels),
    ]
    .into_iter()
    .chain(args.channels.iter().map(|&n| (Tool::Headend, n)))
    .filter(|&(_, n)| n > 0)
    .collect();
    if args.port_base as usize + runs.len() * PORTS_PER_RUN > u16::MAX as usize {
        bail!("--port-base too high for {} runs of {PORTS_PER_RUN} ports", runs.len());
    }
    let dir = args.items_dir.clone().unwrap_or_else(items::default_dir);
    // multicat cannot loop: its copy must outlast start-up, warm-up and both windows.
    let cover = Duration::from_secs(args.warmup + args.seconds + args.unreceived_seconds + 30);
    let items = items::prepare(&dir, args.rate, cover)?;
    let work = tempfile::Builder::new().prefix("headend-bench-").tempdir()?;
    procs::remove_on_signal(work.path());
    let mut results = Vec::new();
    for (n, &(tool, channels)) in runs.iter().enumerate() {
        let port_base = args.port_base + (n * PORTS_PER_RUN) as u16;
        eprintln!("run {}/{}: {} x {channels} channels ...", n + 1, runs.len(), tool.name());
        let result = run_one(tool, channels, args, &items, &work.path().join(format!("run{n}")), port_base, n)
            .with_context(|| format!("{} with {channels} channels", tool.name()))?;
        eprintln!(
            "  {:.1}% of a core, {:.1} CPU s per channel-hour, {} streams analyzed",
            result.core_percent(),
            result.cpu_per_channel_hour(),
            result.streams.len()
        );
        results.push(result);
        // Let sockets and the previous run's leftovers settle.
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(Bench { items, runs: results })
}

/// Which of `channels` streams to capture: all, or `max` spread evenly.
fn captured_channels(channels: usize, max: usize) -> Vec<usize> {
    if max == 0 || max >= channels {
        return (0..channels).collect();
    }
    (0..max).map(|j| j * channels / max).collect()
}

fn spawn(
    tool: Tool,
    channels: usize,
    args: &PlayoutBench,
    items: &Items,
    dir: &Path,
    port_base: u16,
) -> anyhow::Result<Vec<ChildGuard>> {
    let log = |name: &str| dir.join(format!("{name}.log"));
    match tool {
        Tool::Headend => {
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.arg("headend-child")
                .arg("--channels")
                .arg(channels.to_string())
                .arg("--item")
                .arg(&items.item)
                .arg("--rate")
                .arg(args.rate.to_string())
                .arg("--port-base")
                .arg(port_base.to_string())
                .arg("--state-dir")
                .arg(dir.join("state"));
            Ok(vec![ChildGuard::spawn("headend", cmd, &log("headend"))?])
        }
        Tool::Ffmpeg | Tool::FfmpegPaced => (0..channels)
            .map(|i| {
                let out = channel_output(i, port_base);
                let mut url = format!("udp://{}:{}?pkt_size=1316&localaddr=127.0.0.1&ttl=1", out.ip(), out.port());
                if tool == Tool::FfmpegPaced {
                    url.push_str(&format!("&bitrate={}", args.rate));
                }
                let mut cmd = Command::new("ffmpeg");
                cmd.args(["-nostdin", "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i"])
                    .arg(&items.item)
                    .args(["-c", "copy", "-muxrate"])
                    .arg(args.rate.to_string())
                    .args(["-f", "mpegts"])
                    .arg(url);
                ChildGuard::spawn(format!("ffmpeg {i}"), cmd, &log(&format!("ffmpeg-{i}")))
            })
            .collect(),
        Tool::Multicat => (0..channels)
            .map(|i| {
                let out = channel_output(i, port_base);
                let mut cmd = Command::new("multicat");
                cmd.args(["-U", "-t", "1"]).arg(&items.cbr).arg(format!("{}:{}@127.0.0.1", out.ip(), out.port()));
                ChildGuard::spawn(format!("multicat {i}"), cmd, &log(&format!("multicat-{i}")))
            })
            .collect(),
    }
}

fn run_one(
    tool: Tool,
    channels: usize,
    args: &PlayoutBench,
    items: &Items,
    dir: &Path,
    port_base: u16,
    run: usize,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(dir)?;
    let addrs: Vec<SocketAddrV4> =
        captured_channels(channels, args.capture_max).into_iter().map(|i| channel_output(i, port_base)).collect();
    let mut captures = Captures::start(&addrs)?;
    let started = Instant::now();
    let children = spawn(tool, channels, args, items, dir, port_base)?;
    let alive = || children.iter().try_for_each(ChildGuard::check_running);
    let timeout = Duration::from_secs(60 + 2 * channels as u64);
    procs::wait_until(timeout, "every stream to arrive", || {
        alive()?;
        Ok(captures.silent() == 0)
    })?;
    let startup_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(args.warmup));
    alive()?;

    let pids: Vec<u32> = children.iter().map(ChildGuard::pid).collect();
    let threads_of = (tool == Tool::Headend).then_some(pids[0]);
    captures.discard(((args.seconds + 2) as f64 * datagrams_per_second(args.rate) * 1.1) as usize);
    let drops_before = procs::udp_receive_drops();
    let received = measure(&pids, threads_of, args.seconds, &mut || {
        captures.collect();
        alive()
    })?;
    let rx_drops = procs::udp_receive_drops().saturating_sub(drops_before);
    // Closing the capture sockets leaves the groups.
    let captured = captures.finish();
    let unreceived = if args.unreceived_seconds > 0 {
        std::thread::sleep(Duration::from_millis(500));
        Some(measure(&pids, threads_of, args.unreceived_seconds, &mut || alive())?)
    } else {
        None
    };
    let logs: Vec<_> = children.iter().map(|c| c.log().to_path_buf()).collect();
    drop(children);

    let (log_lines, log_count) = notable_log_lines(&logs);
    if let Some(dump) = &args.dump_dir {
        let tag = tool.name().split(',').next().unwrap_or("tool");
        streams::dump(
            dump,
            &format!("run{run}-{tag}{}", if tool == Tool::FfmpegPaced { "-paced" } else { "" }),
            &captured,
        )?;
    }
    Ok(RunResult {
        tool,
        channels,
        received,
        unreceived,
        startup_s,
        streams: streams::analyze_all(captured),
        rx_drops,
        log_lines,
        log_count,
    })
}

/// CPU of `pids` over `seconds` (and of `threads_of`'s threads, by kind), calling
/// `every_second` (which checks that the processes still run) about every second.
fn measure(
    pids: &[u32],
    threads_of: Option<u32>,
    seconds: u64,
    every_second: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Window> {
    let cpu_now = || pids.iter().map(|&p| procs::process_cpu(p)).sum::<anyhow::Result<CpuTime>>();
    let threads_before = threads_of.map(procs::thread_cpu);
    let cpu_before = cpu_now()?;
    let host_before = procs::host_cpu();
    let bench_before = procs::process_cpu(std::process::id())?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(seconds);
    while Instant::now() < end {
        std::thread::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_secs(1)));
        every_second()?;
    }
    let cpu = cpu_now()? - cpu_before;
    let bench = procs::process_cpu(std::process::id())? - bench_before;
    let host = procs::host_cpu();
    let seconds = t0.elapsed().as_secs_f64();
    let threads =
        threads_of.zip(threads_before).map(|(pid, before)| thread_shares(&before, &procs::thread_cpu(pid), cpu));
    Ok(Window {
        seconds,
        cpu,
        threads,
        bench_core_percent: bench.total_s() / seconds * 100.0,
        others_core_percent: ((host.busy_s - host_before.busy_s - cpu.total_s() - bench.total_s()) / seconds * 100.0)
            .max(0.0),
        steal_core_percent: (host.steal_s - host_before.steal_s) / seconds * 100.0,
    })
}

/// Splits a headend process's CPU over a window: pacing threads and the rest.
fn thread_shares(
    before: &std::collections::BTreeMap<u32, (String, CpuTime)>,
    after: &std::collections::BTreeMap<u32, (String, CpuTime)>,
    total: CpuTime,
) -> ThreadShares {
    let pacers = after
        .iter()
        .filter(|(_, (name, _))| name.starts_with("playout-"))
        .map(|(tid, (_, t1))| *t1 - before.get(tid).map_or(CpuTime::default(), |(_, t0)| *t0))
        .sum();
    ThreadShares { pacers, rest: total - pacers }
}

/// The first distinct warning/error lines of the processes' logs (timestamps and
/// channel-specific numbers stripped for grouping), and how many there were in all.
fn notable_log_lines(logs: &[std::path::PathBuf]) -> (Vec<String>, usize) {
    const KEEP: usize = 8;
    let mut distinct: Vec<(String, String)> = Vec::new();
    let mut count = 0;
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // multicat reports its socket set-up at "debug" level: not worth a mention.
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("debug:")) {
            count += 1;
            // tracing lines start with an RFC 3339 timestamp: drop it.
            let body = match line.split_once(' ') {
                Some((first, rest)) if first.len() > 20 && first.as_bytes()[4] == b'-' => rest.trim(),
                _ => line,
            };
            let key: String = body.chars().filter(|c| !c.is_ascii_digit()).collect();
            if distinct.len() < KEEP && !distinct.iter().any(|(k, _)| *k == key) {
                distinct.push((key, body.chars().take(240).collect()));
            }
        }
    }
    (distinct.into_iter().map(|(_, line)| line).collect(), count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_stay_in_the_bench_range() {
        assert_eq!(channel_output(0, 24_000), "239.255.200.1:24000".parse().unwrap());
        assert_eq!(channel_output(249, 24_000), "239.255.200.250:24249".parse().unwrap());
        assert_eq!(channel_output(250, 24_000), "239.255.200.1:24250".parse().unwrap());
    }

    #[test]
    fn captured_channels_are_spread() {
        assert_eq!(captured_channels(5, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(captured_channels(100, 4), vec![0, 25, 50, 75]);
        assert_eq!(captured_channels(3, 10), vec![0, 1, 2]);
    }
}
