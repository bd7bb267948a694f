//! Launching the Chromium process and finding its DevTools WebSocket address.
//!
//! The renderer spawns Chromium itself (rather than through chromiumoxide's launcher) so that
//! it owns the child: it can wait for its exit (a crash is seen at once), kill its whole
//! process group (renderers, zygote, a wrapper script's child), and report its pid.

use super::error::RenderError;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Sets the parent-death signal, then execs Chromium (same pid): Chromium is killed when the
/// node dies, even by SIGKILL (`kill_on_drop` covers only orderly drops). The signal follows
/// the thread that spawned it, a runtime worker thread that lives as long as the runtime.
const SETPRIV: &str = "/usr/bin/setpriv";

/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Flags of every browser. `deterministic-mode` turns on begin-frame control and makes every
/// compositor stage run before a frame is drawn, so a frame shows the state at its frame time.
const FLAGS: &[&str] = &[
    "no-sandbox",
    "disable-gpu",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "no-first-run",
    "no-default-browser-check",
    "disable-dev-shm-usage",
    "deterministic-mode",
    "hide-scrollbars",
    "mute-audio",
    "force-color-profile=srgb",
    "disable-extensions",
    "disable-breakpad",
    "disable-default-apps",
    "disable-hang-monitor",
    "disable-ipc-flooding-protection",
    "disable-background-timer-throttling",
    "disable-renderer-backgrounding",
    "disable-backgrounding-occluded-windows",
    "disable-features=Translate,MediaRouter,OptimizationHints",
    "autoplay-policy=no-user-gesture-required",
    "password-store=basic",
    "use-mock-keychain",
    "remote-debugging-address=127.0.0.1",
    "remote-debugging-port=0",
];

/// A running Chromium.
#[derive(Debug)]
pub(crate) struct BrowserProcess {
    child: Child,
    pid: u32,
    profile: PathBuf,
    pub(crate) ws_url: String,
}

impl BrowserProcess {
    /// Starts Chromium with a fresh profile directory `profile` and waits for its DevTools address.
    pub(crate) async fn launch(executable: &Path, profile: PathBuf) -> Result<BrowserProcess, RenderError> {
        let start_err = |reason: String| RenderError::BrowserStart { executable: executable.to_path_buf(), reason };
        if profile.exists() {
            std::fs::remove_dir_all(&profile).map_err(|e| start_err(format!("cannot clear profile {}: {e}", profile.display())))?;
        }
        std::fs::create_dir_all(&profile).map_err(|e| start_err(format!("cannot create profile {}: {e}", profile.display())))?;
        let mut cmd = if Path::new(SETPRIV).exists() {
            let mut cmd = Command::new(SETPRIV);
            cmd.args(["--pdeathsig", "KILL"]).arg(executable);
            cmd
        } else {
            Command::new(executable)
        };
        cmd.args(FLAGS.iter().map(|f| format!("--{f}")))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| start_err(e.to_string()))?;
        let pid = child.id().ok_or_else(|| start_err("exited at once".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| start_err("no stderr pipe".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let found = tokio::time::timeout(LAUNCH_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                    return Some(url.to_string());
                }
                if seen.len() < 20 {
                    seen.push(line);
                }
            }
            None
        })
        .await;
        let ws_url = match found {
            Ok(Some(url)) => url,
            other => {
                kill_group(pid);
                let _ = child.wait().await;
                let why = if other.is_err() { format!("no DevTools address within {LAUNCH_TIMEOUT:?}") } else { "it exited".into() };
                return Err(start_err(format!("{why}; its output: {}", seen.join(" | "))));
            }
        };
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "headend::render::chromium", "{line}");
            }
        });
        Ok(BrowserProcess { child, pid, profile, ws_url })
    }

    /// The browser's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves when the process exits.
    pub(crate) async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Kills the browser and everything it started, waits for it and removes its profile.
    pub(crate) async fn kill(mut self) {
        kill_group(self.pid);
        let _ = self.child.wait().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// Removes the profile of a process that already exited.
    pub(crate) fn forget(self) {
        kill_group(self.pid);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// SIGKILL to the browser's process group (it leads its own group).
pub(crate) fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
