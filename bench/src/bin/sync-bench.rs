//! `sync-bench`: headend's media sync (`sync_channel`) against `rclone sync`, from the
//! same S3-compatible server (s3s-fs on loopback), in one run. See `bench/README.md`.
//!
//! ```sh
//! export CARGO_TARGET_DIR=$HOME/.cache/headend-target
//! cargo run --release -p headend-bench --bin sync-bench -- [--small 1000] [--large 10] \
//!     [--large-mb 50] [--noop-objects 10000] [--runs 3] [--write-readme]
//! ```
//!
//! The data set is made and uploaded once, one bucket per case (s3s-fs walks a whole
//! bucket for every listing page, so the sets must not share one). Then, per case and
//! tool, `--runs` first syncs into a fresh destination (headend: fresh cache and catalog)
//! and `--runs` no-op re-syncs of the last one; the median is reported.

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use headend_actors::sync::catalog::{Catalog, CatalogEntry, EntryState};
use headend_actors::sync::engine::{sync_channel, SyncHooks, SyncSettings};
use headend_actors::sync::metadata::read_media_info;
use headend_actors::sync::report::{Progress, SyncReport};
use headend_actors::sync::source::Source;
use object_store::ObjectStoreExt;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use headend_bench::host::{machine, shell};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "headend-bench";
const SECRET_KEY: &str = "headend-bench-secret";
const REGION: &str = "us-east-1";
/// Objects live at `<bucket>/<PREFIX>/<CHANNEL>/<name>`.
const PREFIX: &str = "library";
const CHANNEL: &str = "rock";
/// Uploads in flight at once.
const UPLOADERS: usize = 8;
/// MB = 10^6 bytes throughout.
const MB: f64 = 1e6;
const BEGIN: &str = "<!-- sync-bench results: begin -->";
const END: &str = "<!-- sync-bench results: end -->";

#[derive(Debug, Parser)]
#[command(name = "sync-bench", about = "headend media sync against rclone sync, from the same local S3 server")]
struct Cli {
    /// Small media objects (a 1 s MP3 of about 8 KB each) for the "small" cases.
    #[arg(long, default_value_t = 1000)]
    small: usize,
    /// Large media objects (a WAV of --large-mb each).
    #[arg(long, default_value_t = 10)]
    large: usize,
    /// Size of each large object, MB (10^6 bytes).
    #[arg(long, default_value_t = 50)]
    large_mb: u64,
    /// Small objects for the no-op re-sync target case (0 skips it).
    #[arg(long, default_value_t = 10000)]
    noop_objects: usize,
    /// Timed runs per case and tool; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Parallel transfers, for both tools (headend `parallelism`, rclone `--transfers`).
    #[arg(long, default_value_t = 4)]
    parallelism: usize,
    /// rclone `--checkers`.
    #[arg(long, default_value_t = 8)]
    checkers: usize,
    /// Clients talk to s3s-fs directly, without the quick-ACK relay: every request after
    /// the first on a connection then waits ~40 ms (see `relay`).
    #[arg(long)]
    direct: bool,
    /// Where both tools' destinations go (headend cache + catalog, rclone DEST); default:
    /// the temporary work directory. A tmpfs (`/dev/shm`) there makes fsync free, to see
    /// what durability costs.
    #[arg(long)]
    dest_dir: Option<PathBuf>,
    /// Writes the results into bench/README.md between the sync-bench markers.
    #[arg(long)]
    write_readme: bool,
}

// ---------------------------------------------------------------------------------------
// The S3 server.

/// s3s-fs on a free loopback port; killed (and reaped) when dropped. Clients reach it
/// through `endpoint`: the quick-ACK relay, or s3s-fs itself with `--direct`.
struct S3Server {
    child: Child,
    port: u16,
    endpoint: String,
}

impl S3Server {
    fn start(root: &Path, direct: bool) -> Result<S3Server> {
        let mut s = S3Server::spawn(root)?;
        if !direct {
            s.endpoint = format!("http://{}", relay::start(SocketAddr::from(([127, 0, 0, 1], s.port)))?);
        }
        Ok(s)
    }

