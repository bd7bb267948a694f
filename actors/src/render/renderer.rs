//! The renderer handle: jobs in, [`PageFrame`]s out.

use super::capture;
use super::decode::{Decoder, Delivered};
use super::error::RenderError;
use super::page::PageSession;
use super::page_data::PageData;
use super::supervisor::{self, BrowserLease, Request};
use super::template::Template;
use crate::frame::PageFrame;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How the node's browser is run.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// `chromium-headless-shell` (the regular `chromium` has no `beginFrame`).
    pub executable: PathBuf,
    /// Each browser gets a fresh profile directory under this one.
    pub profile_dir: PathBuf,
    /// Bound for loading a template and starting it (images, fonts).
    pub load_timeout: Duration,
    /// Heartbeat: bound for drawing one frame (and for the browser's liveness probe).
    pub frame_timeout: Duration,
}

impl BrowserSettings {
    /// Defaults: [`BrowserSettings::default_executable`], 15 s load timeout, 5 s frame timeout.
    pub fn new(profile_dir: impl Into<PathBuf>) -> BrowserSettings {
        BrowserSettings {
            executable: Self::default_executable(),
            profile_dir: profile_dir.into(),
            load_timeout: Duration::from_secs(15),
            frame_timeout: Duration::from_secs(5),
        }
    }

    /// Debian's headless shell binary. `/usr/bin/chromium-headless-shell` is a shell script
    /// that does not `exec`, so its pid is not the browser's; the binary itself is preferred.
    pub fn default_executable() -> PathBuf {
        let binary = Path::new("/usr/lib/chromium/chromium-headless-shell");
        if binary.exists() {
            binary.to_path_buf()
        } else {
            PathBuf::from("/usr/bin/chromium-headless-shell")
        }
    }
}

/// One item's page to render.
#[derive(Debug, Clone)]
pub struct RenderJob {
    pub template: Template,
    /// Let the page reach the network. Without it, a default or `file://` template gets no
    /// network at all, and an http(s) template only its own origin.
    pub allow_network: bool,
    pub data: PageData,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Exactly this many [`PageFrame`]s are delivered, the first one `New`.
    pub frames: u64,
    /// Transparent page background (an overlay): alpha 0 where the page draws nothing.
    pub transparent: bool,
    /// Wall clock time (Unix ms) the page's `Date` shows at frame 0; `None`: when the job
    /// starts. Set it for renders that must be identical when repeated.
    pub clock_origin_ms: Option<u64>,
}

impl RenderJob {
    /// A job without network, opaque, clock from the start of the render.
    pub fn new(template: Template, data: PageData, width: u32, height: u32, fps: u32, frames: u64) -> RenderJob {
        RenderJob { template, allow_network: false, data, width, height, fps, frames, transparent: false, clock_origin_ms: None }
    }

    fn validate(&self) -> Result<(), RenderError> {
        let bad = |field, reason: &str| Err(RenderError::InvalidJob { field, reason: reason.to_string() });
        if !(16..=4096).contains(&self.width) {
            return bad("width", "must be 16 to 4096 pixels");
        }
        if !(16..=4096).contains(&self.height) {
            return bad("height", "must be 16 to 4096 pixels");
        }
        if !(1..=120).contains(&self.fps) {
            return bad("fps", "must be 1 to 120");
        }
        if self.frames == 0 {
            return bad("frames", "must be at least 1");
        }
        Ok(())
    }
}

/// What a render did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderStats {
    /// Frames delivered (always the job's `frames`).
    pub frames: u64,
    /// Frames delivered as new pictures.
    pub captured: u64,
    /// Frames delivered as `Repeat`.
    pub repeated: u64,
    /// 1, or 2 when the first attempt hung or lost its browser.
    pub attempts: u32,
    pub elapsed: Duration,
}

/// The browser as the supervisor last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserStatus {
    /// Pid of the running browser; `None` while it (re)starts or after shutdown.
    pub pid: Option<u32>,
    /// Browsers started so far (including failed starts).
    pub generation: u64,
    /// Times the browser died and was restarted.
    pub restarts: u64,
    /// Why the last browser ended, or the last start error.
    pub last_exit: Option<String>,
}

/// Cheap handle to the node's supervised browser. Jobs may run concurrently (one browser
/// context and page each).
#[derive(Clone)]
pub struct Renderer {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<BrowserStatus>,
    settings: Arc<BrowserSettings>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("status", &*self.status.borrow()).finish()
    }
}

