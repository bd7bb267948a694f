//! Shared helpers for multi-process cluster tests: real `headend` processes started
//! from a generated config, their HTTP API, their multicast output and the project's
//! TS analyzer.
//!
//! * [`headend_bin`] finds (and builds, once per test binary) the `headend` binary.
//! * [`Headend`] writes a config and spawns `headend run --config`; stderr goes to a
//!   file that is printed when a test panics; dropping the handle kills the process.
//! * [`wait_for`] polls observable state until a condition holds (never a bare sleep).
//! * [`http_get`] is a tiny std-only HTTP/1.1 GET.
//! * [`capture`], [`analyze`] wrap `headend_actors`' multicast capture and analyzer.
//! * [`items`] makes real H.264/AAC items with sidecars once (cached under the target dir).
//!
//! Tests use loopback only and the multicast groups 239.255.210.x.

pub mod cluster;
pub mod netcluster;
pub mod netns;
pub mod s3;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use headend_actors::encode::testcard::{
    generate_test_item, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec,
};
pub use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
pub use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig, Report};
use serde_json::Value;

/// First three octets of every multicast group these tests use.
pub const GROUP_PREFIX: [u8; 3] = [239, 255, 210];
/// Bytes per datagram: 7 TS packets, no RTP.
pub const DATAGRAM_BYTES: usize = 7 * 188;

/// `239.255.210.octet`.
pub fn group(octet: u8) -> Ipv4Addr {
    Ipv4Addr::new(GROUP_PREFIX[0], GROUP_PREFIX[1], GROUP_PREFIX[2], octet)
}

// ---------------------------------------------------------------------------------------
// Waiting

/// Polls `f` every 50 ms until it returns `Some`; panics after `timeout` naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// The binary

/// The `headend` binary: `$HEADEND_BIN` if set, else `<target>/<profile>/headend` next to
/// this test binary's `deps/` directory, built by `cargo build -p headend-node --bin
/// headend` once per test binary (a no-op when it is up to date, so a stale binary is
/// never tested).
pub fn headend_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HEADEND_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // <target>/<profile>/deps/<test binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in <target>/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let bin = profile_dir.join(format!("headend{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "headend-node",
            "--bin",
            "headend",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        eprintln!(
            "cluster-tests: building {} (cargo build -p headend-node --bin headend)",
            bin.display()
        );
        let t0 = Instant::now();
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build headend: {e}"));
        eprintln!("cluster-tests: cargo build took {:?}", t0.elapsed());
        assert!(
            out.status.success(),
            "`cargo build -p headend-node --bin headend` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            bin.is_file(),
            "built headend but {} does not exist",
            bin.display()
        );
        bin
    })
}

/// A `headend` command with no `HEADEND_*` variables inherited from the test's
/// environment (they would override the config under test).
pub fn headend_command() -> Command {
    let mut cmd = Command::new(headend_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HEADEND_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info").stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------------------
// Config and process

/// One `[[channels]]` table of a generated config.
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub program_number: u16,
    pub mux_rate: u64,
    pub group: Ipv4Addr,
    pub port: u16,
    /// Playlist items; empty for a rendered channel (see `extra`).
    pub items: Vec<PathBuf>,
    /// More TOML for this channel's tables (e.g. `[channels.render]`), appended as is.
    pub extra: String,
}

impl Channel {
    /// A TV channel on `239.255.210.octet:port`, loopback interface, 1.5 Mbit/s.
    pub fn new(id: &str, octet: u8, port: u16, items: &[PathBuf]) -> Channel {
        Channel {
            id: id.into(),
            name: format!("Test {id}"),
            program_number: 1,
            mux_rate: 1_500_000,
            group: group(octet),
            port,
            items: items.to_vec(),
            extra: String::new(),
        }
    }

    /// The `[[channels]]` TOML.
    pub fn to_toml(&self) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|p| toml_str(&p.display().to_string()))
            .collect();
        format!(
            "[[channels]]\nid = {}\nname = {}\nprogram_number = {}\nmux_rate = {}\n\n\
             [channels.multicast]\ngroup = \"{}\"\nport = {}\ninterface = \"127.0.0.1\"\nttl = 1\nloopback = true\n\n\
             [channels.playlist]\norder = \"sequential\"\n{}\n{}\n",
            toml_str(&self.id),
            toml_str(&self.name),
            self.program_number,
            self.mux_rate,
            self.group,
            self.port,
            if items.is_empty() { String::new() } else { format!("source = {{ items = [{}] }}\n", items.join(", ")) },
            self.extra
        )
    }
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes") // JSON string escapes are valid TOML
}