    fn spawn(root: &Path) -> Result<S3Server> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new("s3s-fs")
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting s3s-fs (cargo install s3s-fs; deploy/install-deps.sh does it)")?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(S3Server { child, port, endpoint: format!("http://127.0.0.1:{port}") });
                }
                if let Some(status) = child.try_wait()? {
                    last = format!("s3s-fs exited at start ({status}) on port {port}");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("s3s-fs did not listen on port {port} within 10 s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!("{last}")
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn source(&self, bucket: &str) -> Result<Source> {
        let options = [("endpoint".to_string(), self.endpoint()), ("allow_http".to_string(), "true".to_string())];
        Ok(Source::open(&format!("s3://{bucket}/{PREFIX}"), &options)?)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay in front of s3s-fs that takes its 40 ms out of every kept-alive response.
///
/// s3s-fs does not set `TCP_NODELAY`: it writes a response's head and body separately,
/// and Nagle holds the body until the head is acknowledged, which the client (in delayed
/// ACK mode once a connection has been used) does only after its 40 ms timer. So every
/// request after the first on a connection waits ~40 ms, whatever the client; real S3
/// does not. The relay acknowledges at once (`TCP_QUICKACK`, set again after every read,
/// as Linux clears it) and forwards with `TCP_NODELAY`, on its own thread, the same for
/// both tools.
mod relay {
    use socket2::SockRef;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn start(upstream: SocketAddr) -> std::io::Result<SocketAddr> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("s3-relay".into()).spawn(move || {
            if let Ok(link) = std::fs::read_link("/proc/thread-self") {
                let _ = super::RELAY_STAT.set(format!("/proc/{}/stat", link.display()));
            }
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else { return };
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let _ = pipe(client, upstream).await;
                    });
                }
            })
        })?;
        Ok(addr)
    }

    async fn pipe(client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
        let server = TcpStream::connect(upstream).await?;
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = async move {
            let r = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
            r
        };
        let down = async move {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let _ = SockRef::from(sr.as_ref()).set_tcp_quickack(true);
                let n = sr.read(&mut buf).await?;
                if n == 0 {
                    let _ = cw.shutdown().await;
                    return Ok::<_, std::io::Error>(0u64);
                }
                cw.write_all(&buf[..n]).await?;
            }
        };
        let _ = tokio::join!(up, down);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// CPU accounting, from /proc (clock ticks of 10 ms).

/// `/proc/<pid>/task/<tid>/stat` of the relay thread.
static RELAY_STAT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// utime + stime and cutime + cstime of a /proc stat file, in seconds.
fn proc_cpu(path: &str) -> (f64, f64) {
    let Ok(text) = std::fs::read_to_string(path) else { return (0.0, 0.0) };
    let Some(end) = text.rfind(')') else { return (0.0, 0.0) };
    let f: Vec<f64> = text[end + 1..].split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // After the command: state (field 3) ... utime 14, stime 15, cutime 16, cstime 17.
    let at = |field: usize| f.get(field - 3).copied().unwrap_or(0.0) / 100.0;
    (at(14) + at(15), at(16) + at(17))
}

/// CPU seconds used so far by the bench process (without the relay thread), its reaped
/// children (rclone), s3s-fs and the relay.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    bench: f64,
    children: f64,
    server: f64,
    relay: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Cpu {
        let (own, children) = proc_cpu("/proc/self/stat");
        let relay = RELAY_STAT.get().map_or(0.0, |p| proc_cpu(p).0);
        Cpu { bench: own - relay, children, server: proc_cpu(&format!("/proc/{server_pid}/stat")).0, relay }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            bench: self.bench - before.bench,
            children: self.children - before.children,
            server: self.server - before.server,
            relay: self.relay - before.relay,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The data set.

fn ffmpeg(args: &[&str], out: &Path) -> Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg")?;
    ensure!(status.success(), "ffmpeg {args:?} {} failed: {status}", out.display());
    Ok(())
}

struct Media {
    small: Vec<u8>,
    large: Vec<u8>,
    small_path: PathBuf,
    large_path: PathBuf,
}

fn make_media(dir: &Path, large_mb: u64) -> Result<Media> {
    let small_path = dir.join("small.mp3");
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "libmp3lame", "-b:a", "64k", "-metadata", "title=Bench"],
        &small_path,
    )?;
    // Stereo 16-bit 48 kHz PCM: 192,000 bytes per second.
    let seconds = format!("{:.3}", large_mb as f64 * MB / 192_000.0);
    let large_path = dir.join("large.wav");
    let sine = format!("sine=frequency=220:sample_rate=48000:duration={seconds}");
    ffmpeg(&["-f", "lavfi", "-i", &sine, "-ac", "2", "-c:a", "pcm_s16le", "-metadata", "title=Bench large"], &large_path)?;
    Ok(Media { small: std::fs::read(&small_path)?, large: std::fs::read(&large_path)?, small_path, large_path })
}

