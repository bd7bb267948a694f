//! The task that owns the node's browser: starts Chromium, hands out leases to jobs, notices
//! its death at once (it waits on the process), restarts it with backoff, and kills it when it
//! stops answering a heartbeat. One message enum; the state lives in the task.

use super::capture::FrameClock;
use super::error::RenderError;
use super::process::{kill_group, BrowserProcess};
use super::renderer::{BrowserSettings, BrowserStatus};
use crate::supervise::{FIRST_BACKOFF, HEALTHY_AFTER, MAX_BACKOFF};
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::Browser;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the browser must answer `Browser.getVersion`.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// A job's hold on the current browser.
#[derive(Clone)]
pub(crate) struct BrowserLease {
    pub(crate) browser: Arc<Browser>,
    /// Cancelled when this browser process has died.
    pub(crate) died: CancellationToken,
    /// One job at a time draws on a browser, and frame times only move forward across jobs
    /// (see [`FrameClock`]).
    pub(crate) turn: Arc<tokio::sync::Mutex<FrameClock>>,
}

pub(crate) type LeaseReply = oneshot::Sender<Result<BrowserLease, RenderError>>;

/// Requests to the supervisor.
pub(crate) enum Request {
    /// The running browser (waits while it restarts).
    Lease(LeaseReply),
    /// Kill the browser and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Starts the supervisor task.
pub(crate) fn spawn(settings: Arc<BrowserSettings>) -> (mpsc::Sender<Request>, watch::Receiver<BrowserStatus>) {
    let (tx, rx) = mpsc::channel(64);
    let (status_tx, status_rx) = watch::channel(BrowserStatus::default());
    tokio::spawn(run(settings, rx, status_tx));
    (tx, status_rx)
}

struct Live {
    process: BrowserProcess,
    lease: BrowserLease,
    handler: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

impl Live {
    async fn start(settings: &BrowserSettings, generation: u64) -> Result<Live, RenderError> {
        let profile = settings.profile_dir.join(format!("chromium-{generation}"));
        let process = BrowserProcess::launch(&settings.executable, profile).await?;
        let config = HandlerConfig {
            viewport: None,
            // Our own bounds (heartbeat, load timeout) fire first.
            request_timeout: settings.load_timeout.max(settings.frame_timeout) + Duration::from_secs(10),
            ..HandlerConfig::default()
        };
        let (browser, mut handler) = match Browser::connect_with_config(process.ws_url.clone(), config).await {
            Ok(pair) => pair,
            Err(e) => {
                process.kill().await;
                return Err(RenderError::BrowserStart { executable: settings.executable.clone(), reason: format!("DevTools connection: {e}") });
            }
        };
        // chromiumoxide reports protocol hiccups as items; never stop on one.
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!("chromium DevTools connection: {e}");
                }
            }
        });
        let browser = Arc::new(browser);
        let died = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(browser.clone(), process.pid(), settings.frame_timeout, died.clone()));
        let turn = Arc::new(tokio::sync::Mutex::new(FrameClock::default()));
        Ok(Live { process, lease: BrowserLease { browser, died, turn }, handler, heartbeat })
    }

    fn status(&self, generation: u64, restarts: u64, last_exit: Option<String>) -> BrowserStatus {
        BrowserStatus { pid: Some(self.process.pid()), generation, restarts, last_exit }
    }

    /// After the process exited: wake its jobs, stop its tasks, clean up.
    fn exited(self) {
        self.lease.died.cancel();
        self.handler.abort();
        self.heartbeat.abort();
        self.process.forget();
    }

    async fn stop(self) {
        self.lease.died.cancel();
        self.heartbeat.abort();
        self.process.kill().await;
        self.handler.abort();
    }
}

/// Kills the browser when it stops answering; the supervisor then sees it exit.
async fn heartbeat(browser: Arc<Browser>, pid: u32, limit: Duration, died: CancellationToken) {
    loop {
        tokio::select! {
            _ = died.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
        match tokio::time::timeout(limit, browser.version()).await {
            Ok(Ok(_)) => {}
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {limit:?}"),
                };
                tracing::error!(pid, "browser failed its heartbeat ({why}); killing it");
                kill_group(pid);
                return;
            }
        }
    }
}

enum Event {
    Exited(String),
    Shutdown(Option<oneshot::Sender<()>>),
}

async fn run(settings: Arc<BrowserSettings>, mut rx: mpsc::Receiver<Request>, status: watch::Sender<BrowserStatus>) {
    let mut generation = 0u64;
    let mut restarts = 0u64;
    let mut backoff = FIRST_BACKOFF;
    let mut waiting: Vec<LeaseReply> = Vec::new();
    let mut last_exit: Option<String> = None;
    loop {
        generation += 1;
        let started = Instant::now();
        let live = match Live::start(&settings, generation).await {
            Ok(live) => live,
            Err(e) => {
                tracing::error!(backoff = ?backoff, "{e}");
                for reply in waiting.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                last_exit = Some(e.to_string());
                status.send_replace(BrowserStatus { pid: None, generation, restarts, last_exit: last_exit.clone() });
                // Jobs asking meanwhile get the start error rather than waiting.
                if !wait_out(&mut rx, backoff, &mut waiting, Some(&e)).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        status.send_replace(live.status(generation, restarts, last_exit.clone()));
        for reply in waiting.drain(..) {
            let _ = reply.send(Ok(live.lease.clone()));
        }
        let mut live = live;
        let event = loop {
            tokio::select! {
                exit = live.process.exited() => {
                    break Event::Exited(match exit {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    });
                }
                msg = rx.recv() => match msg {
                    None => break Event::Shutdown(None),
                    Some(Request::Shutdown(reply)) => break Event::Shutdown(Some(reply)),
                    Some(Request::Lease(reply)) => {
                        let _ = reply.send(Ok(live.lease.clone()));
                    }
                },
            }
        };
        match event {
            Event::Shutdown(reply) => {
                live.stop().await;
                status.send_replace(BrowserStatus { pid: None, generation, restarts, last_exit });
                for reply in waiting.drain(..) {
                    let _ = reply.send(Err(RenderError::ShutDown));
                }
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
                return;
            }
            Event::Exited(how) => {
                let pid = live.process.pid();
                live.exited();
                restarts += 1;
                if started.elapsed() > HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                tracing::error!(pid, backoff = ?backoff, "browser exited ({how}); restarting");
                last_exit = Some(format!("browser pid {pid} exited: {how}"));
                status.send_replace(BrowserStatus { pid: None, generation, restarts, last_exit: last_exit.clone() });
                if !wait_out(&mut rx, backoff, &mut waiting, None).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Waits `backoff`, queueing lease requests (or refusing them with `refuse`). False on shutdown.
async fn wait_out(rx: &mut mpsc::Receiver<Request>, backoff: Duration, waiting: &mut Vec<LeaseReply>, refuse: Option<&RenderError>) -> bool {
    let until = tokio::time::sleep(backoff);
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = &mut until => return true,
            msg = rx.recv() => match msg {
                None => return false,
                Some(Request::Shutdown(reply)) => {
                    for w in waiting.drain(..) {
                        let _ = w.send(Err(RenderError::ShutDown));
                    }
                    let _ = reply.send(());
                    return false;
                }
                Some(Request::Lease(reply)) => match refuse {
                    Some(e) => {
                        let _ = reply.send(Err(e.clone()));
                    }
                    None => waiting.push(reply),
                },
            },
        }
    }
}