/// A whole config file: `[node]` with `data_dir` and `http_listen`, then the channels.
pub fn config_toml(data_dir: &Path, http: SocketAddr, channels: &[Channel]) -> String {
    let mut s = format!(
        "version = 1\n\n[node]\nid = \"cluster-test\"\ndata_dir = {}\nhttp_listen = \"{http}\"\nlog_format = \"text\"\n\n",
        toml_str(&data_dir.display().to_string())
    );
    for c in channels {
        s.push_str(&c.to_toml());
    }
    s
}

/// A free loopback TCP port (bound then released; [`HeadendBuilder::spawn`] retries if
/// another process takes it in between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Builds and starts a [`Headend`].
#[derive(Debug, Default)]
pub struct HeadendBuilder {
    channels: Vec<Channel>,
    data_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl HeadendBuilder {
    pub fn channel(mut self, c: Channel) -> Self {
        self.channels.push(c);
        self
    }

    /// Keep channel state in `dir` (default: a fresh directory per process).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes the config and starts `headend run --config`, then waits until its HTTP
    /// API answers `/healthz` (retrying with another port if the one picked was taken).
    pub fn spawn(self) -> Headend {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let work = tempfile::Builder::new()
                .prefix("headend-cluster-")
                .tempdir()
                .expect("temp dir");
            let data_dir = self
                .data_dir
                .clone()
                .unwrap_or_else(|| work.path().join("data"));
            let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let config = work.path().join("headend.toml");
            std::fs::write(&config, config_toml(&data_dir, http, &self.channels))
                .expect("write config");
            let stderr_path = work.path().join("stderr.log");
            let stdout_path = work.path().join("stdout.log");
            let mut cmd = headend_command();
            cmd.arg("run")
                .arg("--config")
                .arg(&config)
                .stdout(std::fs::File::create(&stdout_path).expect("stdout log"))
                .stderr(std::fs::File::create(&stderr_path).expect("stderr log"));
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            die_with_parent(&mut cmd);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", headend_bin().display()));
            let mut h = Headend {
                child,
                http,
                config,
                data_dir,
                stderr_path,
                exit: None,
                _work: work,
            };
            let up = wait_for(
                Duration::from_secs(20),
                "headend to answer /healthz or exit",
                || {
                    if h.try_wait().is_some() {
                        return Some(false);
                    }
                    http_get(http, "/healthz")
                        .ok()
                        .filter(|r| r.status == 200)
                        .map(|_| true)
                },
            );
            if up {
                return h;
            }
            last_failure = format!("headend exited with {:?}:\n{}", h.exit, h.stderr_log());
            if !last_failure.contains("cannot listen") {
                break;
            }
        }
        panic!("{last_failure}");
    }
}

/// Has the kernel kill the child (SIGKILL) when the thread that spawned it ends, so a
/// test binary killed by a CI timeout leaves no headend sending multicast behind (it
/// would trip the collision check of every later run). `Drop` covers the normal case.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl,
    // which is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

/// A running `headend run` process. Dropping it kills the process (SIGKILL) if it is
/// still running; when the test is panicking its stderr is printed.
#[derive(Debug)]
pub struct Headend {
    child: Child,
    http: SocketAddr,
    config: PathBuf,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
    _work: tempfile::TempDir,
}

impl Headend {
    pub fn builder() -> HeadendBuilder {
        HeadendBuilder::default()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `method path` on the node's API, body as bytes; panics (with the node's log) on a
    /// transport error.
    pub fn request(&self, method: &str, path: &str) -> HttpBytes {
        http_request(self.http, method, path).unwrap_or_else(|e| {
            panic!("{method} {path} on {}: {e}\nheadend stderr:\n{}", self.http, self.stderr_log())
        })
    }

