//! `headend sync --once` and `GET /sync/status` on a real node process, with a
//! `file://` store (the S3 paths are covered by actors/tests/sync_s3.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, library: &Path, port: u16) -> std::path::PathBuf {
    let data = dir.join("data");
    let cache = data.join("cache").join("rock");
    std::fs::create_dir_all(&cache).unwrap();
    let config = format!(
        r#"version = 1
[node]
id = "sync-test"
data_dir = "{data}"
http_listen = "127.0.0.1:{port}"
[node.sync]
interval_secs = 1

[[channels]]
id = "rock"
name = "Rock"
program_number = 1
mux_rate = 3000000
[channels.multicast]
group = "239.255.220.1"
port = 5000
interface = "127.0.0.1"
ttl = 1
loopback = true
[channels.playlist]
source = {{ folder = "{cache}" }}
[channels.sync]
source = "file://{library}"
"#,
        data = data.display(),
        cache = cache.display(),
        library = library.display()
    );
    let path = dir.join("headend.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sync_once_then_node_reports_sync_status() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("rock")).unwrap();
    let song = library.join("rock/song.mp3");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-metadata", "title=Test Song", "-metadata", "artist=The Testers", song.to_str().unwrap()]);
    let item = library.join("rock/item.ts");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=660:duration=2", "-c:a", "mp2", "-b:a", "192k", "-f", "mpegts", item.to_str().unwrap()]);
    let port = free_port();
    let config = write_config(dir.path(), &library, port);
    let headend = env!("CARGO_BIN_EXE_headend");

    let once = |expect: &str| {
        let out = Command::new(headend).args(["sync", "--once", "--quiet", "--config"]).arg(&config).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(expect), "expected {expect:?} in: {stdout}");
    };
    once("2 downloaded");
    assert!(dir.path().join("data/cache/rock/song.mp3").is_file());
    assert!(dir.path().join("data/cache/rock/item.ts").is_file());
    once("0 downloaded");

    // Without --once the command explains itself.
    let out = Command::new(headend).args(["sync", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--once"));

    // A running node syncs on its interval and reports it; the synced TS item airs.
    std::fs::write(library.join("rock/new.mp3"), std::fs::read(&song).unwrap()).unwrap();
    let child = Command::new(headend).args(["run", "--config"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let _node = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some((200, body)) = http_get(port, "/sync/status") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["runs"].as_u64().unwrap_or(0) >= 1 && dir.path().join("data/cache/rock/new.mp3").is_file() {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "no sync run reported");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["degraded"], false, "{status}");
    let now = loop {
        if let Some((200, body)) = http_get(port, "/channels/rock/now") {
            break body;
        }
        assert!(Instant::now() < deadline, "channel not on air");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(now.contains("item.ts"), "{now}");
}