/// Puts `count` copies of `bytes` as `<CHANNEL>/<i>.<ext>`, a few at a time.
async fn upload(source: &Source, count: usize, bytes: &[u8], ext: &str) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(bytes.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UPLOADERS.min(count.max(1)) {
        let (source, next, bytes, ext) = (source.clone(), next.clone(), bytes.clone(), ext.to_string());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let key = format!("{CHANNEL}/{i:05}.{ext}");
                let payload = object_store::PutPayload::from(bytes.as_ref().clone());
                source.store().put(&source.location(&key), payload).await.with_context(|| format!("uploading {key}"))?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The runs.

/// Flushes dirty pages (the previous run's files) so they are not written back during
/// the next timed run.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(200));
}

/// Notes when headend's plan is made (listing, catalog scan and plan done).
struct PlanClock(Mutex<Option<Instant>>);

impl Progress for PlanClock {
    fn planned(&self, _objects: u64, _bytes: u64) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

/// A headend node's cache and catalog, kept between a first sync and its re-syncs.
struct HeadendNode {
    _dir: tempfile::TempDir,
    catalog: Catalog,
    settings: SyncSettings,
}

impl HeadendNode {
    fn new(work: &Path, parallelism: usize) -> Result<HeadendNode> {
        let dir = tempfile::Builder::new().prefix("sync-bench-headend-").tempdir_in(work)?;
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache)?;
        let catalog = Catalog::open(&dir.path().join("catalog"))?;
        let mut settings = SyncSettings::new(&cache);
        settings.parallelism = parallelism;
        Ok(HeadendNode { _dir: dir, catalog, settings })
    }
}

#[derive(Debug, Clone, Copy)]
struct HeadendRun {
    total: f64,
    cpu: Cpu,
    /// From the call to the plan being made: listing + catalog scan + plan.
    to_plan: f64,
}

async fn headend_sync(
    server: &S3Server,
    source: &Source,
    node: &HeadendNode,
    expect_downloads: usize,
    expect_media: usize,
) -> Result<HeadendRun> {
    settle();
    let cpu0 = Cpu::now(server.child.id());
    let clock = Arc::new(PlanClock(Mutex::new(None)));
    let hooks = SyncHooks { progress: clock.clone(), ..SyncHooks::default() };
    let t0 = Instant::now();
    // A task on the runtime, as in the node's sync actor (not the bench's main thread).
    let (src, catalog, settings) = (source.clone(), node.catalog.clone(), node.settings.clone());
    let run = tokio::spawn(async move { sync_channel(&src, CHANNEL, &catalog, &settings, &hooks).await });
    let report: SyncReport = run.await?;
    let total = t0.elapsed().as_secs_f64();
    let cpu = Cpu::now(server.child.id()).since(cpu0);
    ensure!(
        report.is_clean() && report.refused.is_empty(),
        "headend sync not clean: {} errors, {} failed (first: {:?} {:?})",
        report.errors.len(),
        report.failed.len(),
        report.errors.first(),
        report.failed.first()
    );
    ensure!(
        report.downloaded as usize == expect_downloads && report.media as usize == expect_media,
        "headend downloaded {} of {} media (expected {expect_downloads} of {expect_media})",
        report.downloaded,
        report.media
    );
    let planned = clock.0.lock().unwrap().unwrap_or(t0);
    Ok(HeadendRun { total, cpu, to_plan: planned.duration_since(t0).as_secs_f64() })
}

struct Rclone<'a> {
    server: &'a S3Server,
    transfers: usize,
    checkers: usize,
}