    /// GET `path` from the node's API; panics (with the node's log) on a transport error.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(self.http, path).unwrap_or_else(|e| {
            panic!(
                "GET {path} on {}: {e}\nheadend stderr:\n{}",
                self.http,
                self.stderr_log()
            )
        })
    }

    /// `/channels/{id}/now` when it answers 200.
    pub fn now(&self, channel: &str) -> Option<NowPlaying> {
        let r = http_get(self.http, &format!("/channels/{channel}/now")).ok()?;
        (r.status == 200).then(|| now_from_json(&r.json()))
    }

    /// Waits until the channel is on air and returns its first now-playing answer.
    pub fn wait_on_air(&mut self, channel: &str, timeout: Duration) -> NowPlaying {
        wait_for(
            timeout,
            &format!("channel {channel} on air (/now answering 200)"),
            || {
                if let Some(status) = self.try_wait() {
                    panic!(
                        "headend exited with {status} before {channel} went on air:\n{}",
                        self.stderr_log()
                    );
                }
                self.now(channel)
            },
        )
    }

    /// Sends a signal (`"TERM"`, `"INT"`, ...) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Headend {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.stderr_log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "---- headend (config {}, http {}) stderr, last {} lines ----\n{}\n----",
                self.config.display(),
                self.http,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// The JSON of `/channels/{id}/now`: the node's own type.
pub use headend_actors::playout::actor::NowPlaying;

/// Reads `/channels/{id}/now` JSON, panicking with the body when it does not parse.
pub fn now_from_json(v: &Value) -> NowPlaying {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("now playing JSON {v}: {e}"))
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------
// HTTP

/// A response of [`http_get`]: a text body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// A response of [`http_request`]: the body as bytes (e.g. an image).
#[derive(Debug, Clone)]
pub struct HttpBytes {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `GET path` over HTTP/1.1 with `Connection: close`; the body must be UTF-8.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    let r = http_request(addr, "GET", path)?;
    let body = String::from_utf8(r.body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("body is not UTF-8: {e}")))?;
    Ok(HttpResponse {
        status: r.status,
        headers: r.headers,
        body,
    })
}

