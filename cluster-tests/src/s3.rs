//! A real S3-compatible store for the cluster tests: an `s3s-fs` process (installed by
//! deploy/install-deps.sh) on a free loopback port, serving a temporary folder. Objects
//! are put by writing files under [`S3Store::bucket_dir`] (s3s-fs keeps an object as the
//! file of its key).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{die_with_parent, free_port, wait_for};

pub const ACCESS_KEY: &str = "headend-test";
pub const SECRET_KEY: &str = "headend-test-secret";
pub const BUCKET: &str = "media";

/// A running s3s-fs. Dropping it kills it.
pub struct S3Store {
    root: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl S3Store {
    /// Starts s3s-fs with an empty bucket `media`; waits until it accepts connections.
    pub fn start() -> S3Store {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("bucket dir");
        let port = free_port();
        let mut cmd = Command::new("s3s-fs");
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("s3s-fs is installed (deploy/install-deps.sh: cargo install s3s-fs)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for(Duration::from_secs(10), "s3s-fs to listen", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("s3s-fs exited at start: {status}");
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok().map(|_| ())
        });
        S3Store { root, port, child }
    }

    /// The folder whose files are the bucket's objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    /// The bucket as a media URL with its store options in the query (what `RequestStream`
    /// takes as `media_folder`).
    pub fn media_url(&self) -> String {
        format!("s3://{BUCKET}?endpoint=http://127.0.0.1:{}&allow_http=true&region=us-east-1", self.port)
    }

    /// The credentials a node reads from its environment.
    pub fn env() -> [(&'static str, &'static str); 3] {
        [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY), ("AWS_REGION", "us-east-1")]
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