impl Rclone<'_> {
    fn args(&self, bucket: &str, dest: &Path) -> Vec<String> {
        // The trailing slash says "a folder": without it rclone first HEADs the key
        // `PREFIX/CHANNEL` in case the root is a file, which s3s-fs 0.14.1 (a folder on
        // its disk) answers with a 500 only after about 50 s, retried.
        let mut a: Vec<String> = vec!["sync".into(), format!(":s3:{bucket}/{PREFIX}/{CHANNEL}/"), dest.display().to_string()];
        for (k, v) in [
            ("--config", ""),
            ("--s3-provider", "Other"),
            ("--s3-endpoint", &self.server.endpoint()),
            ("--s3-access-key-id", ACCESS_KEY),
            ("--s3-secret-access-key", SECRET_KEY),
            ("--s3-region", REGION),
            ("--transfers", &self.transfers.to_string()),
            ("--checkers", &self.checkers.to_string()),
        ] {
            a.push(k.into());
            a.push(v.into());
        }
        a
    }

    /// The command as a user would type it (for the README).
    fn shown(&self) -> String {
        let args = self.args("BUCKET", Path::new("DEST"));
        let mut s = String::from("rclone");
        for a in args {
            s.push(' ');
            s.push_str(if a.is_empty() {
                "\"\""
            } else if a.starts_with("http://") {
                "http://127.0.0.1:PORT"
            } else {
                &a
            });
        }
        s
    }

    /// `rclone lsf` of the set (the listing alone); returns its wall time.
    async fn list(&self, bucket: &str, expect: usize) -> Result<f64> {
        let mut args = self.args(bucket, Path::new("."));
        args[0] = "lsf".into();
        args.remove(2);
        let t0 = Instant::now();
        let out = tokio::process::Command::new("rclone")
            .args(args)
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("running rclone lsf")?;
        let secs = t0.elapsed().as_secs_f64();
        ensure!(out.status.success(), "rclone lsf failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        ensure!(n == expect, "rclone lsf listed {n} objects, expected {expect}");
        Ok(secs)
    }

    /// One `rclone sync`; returns its wall time. `-v` logs one line per copied file,
    /// which is how the run is checked (all copied, or none).
    async fn sync(&self, bucket: &str, dest: &Path, expect_copied: usize) -> Result<(f64, Cpu)> {
        settle();
        let cpu0 = Cpu::now(self.server.child.id());
        let t0 = Instant::now();
        let out = tokio::process::Command::new("rclone")
            .args(self.args(bucket, dest))
            .arg("-v")
            // A CA bundle set for other tools makes rclone's S3 client refuse to start
            // (it cannot add it to rclone's transport); the endpoint is plain HTTP anyway.
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("running rclone")?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = Cpu::now(self.server.child.id()).since(cpu0);
        let log = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "rclone failed ({}): {}", out.status, log.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
        let copied = log.lines().filter(|l| l.contains(": Copied (")).count();
        ensure!(copied == expect_copied, "rclone copied {copied} files, expected {expect_copied}");
        Ok((secs, cpu))
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n & 1 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    case: String,
    objects: usize,
    bytes: u64,
    /// Bytes actually moved (0 for a no-op).
    moved: bool,
    headend: Vec<f64>,
    rclone: Vec<f64>,
    headend_to_plan: Vec<f64>,
    headend_cpu: Vec<Cpu>,
    rclone_cpu: Vec<Cpu>,
    /// Listing alone (`Source::list_objects`), median of a few.
    listing: f64,
    /// The same listing by rclone (`rclone lsf`), median of a few.
    rclone_listing: f64,
    /// headend's catalog scan of the channel alone (`Catalog::channel`), after the first sync.
    catalog_scan: f64,
    target: Option<&'static str>,
}

/// A case: `bucket` holds `objects` objects of `size` bytes.
struct Case {
    name: String,
    bucket: &'static str,
    objects: usize,
    size: u64,
}

/// First syncs (`first_runs` of them, fresh destination each) and `runs` no-op re-syncs of
/// the last, for both tools, interleaved.
async fn run_case(server: &S3Server, rclone: &Rclone<'_>, work: &Path, cli: &Cli, case: &Case, first_runs: usize) -> Result<(Row, Row)> {
    let source = server.source(case.bucket)?;
    let bytes = case.objects as u64 * case.size;
    let mut listings = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let l = source.list_objects(CHANNEL).await?;
        listings.push(t0.elapsed().as_secs_f64());
        ensure!(l.len() == case.objects, "{}: listed {} objects, expected {}", case.bucket, l.len(), case.objects);
    }
    let listing = median(&listings);
    let mut rclone_listings = Vec::new();
    for _ in 0..3 {
        rclone_listings.push(rclone.list(case.bucket, case.objects).await?);
    }
    let rclone_listing = median(&rclone_listings);
    let row = |case_name: String, moved: bool| Row {
        case: case_name,
        objects: case.objects,
        bytes,
        moved,
        headend: vec![],
        rclone: vec![],
        headend_to_plan: vec![],
        headend_cpu: vec![],
        rclone_cpu: vec![],
        listing,
        rclone_listing,
        catalog_scan: f64::NAN,
        target: None,
    };
    let mut first = row(format!("first sync, {}", case.name), true);
    let mut noop = row(format!("no-op re-sync, {}", case.name), false);
    // Every first sync's destination is kept until the case ends: deleting thousands of
    // files just before a timed run makes the next file creations slow on ext4 without a
    // journal (its inode allocator steps over recently freed inodes one by one), which
    // would time the deletion, not the sync. The tools also take turns going first.
    let mut nodes = Vec::new();
    let mut dests = Vec::new();
    for r in 0..first_runs {
        eprintln!("  {}: first sync {}/{first_runs}", case.name, r + 1);
        for tool in if r % 2 == 0 { [0, 1] } else { [1, 0] } {
            if tool == 0 {
                let n = HeadendNode::new(work, cli.parallelism)?;
                let h = headend_sync(server, &source, &n, case.objects, case.objects).await?;
                first.headend.push(h.total);
                first.headend_cpu.push(h.cpu);
                first.headend_to_plan.push(h.to_plan);
                nodes.push(n);
            } else {
                let d = tempfile::Builder::new().prefix("sync-bench-rclone-").tempdir_in(work)?;
                let (secs, cpu) = rclone.sync(case.bucket, d.path(), case.objects).await?;
                first.rclone.push(secs);
                first.rclone_cpu.push(cpu);
                dests.push(d);
            }
        }
    }
    let (node, dest) = (nodes.last().context("no first run")?, dests.last().context("no first run")?);
    let mut scans = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let entries = node.catalog.channel(CHANNEL)?;
        scans.push(t0.elapsed().as_secs_f64());
        ensure!(entries.len() == case.objects, "catalog holds {} entries, expected {}", entries.len(), case.objects);
    }
    first.catalog_scan = median(&scans);
    noop.catalog_scan = first.catalog_scan;
    for r in 0..cli.runs {
        eprintln!("  {}: no-op re-sync {}/{}", case.name, r + 1, cli.runs);
        let h = headend_sync(server, &source, node, 0, case.objects).await?;
        noop.headend.push(h.total);
        noop.headend_cpu.push(h.cpu);
        noop.headend_to_plan.push(h.to_plan);
        let (secs, cpu) = rclone.sync(case.bucket, dest.path(), 0).await?;
        noop.rclone.push(secs);
        noop.rclone_cpu.push(cpu);
    }
    eprintln!(
        "  {}: first sync headend {:.2} s, rclone {:.2} s; no-op headend {:.3} s, rclone {:.3} s",
        case.name,
        median(&first.headend),
        median(&first.rclone),
        median(&noop.headend),
        median(&noop.rclone)
    );
    Ok((first, noop))
}