impl Renderer {
    /// Starts the browser supervisor and waits for the first browser to be up.
    pub async fn start(settings: BrowserSettings) -> Result<Renderer, RenderError> {
        std::fs::create_dir_all(&settings.profile_dir).map_err(|e| RenderError::BrowserStart {
            executable: settings.executable.clone(),
            reason: format!("cannot create profile directory {}: {e}", settings.profile_dir.display()),
        })?;
        let settings = Arc::new(settings);
        let (requests, status) = supervisor::spawn(settings.clone());
        let renderer = Renderer { requests, status, settings };
        if let Err(e) = renderer.lease().await {
            renderer.clone().shutdown().await;
            return Err(e);
        }
        Ok(renderer)
    }

    /// Renders `job`, sending exactly `job.frames` frames to `out` (the first `New`). A job
    /// whose page hung or whose browser died is run once more (frames already delivered are
    /// not sent again). Stops with `Cancelled` when `cancel` fires or `out` is dropped.
    pub async fn render(&self, job: RenderJob, out: mpsc::Sender<PageFrame>, cancel: CancellationToken) -> Result<RenderStats, RenderError> {
        job.validate()?;
        job.template.check_readable()?;
        job.data.validate()?;
        let started = Instant::now();
        let clock_origin_ms = job.clock_origin_ms.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
        });
        let mut delivered = 0u64;
        let mut captured = 0u64;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let lease = self.lease().await?;
            let (done, result) = self.attempt(lease, &job, &out, &cancel, delivered, clock_origin_ms).await;
            delivered += done.frames;
            captured += done.new;
            match result {
                Ok(()) => {
                    return Ok(RenderStats { frames: delivered, captured, repeated: delivered - captured, attempts, elapsed: started.elapsed() });
                }
                Err(e) if e.is_retryable() && attempts < 2 => {
                    tracing::warn!(template = %job.template, delivered, "render failed, retrying once: {e}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One run of the job on `lease`'s browser, delivering frames `skip..`.
    async fn attempt(
        &self,
        lease: BrowserLease,
        job: &RenderJob,
        out: &mpsc::Sender<PageFrame>,
        cancel: &CancellationToken,
        skip: u64,
        clock_origin_ms: u64,
    ) -> (Delivered, Result<(), RenderError>) {
        let url = job.template.to_string();
        // The page's calls stop when the job is cancelled or the encoder drops its receiver.
        let page_cancel = cancel.child_token();
        let watch_out = {
            let (out, page_cancel) = (out.clone(), page_cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = out.closed() => page_cancel.cancel(),
                    _ = page_cancel.cancelled() => {}
                }
            })
        };
        // One job at a time per browser (see `capture`): wait for the turn, not counted in any
        // time limit.
        let turn = tokio::select! {
            biased;
            _ = page_cancel.cancelled() => None,
            _ = lease.died.cancelled() => None,
            turn = lease.turn.clone().lock_owned() => Some(turn),
        };
        let Some(turn) = turn else {
            watch_out.abort();
            let e = if lease.died.is_cancelled() {
                RenderError::BrowserCrashed { url, reason: "the browser process exited while the job waited for its turn".into() }
            } else {
                RenderError::Cancelled { url }
            };
            return (Delivered::default(), Err(e));
        };
        let decoder = Decoder::spawn(job.width, job.height, url.clone(), out.clone());
        let mut session = match PageSession::open(lease, turn, job, &self.settings, clock_origin_ms, page_cancel.clone()).await {
            Ok(session) => session,
            Err(e) => {
                page_cancel.cancel();
                watch_out.abort();
                let (done, _) = decoder.join().await;
                return (done, Err(e));
            }
        };
        let captured = capture::run(&mut session, job.fps, job.frames, skip, &decoder.shots).await;
        session.close(matches!(captured, Err(RenderError::Hung { .. }))).await;
        let (done, decode_err) = decoder.join().await;
        page_cancel.cancel();
        watch_out.abort();
        let result = match (captured, decode_err) {
            (Err(e), _) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) if skip + done.frames == job.frames => Ok(()),
            (Ok(()), None) => Err(RenderError::Capture { url, frame: skip + done.frames, reason: "the frame loop ended early".into() }),
        };
        (done, result)
    }

    async fn lease(&self) -> Result<BrowserLease, RenderError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Lease(tx)).await.map_err(|_| RenderError::ShutDown)?;
        rx.await.map_err(|_| RenderError::ShutDown)?
    }

    /// Kills the browser and stops the supervisor (for every clone of this handle).
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Pid of the running browser process, if one is up.
    pub fn browser_pid(&self) -> Option<u32> {
        self.status.borrow().pid
    }

    /// The browser's current status.
    pub fn status(&self) -> BrowserStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change (restarts, pids).
    pub fn watch_status(&self) -> watch::Receiver<BrowserStatus> {
        self.status.clone()
    }
}
