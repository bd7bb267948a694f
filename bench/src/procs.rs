//! Child processes and their CPU time.
//!
//! Every child is held by a [`ChildGuard`] that kills and reaps it when dropped (normal
//! exit, error, panic unwinding). The children also sit in a process-wide registry so
//! that SIGINT / SIGTERM kill them all before the bench exits
//! ([`kill_children_on_signal`]).
//!
//! CPU time is read the same way for every tool: `utime + stime` of `/proc/<pid>/stat`,
//! which covers all threads of the process, live and exited.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Live children by registry key.
fn registry() -> &'static Mutex<BTreeMap<u64, Child>> {
    static CHILDREN: OnceLock<Mutex<BTreeMap<u64, Child>>> = OnceLock::new();
    CHILDREN.get_or_init(Default::default)
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A directory to remove when a signal ends the bench (destructors do not run then).
static SCRATCH: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes `dir` if a signal ends the bench.
pub fn remove_on_signal(dir: &Path) {
    *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
}

/// Kills every registered child.
fn kill_all() {
    let mut children = registry().lock().unwrap_or_else(|e| e.into_inner());
    for child in children.values_mut() {
        kill_and_reap(child);
    }
    children.clear();
}

/// On SIGINT or SIGTERM: kill every child, then exit with status 130.
pub fn kill_children_on_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                eprintln!("warning: cannot handle signals; children may outlive an interrupted bench");
                return std::future::pending().await;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        eprintln!("interrupted: stopping child processes");
        kill_all();
        if let Some(dir) = SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    })?;
    Ok(())
}

/// A running child process, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    key: u64,
    pid: u32,
    name: String,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` with stdout and stderr to `log`. stdin is a pipe held by the guard's
    /// child: it closes when the bench dies, which `headend-child` takes as its cue to exit.
    pub fn spawn(name: impl Into<String>, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = name.into();
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::piped()).stdout(out.try_clone()?).stderr(out);
        let child = cmd.spawn().with_context(|| format!("starting {name} ({cmd:?})"))?;
        let pid = child.id();
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        registry().lock().unwrap_or_else(|e| e.into_inner()).insert(key, child);
        Ok(ChildGuard { key, pid, name, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Fails, quoting the end of the child's log, when the child has exited.
    pub fn check_running(&self) -> anyhow::Result<()> {
        let status = {
            let mut children = registry().lock().unwrap_or_else(|e| e.into_inner());
            match children.get_mut(&self.key) {
                Some(c) => c.try_wait()?,
                None => bail!("{} is gone", self.name),
            }
        };
        if let Some(status) = status {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("{} exited early ({status}); end of {}:\n{}", self.name, self.log.display(), tail.join("\n"));
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let child = registry().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
        if let Some(mut child) = child {
            kill_and_reap(&mut child);
        }
    }
}

/// User and system CPU time, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_s: f64,
    pub sys_s: f64,
}

impl CpuTime {
    pub fn total_s(self) -> f64 {
        self.user_s + self.sys_s
    }
}

impl std::ops::Add for CpuTime {
    type Output = CpuTime;
    fn add(self, o: CpuTime) -> CpuTime {
        CpuTime { user_s: self.user_s + o.user_s, sys_s: self.sys_s + o.sys_s }
    }
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;
    fn sub(self, o: CpuTime) -> CpuTime {
        CpuTime { user_s: self.user_s - o.user_s, sys_s: self.sys_s - o.sys_s }
    }
}

impl std::iter::Sum for CpuTime {
    fn sum<I: Iterator<Item = CpuTime>>(iter: I) -> CpuTime {
        iter.fold(CpuTime::default(), |a, b| a + b)
    }
}

/// Clock ticks per second of `/proc` times (USER_HZ; 100 on every Linux we run on).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// (name, utime + stime) from the text of a `/proc/.../stat` file.
fn parse_stat(text: &str) -> Option<(String, CpuTime)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    // Fields after the name start at field 3 (state); utime and stime are fields 14, 15.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let tick = clock_ticks();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, CpuTime { user_s: utime / tick, sys_s: stime / tick }))
}

/// CPU time of a whole process (all its threads, including exited ones).
pub fn process_cpu(pid: u32) -> anyhow::Result<CpuTime> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&text).map(|(_, t)| t).with_context(|| format!("parsing {path}"))
}

/// CPU time of each live thread of a process, by thread id: (thread name, time).
pub fn thread_cpu(pid: u32) -> BTreeMap<u32, (String, CpuTime)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(parsed) = std::fs::read_to_string(entry.path().join("stat")).ok().as_deref().and_then(parse_stat) {
            out.insert(tid, parsed);
        }
    }
    out
}

/// Host-wide CPU time since boot, from the first line of /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostCpu {
    /// user + nice + system + irq + softirq (guest time is inside user), seconds.
    pub busy_s: f64,
    /// Time the hypervisor ran something else while we wanted the CPU, seconds.
    pub steal_s: f64,
}

pub fn host_cpu() -> HostCpu {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> =
        text.lines().next().unwrap_or("").split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0.0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0) / clock_ticks();
    // user nice system idle iowait irq softirq steal ...
    HostCpu { busy_s: at(0) + at(1) + at(2) + at(5) + at(6), steal_s: at(7) }
}

/// Datagrams the kernel dropped for full UDP receive buffers, host-wide
/// (`RcvbufErrors` in /proc/net/snmp).
pub fn udp_receive_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Polls `check` every 100 ms until it returns true, failing after `timeout`.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let text = "1234 (playout-ch 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        let (name, t) = parse_stat(text).unwrap();
        assert_eq!(name, "playout-ch 1");
        let tick = clock_ticks();
        assert!((t.user_s - 250.0 / tick).abs() < 1e-9);
        assert!((t.sys_s - 50.0 / tick).abs() < 1e-9);
    }
}