// ---------------------------------------------------------------------------------------
// Cost model: the per-object work headend does besides the transfer, measured alone.

#[derive(Debug, Default)]
struct Costs {
    probe_small_ms: f64,
    probe_large_ms: f64,
    catalog_put_ms: f64,
    file_fsync_ms: f64,
    /// Wall time per object of the engine's catalog and file writes for a small object
    /// (`Pending` put without flush, file fsync, rename, directory fsync, `Ready` put with
    /// flush) from `parallelism` threads at once.
    durable_parallel_ms: f64,
}

fn entry(dir: &Path, i: usize, size: u64, state: EntryState) -> CatalogEntry {
    let key = format!("{CHANNEL}/{i:05}.mp3");
    CatalogEntry {
        channel: CHANNEL.into(),
        source_key: key.clone(),
        media_id: key.clone(),
        title: "Bench".into(),
        artist: String::new(),
        album: String::new(),
        genre: String::new(),
        duration_ms: 1000,
        size,
        etag: Some(format!("{size}@{i}")),
        sha256: Some("0".repeat(64)),
        last_modified_ms: 0,
        local_path: dir.join(&key),
        state,
        first_seen_ms: 0,
        last_seen_ms: 0,
    }
}

/// A small file written to a temporary name, fsynced, renamed, its directory fsynced.
fn durable_file(dir: &Path, i: usize, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp{i}"));
    let mut f = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{i}.mp3")))?;
    std::fs::File::open(dir)?.sync_all()
}

