//! Fixtures for the sync tests: a real S3-compatible server (`s3s-fs`, installed by
//! deploy/install-deps.sh) on a free loopback port with a temporary root, small real
//! media made with the FFmpeg CLI, and helpers to run a sync and look at the result.
#![allow(dead_code)]

use headend_actors::sync::catalog::Catalog;
use headend_actors::sync::engine::{sync_channel, RetryPolicy, SyncHooks, SyncSettings};
use headend_actors::sync::report::SyncReport;
use headend_actors::sync::source::Source;
use object_store::ObjectStoreExt;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "headend-test";
pub const SECRET_KEY: &str = "headend-test-secret";
pub const BUCKET: &str = "media";

/// Credentials come from the environment only (as in production); set once, the same for
/// every test in this binary, before any store is opened.
fn credentials_in_env() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::set_var("AWS_REGION", "us-east-1");
    });
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An s3s-fs process serving `root` (bucket `media` = `root/media`). Dropping it kills it.
pub struct S3Server {
    _tmp: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl S3Server {
    pub fn start() -> S3Server {
        credentials_in_env();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let mut s = S3Server { _tmp: Some(tmp), root, port: 0, child: None };
        // A free port can be taken by someone else before s3s-fs binds it: try another.
        let mut last = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.spawn() {
                Ok(child) => {
                    s.child = Some(child);
                    return s;
                }
                Err(e) => last = e,
            }
        }
        panic!("{last}");
    }

    /// Starts (again) on the same port and root.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.child = Some(self.spawn().unwrap_or_else(|e| panic!("{e}")));
    }

    /// Runs s3s-fs and waits until it accepts connections.
    fn spawn(&self) -> Result<Child, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs is installed (deploy/install-deps.sh: cargo install s3s-fs)");
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("s3s-fs exited at start ({status}) on port {}", self.port));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("s3s-fs did not listen on port {} within 10 s", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("s3://{BUCKET}/library")
    }

    pub fn options(&self) -> Vec<(String, String)> {
        vec![("endpoint".into(), format!("http://127.0.0.1:{}", self.port)), ("allow_http".into(), "true".into())]
    }

    pub fn source(&self) -> Source {
        Source::open(&self.url(), &self.options()).unwrap()
    }

    /// Where the server keeps an object's bytes (to damage it behind the server's back).
    pub fn file_of(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join("library").join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Uploads through object_store, as a content provider would.
pub async fn put(source: &Source, key: &str, bytes: &[u8]) {
    source.store().put(&source.location(key), bytes.to_vec().into()).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
}

pub async fn delete(source: &Source, key: &str) {
    source.store().delete(&source.location(key)).await.unwrap();
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg CLI (deploy/install-deps.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} {}", out.display());
}

/// Small real media, made once per test binary.
pub struct Media {
    _dir: tempfile::TempDir,
    /// MP3, ID3 tags (One / Artist A / Album A / Rock) and an embedded PNG cover.
    pub one_mp3: Vec<u8>,
    /// Ogg Vorbis, tags in the stream (Two / Artist B).
    pub two_ogg: Vec<u8>,
    /// The same, re-tagged (Two, remastered): a changed object of another size.
    pub two_ogg_v2: Vec<u8>,
    /// MP4 audio with tags (Three (tag)); the tests give it a sidecar JSON and image.
    pub three_m4a: Vec<u8>,
    pub cover_png: Vec<u8>,
    /// About 48 MB of WAV: long enough to be killed mid-transfer at a capped rate.
    pub big_wav: Vec<u8>,
}

pub fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let sine = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"];
        ffmpeg(&["-f", "lavfi", "-i", "color=red:s=16x16", "-frames:v", "1"], &p("cover.png"));
        let cover = p("cover.png");
        let mut a = sine.to_vec();
        a.extend(["-i", cover.to_str().unwrap(), "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "png"]);
        a.extend(["-disposition:v", "attached_pic", "-id3v2_version", "3"]);
        a.extend(["-metadata", "title=One", "-metadata", "artist=Artist A", "-metadata", "album=Album A", "-metadata", "genre=Rock"]);
        ffmpeg(&a, &p("one.mp3"));
        let tagged = |title: &str, out: &str| {
            let mut a = sine.to_vec();
            let t = format!("title={title}");
            a.extend(["-c:a", "libvorbis", "-metadata", &t, "-metadata", "artist=Artist B"]);
            ffmpeg(&a, &p(out));
        };
        tagged("Two", "two.ogg");
        tagged("Two, remastered with a longer title", "two2.ogg");
        let mut a = sine.to_vec();
        a.extend(["-c:a", "aac", "-metadata", "title=Three (tag)", "-metadata", "artist=Artist C"]);
        ffmpeg(&a, &p("three.m4a"));
        ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=220:duration=250", "-ac", "1", "-ar", "96000", "-c:a", "pcm_s16le"], &p("big.wav"));
        let read = |n: &str| std::fs::read(p(n)).unwrap();
        Media {
            one_mp3: read("one.mp3"),
            two_ogg: read("two.ogg"),
            two_ogg_v2: read("two2.ogg"),
            three_m4a: read("three.m4a"),
            cover_png: read("cover.png"),
            big_wav: read("big.wav"),
            _dir: dir,
        }
    })
}

/// The channel used by the tests, with its three items and their sidecars.
pub async fn upload_library(source: &Source) {
    let m = media();
    put(source, "rock/one.mp3", &m.one_mp3).await;
    put(source, "rock/one.mp3.sha256", format!("{}  one.mp3\n", sha256_hex(&m.one_mp3)).as_bytes()).await;
    put(source, "rock/two.ogg", &m.two_ogg).await;
    put(source, "rock/three.m4a", &m.three_m4a).await;
    put(source, "rock/three.m4a.json", br#"{"title":"Three (sidecar)","media_id":"m-3","genre":"Jazz"}"#).await;
    put(source, "rock/three.png", &m.cover_png).await;
}

/// A cache, a catalog and fast retries, in one temporary place.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
    pub catalog_path: PathBuf,
    pub catalog: Catalog,
    pub settings: SyncSettings,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("work/cache");
        std::fs::create_dir_all(&cache).unwrap();
        let catalog_path = dir.path().join("catalog");
        let catalog = Catalog::open(&catalog_path).unwrap();
        let mut settings = SyncSettings::new(&cache);
        settings.disk_floor_bytes = 0;
        settings.retry = RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(100) };
        Node { dir, cache, catalog_path, catalog, settings }
    }

    /// Closes the catalog and opens it again from disk.
    pub fn reopen_catalog(&mut self) {
        let scratch = Catalog::open(&self.dir.path().join("scratch-catalog")).unwrap();
        drop(std::mem::replace(&mut self.catalog, scratch));
        self.catalog = Catalog::open(&self.catalog_path).unwrap();
    }

    pub async fn sync(&self, source: &Source, hooks: &SyncHooks) -> SyncReport {
        sync_channel(source, "rock", &self.catalog, &self.settings, hooks).await
    }
}

/// Every path under `dir` (files and folders), recursively.
pub fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// Regular files under `dir`.
pub fn files(dir: &Path) -> BTreeSet<PathBuf> {
    walk(dir).into_iter().filter(|p| p.is_file()).collect()
}