/// `method path` with an empty body over HTTP/1.1 with `Connection: close` (std only;
/// handles chunked bodies).
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<HttpBytes> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad(format!("no header end in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body".into()))?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < len {
            return Err(bad(format!(
                "body cut short: {} of {len} bytes",
                body.len()
            )));
        }
        body.truncate(len);
    }
    Ok(HttpBytes {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------
// Multicast and analysis

/// Joins `group:port` on the loopback interface and starts receiving.
pub fn capture(group: Ipv4Addr, port: u16) -> Capture {
    Capture::start(group, port, Ipv4Addr::LOCALHOST)
        .unwrap_or_else(|e| panic!("cannot join {group}:{port} on 127.0.0.1: {e}"))
}

/// Datagrams a stream at `mux_rate` bit/s sends in `d`.
pub fn datagrams_in(mux_rate: u64, d: Duration) -> u64 {
    (mux_rate as f64 * d.as_secs_f64() / (DATAGRAM_BYTES as f64 * 8.0)).ceil() as u64
}

/// Runs the TS analyzer (TR 101 290 defaults) over the datagrams' TS bytes.
pub fn analyze(datagrams: &[Datagram]) -> Report {
    analyze_bytes(&ts_bytes(datagrams), AnalyzerConfig::default())
}

/// Error counts and the first priority 1/2 errors, for assertion messages.
pub fn describe(report: &Report) -> String {
    let mut s = format!("error counts {:?}\nfirst errors:", report.error_counts);
    for e in report.p1_errors.iter().chain(&report.p2_errors).take(20) {
        let _ = write!(s, "\n  {e:?}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// Items

/// Real MPEG-TS items (H.264 320x180 + AAC) with `<item>.ts.json` sidecars.
#[derive(Debug)]
pub struct Items {
    /// 3 s, "Alpha" by "The Testers".
    pub alpha: PathBuf,
    /// 3 s, "Bravo" by "Second Act".
    pub bravo: PathBuf,
    /// 6 s, "Long One" by "Slow Band".
    pub long_one: PathBuf,
    /// 6 s, "Long Two" by "Slow Band".
    pub long_two: PathBuf,
}

/// Sidecar metadata of an item: `(media_id, title, artist, album, genre)`.
pub type Meta = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// (file, seconds, (media_id, title, artist, album, genre), tone).
const ITEM_SPECS: [(&str, f64, Meta, u32); 4] = [
    (
        "alpha.ts",
        3.0,
        ("alpha-001", "Alpha", "The Testers", "First Album", "Test"),
        440,
    ),
    (
        "bravo.ts",
        3.0,
        ("bravo-002", "Bravo", "Second Act", "Second Album", "Test"),
        660,
    ),
    (
        "long-one.ts",
        6.0,
        (
            "long-001",
            "Long One",
            "Slow Band",
            "Long Player",
            "Ambient",
        ),
        330,
    ),
    (
        "long-two.ts",
        6.0,
        (
            "long-002",
            "Long Two",
            "Slow Band",
            "Long Player",
            "Ambient",
        ),
        550,
    ),
];
/// Bump when the items change, so cached items are regenerated.
const ITEMS_VERSION: u32 = 1;

/// The sidecar metadata written for `item`.
pub fn meta_of(item: &Path) -> Meta {
    let name = item
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    ITEM_SPECS
        .iter()
        .find(|s| s.0 == name)
        .map(|s| s.2)
        .unwrap_or_else(|| panic!("not a test item: {}", item.display()))
}

/// A fresh folder with copies of the Alpha and Bravo items and their sidecars: a
/// channel's media folder shared by every node of a test cluster (as a network share
/// would be).
pub fn shared_media() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let it = items();
    for p in [&it.alpha, &it.bravo] {
        let name = p.file_name().expect("item name");
        std::fs::copy(p, dir.path().join(name)).expect("copy item");
        let sidecar = format!("{}.json", p.display());
        if Path::new(&sidecar).is_file() {
            std::fs::copy(&sidecar, dir.path().join(format!("{}.json", name.to_string_lossy()))).expect("copy sidecar");
        }
    }
    dir
}

/// The items, generated with the FFmpeg libraries on first use and cached in
/// `<target>/tmp/headend-cluster-tests/items-v<N>` across runs (generated into a private
/// directory and renamed into place, so concurrent test binaries never see half an item).
pub fn items() -> &'static Items {
    static ITEMS: OnceLock<Items> = OnceLock::new();
    ITEMS.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let target = exe
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let root = target.join("tmp").join("headend-cluster-tests");
        let dir = root.join(format!("items-v{ITEMS_VERSION}"));
        if !dir.join("done").is_file() {
            std::fs::create_dir_all(&root).expect("create item cache root");
            let fresh = tempfile::Builder::new()
                .prefix("items-new-")
                .tempdir_in(&root)
                .expect("temp dir");
            for (file, secs, meta, tone) in ITEM_SPECS {
                write_item(&fresh.path().join(file), secs, meta, tone);
            }
            std::fs::write(fresh.path().join("done"), b"").expect("write marker");
            let fresh = fresh.keep();
            if std::fs::rename(&fresh, &dir).is_err() {
                // Another test binary got there first (or a stale partial dir): use a
                // complete one.
                if dir.join("done").is_file() {
                    let _ = std::fs::remove_dir_all(&fresh);
                } else {
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::rename(&fresh, &dir).expect("move items into place");
                }
            }
        }
        let p = |f: &str| dir.join(f);
        Items {
            alpha: p("alpha.ts"),
            bravo: p("bravo.ts"),
            long_one: p("long-one.ts"),
            long_two: p("long-two.ts"),
        }
    })
}

fn write_item(path: &Path, secs: f64, meta: Meta, tone_hz: u32) {
    let (media_id, title, artist, album, genre) = meta;
    let spec = TestItemSpec {
        title: title.into(),
        artist: artist.into(),
        duration: Duration::from_secs_f64(secs),
        video: Some(VideoSpec {
            codec: VideoCodec::H264,
            width: 320,
            height: 180,
            fps: 25,
            bitrate: 400_000,
            gop: 25,
        }),
        audio: Some(AudioSpec {
            codec: AudioCodec::Aac,
            sample_rate: 48_000,
            channels: 2,
            bitrate: 96_000,
            tone_hz,
        }),
    };
    generate_test_item(&spec, path).unwrap_or_else(|e| panic!("making {}: {e}", path.display()));
    let sidecar = serde_json::json!({"media_id": media_id, "title": title, "artist": artist, "album": album, "genre": genre});
    std::fs::write(format!("{}.json", path.display()), sidecar.to_string()).expect("write sidecar");
}