fn measure_costs(work: &Path, media: &Media, parallelism: usize) -> Result<Costs> {
    let dir = tempfile::Builder::new().prefix("costs-").tempdir_in(work)?;
    let n = 100;
    // FFmpeg metadata read (what the engine runs on every downloaded object).
    let small = dir.path().join("probe.mp3");
    std::fs::copy(&media.small_path, &small)?;
    read_media_info(&small)?;
    let t0 = Instant::now();
    for _ in 0..n {
        read_media_info(&small)?;
    }
    let probe_small_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    let large = dir.path().join("probe.wav");
    std::fs::copy(&media.large_path, &large)?;
    read_media_info(&large)?;
    let t0 = Instant::now();
    for _ in 0..5 {
        read_media_info(&large)?;
    }
    let probe_large_ms = t0.elapsed().as_secs_f64() * 1e3 / 5.0;
    // A catalog put with flush (sled insert + fsync), as the engine does for `Ready`.
    settle();
    let catalog = Catalog::open(&dir.path().join("catalog"))?;
    let t0 = Instant::now();
    for i in 0..n {
        catalog.put(&entry(dir.path(), i, media.small.len() as u64, EntryState::Ready))?;
    }
    let catalog_put_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    settle();
    let t0 = Instant::now();
    for i in 0..n {
        durable_file(&files, i, &media.small)?;
    }
    let file_fsync_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    // The same from `parallelism` threads at once, with the two catalog puts, as the
    // engine's workers do for each small object.
    let files = dir.path().join("files-parallel");
    std::fs::create_dir_all(&files)?;
    let catalog = Catalog::open(&dir.path().join("catalog-parallel"))?;
    let n = 200;
    settle();
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..parallelism)
            .map(|w| {
                let (files, catalog, size) = (&files, &catalog, media.small.len() as u64);
                scope.spawn(move || -> Result<()> {
                    for i in (w..n).step_by(parallelism) {
                        catalog.put_unflushed(&entry(files, i, size, EntryState::Pending))?;
                        durable_file(files, i, &media.small)?;
                        catalog.put(&entry(files, i, size, EntryState::Ready))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("cost worker panicked"))?)
    })?;
    let durable_parallel_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    Ok(Costs { probe_small_ms, probe_large_ms, catalog_put_ms, file_fsync_ms, durable_parallel_ms })
}

// ---------------------------------------------------------------------------------------
// Report.


fn fmt_s(v: &[f64]) -> String {
    let m = median(v);
    let prec = |x: f64| if x < 10.0 { format!("{x:.3}") } else { format!("{x:.1}") };
    if v.len() > 1 {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} ({}–{})", prec(m), prec(lo), prec(hi))
    } else {
        prec(m)
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && matches!((s.len() - i) % 3, 0) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(cli: &Cli, rows: &[Row], costs: &Costs, rclone_cmd: &str, elapsed: f64, small_size: usize) -> String {
    let mut s = String::new();
    let date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let rclone_version = shell("rclone", &["version"]);
    let mut cmd = String::from("cargo run --release -p headend-bench --bin sync-bench --");
    let _ = write!(
        cmd,
        " --small {} --large {} --large-mb {} --noop-objects {} --runs {}",
        cli.small, cli.large, cli.large_mb, cli.noop_objects, cli.runs
    );
    if cli.direct {
        cmd.push_str(" --direct");
    }
    if let Some(d) = &cli.dest_dir {
        let _ = write!(cmd, " --dest-dir {}", d.display());
    }
    if cli.parallelism != 4 || cli.checkers != 8 {
        let _ = write!(cmd, " --parallelism {} --checkers {}", cli.parallelism, cli.checkers);
    }
    let commit = shell("git", &["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%h %s"]);
    let dirty = if shell("git", &["-C", env!("CARGO_MANIFEST_DIR"), "status", "--porcelain", "--", "../actors"]).is_empty() {
        ""
    } else {
        " (actors/ modified)"
    };
    let load =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(String::from)).unwrap_or_default();
    let _ = writeln!(
        s,
        "Run {date} on {}; headend at `{commit}`{dirty}; {rclone_version}, s3s-fs 0.14.1; 1-min load at the end {load}; \
         whole run {elapsed:.0} s.\n",
        machine()
    );
    let _ = writeln!(s, "```sh\n{cmd} --write-readme\n```\n");
    let _ = writeln!(s, "rclone, per case (fresh `DEST` for first syncs, the same one for re-syncs):\n");
    let _ = writeln!(s, "```sh\n{rclone_cmd} -v\n```\n");
    let _ = writeln!(s, "Wall time, median of {} runs (min–max); small objects are {small_size} bytes each; MB = 10^6 bytes.\n", cli.runs);
    let _ = writeln!(s, "| case | objects | MB | headend s | rclone s | headend / rclone | headend MB/s | rclone MB/s | target |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let (h, c) = (median(&r.headend), median(&r.rclone));
        let mbps = |t: f64| if r.moved { format!("{:.1}", r.bytes as f64 / MB / t) } else { "—".into() };
        let target = match r.target {
            Some("rclone") => format!("≤ rclone: {}", if h <= c { "**met**" } else { "**not met**" }),
            Some("2s") => format!("< 2 s: {}", if h < 2.0 { "**met**" } else { "**not met**" }),
            Some(t) => t.to_string(),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {} | {} | {:.2} | {} | {} | {target} |",
            r.case,
            thousands(r.objects),
            r.bytes as f64 / MB,
            fmt_s(&r.headend),
            fmt_s(&r.rclone),
            h / c,
            mbps(h),
            mbps(c),
        );
    }
    let _ = writeln!(s, "\nheadend's own breakdown (medians, seconds): *listing* is `Source::list_objects` timed alone,");
    let _ = writeln!(s, "as a first sync lists (one range, page after page; a re-sync lists the key ranges its catalog");
    let _ = writeln!(s, "knows side by side, which *to plan* includes), and, for comparison, `rclone lsf` of the same");
    let _ = writeln!(s, "set; *catalog scan* is `Catalog::channel` alone on the synced catalog; *to plan* is from the");
    let _ = writeln!(s, "call to the plan being made (catalog scan + listing + plan); *after plan* is the transfers");
    let _ = writeln!(s, "(per object: GET, SHA-256 and temporary file on a writer thread, FFmpeg metadata read of the");
    let _ = writeln!(s, "staged file; then, in groups, sync to disk, rename, directory fsync and flushed `Ready` catalog");
    let _ = writeln!(s, "entries).\n");
    let _ =
        writeln!(s, "| case | total | listing | rclone lsf | catalog scan | to plan | after plan | after plan, ms per object per worker |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (t, p) = (median(&r.headend), median(&r.headend_to_plan));
        let per = if r.moved { format!("{:.1}", (t - p) * 1e3 * cli.parallelism as f64 / r.objects as f64) } else { "—".into() };
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {per} |",
            r.case,
            t,
            r.listing,
            r.rclone_listing,
            r.catalog_scan,
            p,
            t - p
        );
    }
    let _ = writeln!(s, "\nCPU seconds per run (medians; 2 cores, so at most 2 s of CPU per second of wall time): the tool");
    let _ = writeln!(s, "itself (headend: the bench process less the relay thread; rclone: the child), and s3s-fs and");
    let _ = writeln!(s, "the relay while it ran.\n");
    let _ = writeln!(s, "| case | headend CPU | rclone CPU | s3s-fs + relay, headend runs | s3s-fs + relay, rclone runs |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in rows {
        let m = |v: &[Cpu], f: fn(&Cpu) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} + {:.2} | {:.2} + {:.2} |",
            r.case,
            m(&r.headend_cpu, |c| c.bench),
            m(&r.rclone_cpu, |c| c.children),
            m(&r.headend_cpu, |c| c.server),
            m(&r.headend_cpu, |c| c.relay),
            m(&r.rclone_cpu, |c| c.server),
            m(&r.rclone_cpu, |c| c.relay),
        );
    }
    let _ = writeln!(
        s,
        "\nPer-object costs of headend's parts measured alone on this machine (one thread), each object \
         on its own: the engine commits files and catalog entries in groups, so a run pays the \
         fsyncs below once per group, not once per object:\n"
    );
    let _ = writeln!(
        s,
        "- FFmpeg metadata read (`read_media_info`): {:.2} ms for the small MP3, {:.2} ms for a large WAV;",
        costs.probe_small_ms, costs.probe_large_ms
    );
    let _ = writeln!(
        s,
        "- catalog write with flush (`Catalog::put`, sled insert + fsync): {:.2} ms;",
        costs.catalog_put_ms
    );
    let _ = writeln!(s, "- small file to a temporary name + fsync + rename + directory fsync: {:.2} ms;", costs.file_fsync_ms);
    let _ = writeln!(
        s,
        "- all of a small object's writes (`Pending` put, file + fsync + rename + directory fsync, flushed `Ready` put) \
         from {} threads at once: {:.2} ms of wall time per object, i.e. {:.2} s per 1,000 objects.",
        cli.parallelism, costs.durable_parallel_ms, costs.durable_parallel_ms
    );
    s
}

fn write_readme(text: &str) -> Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let old = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{text}{}", &old[..b], &old[e..]),
        _ => format!("{}\n{BEGIN}\n{text}{END}\n", old.trim_end_matches('\n').to_string() + "\n"),
    };
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------

async fn run(cli: Cli) -> Result<()> {
    ensure!(cli.runs >= 1 && cli.parallelism >= 1, "--runs and --parallelism must be at least 1");
    let started = Instant::now();
    // Credentials from the environment only, as headend takes them in production.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::set_var("AWS_REGION", REGION);
    let work = tempfile::Builder::new().prefix("sync-bench-").tempdir()?;
    let media = make_media(work.path(), cli.large_mb)?;
    eprintln!(
        "sync-bench: media {} bytes (small), {} bytes (large); work dir {}",
        media.small.len(),
        media.large.len(),
        work.path().display()
    );
    let root = work.path().join("s3");
    let cases = [
        Case { name: format!("{} small", thousands(cli.small)), bucket: "small", objects: cli.small, size: media.small.len() as u64 },
        Case { name: format!("{} × {} MB", cli.large, cli.large_mb), bucket: "large", objects: cli.large, size: media.large.len() as u64 },
        Case {
            name: format!("{} small", thousands(cli.noop_objects)),
            bucket: "noop",
            objects: cli.noop_objects,
            size: media.small.len() as u64,
        },
    ];
    for c in &cases {
        std::fs::create_dir_all(root.join(c.bucket))?;
    }
    let server = S3Server::start(&root, cli.direct)?;
    eprintln!("sync-bench: s3s-fs on port {}, clients use {}", server.port, server.endpoint());
    for c in cases.iter().filter(|c| c.objects > 0) {
        let t0 = Instant::now();
        let (bytes, ext) = if c.bucket == "large" { (&media.large, "wav") } else { (&media.small, "mp3") };
        upload(&server.source(c.bucket)?, c.objects, bytes, ext).await?;
        eprintln!("sync-bench: uploaded {} objects to bucket {} in {:.1} s", c.objects, c.bucket, t0.elapsed().as_secs_f64());
    }
    let costs = measure_costs(work.path(), &media, cli.parallelism)?;
    eprintln!("sync-bench: costs {costs:?}");
    let rclone = Rclone { server: &server, transfers: cli.parallelism, checkers: cli.checkers };
    let mut firsts = Vec::new();
    let mut noops = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if c.objects == 0 {
            continue;
        }
        // The big no-op set is synced once first (not a target; reported for information).
        let first_runs = if i == 2 { 1 } else { cli.runs };
        eprintln!("sync-bench: case {}", c.name);
        let dests = cli.dest_dir.clone().unwrap_or_else(|| work.path().to_path_buf());
        let (mut first, mut noop) = run_case(&server, &rclone, &dests, &cli, c, first_runs).await?;
        if i == 2 {
            first.case.push_str(" (1 run, setup of the next row)");
            noop.target = Some("2s");
        } else {
            first.target = Some("rclone");
        }
        firsts.push(first);
        noops.push(noop);
    }
    let mut rows = Vec::new();
    // Targets first, then the no-ops, then the informational row.
    let info = if cli.noop_objects > 0 { firsts.pop() } else { None };
    rows.extend(firsts);
    rows.extend(noops);
    rows.extend(info);
    let text = report(&cli, &rows, &costs, &rclone.shown(), started.elapsed().as_secs_f64(), media.small.len());
    println!("{text}");
    if cli.write_readme {
        let path = write_readme(&text)?;
        eprintln!("sync-bench: wrote {}", path.display());
    }
    drop(server);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // On SIGINT/SIGTERM the run is dropped: s3s-fs and rclone are killed by their guards.
    tokio::select! {
        r = run(cli) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}
