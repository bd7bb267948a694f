//! One job's page: its own browser context and begin-frame-controlled target, the injected
//! script, navigation and readiness, and DevTools calls bounded by the heartbeat.

use super::capture::FrameClock;
use super::error::RenderError;
use super::renderer::{BrowserSettings, RenderJob};
use super::script::{page_script, prepare_expression, START_EXPRESSION};
use super::supervisor::BrowserLease;
use super::template::Template;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::dom::Rgba;
use chromiumoxide::cdp::browser_protocol::emulation::{SetDefaultBackgroundColorOverrideParams, SetDeviceMetricsOverrideParams};
use chromiumoxide::cdp::browser_protocol::headless_experimental::{BeginFrameParams, BeginFrameReturns, ScreenshotParams, ScreenshotParamsFormat};
use chromiumoxide::cdp::browser_protocol::page::{AddScriptToEvaluateOnNewDocumentParams, EventLoadEventFired, NavigateParams};
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, CreateBrowserContextParams, CreateTargetParams, DisposeBrowserContextParams, TargetId};
use chromiumoxide::cdp::js_protocol::runtime::{EvaluateParams, EventExceptionThrown, ExceptionDetails, TerminateExecutionParams};
use chromiumoxide::error::CdpError;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::types::Command;
use chromiumoxide::{Browser, Page};
use futures::{FutureExt, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

/// A proxy that accepts nothing: jobs without network send every request there.
const DEAD_PROXY: &str = "http://127.0.0.1:9";
/// Bound of each clean-up call.
const CLEANUP_LIMIT: Duration = Duration::from_secs(2);

/// An open page, ready to draw frame 0. It holds its browser's turn (one job at a time draws
/// on a browser) until it is closed, and gives it back only after its target is gone.
pub(crate) struct PageSession {
    lease: BrowserLease,
    turn: Option<OwnedMutexGuard<FrameClock>>,
    page: Page,
    target: TargetId,
    context: BrowserContextId,
    /// The template, as named in errors.
    pub(crate) url: String,
    frame_timeout: Duration,
    cancel: CancellationToken,
    exceptions: EventStream<EventExceptionThrown>,
    /// The page has `<video>` elements: each frame waits for their seeks.
    videos: bool,
    /// The target was killed after a hung frame (its context is still to be disposed).
    killed: AtomicBool,
    closed: bool,
}

impl PageSession {
    /// Opens the job's page on the browser whose `turn` the job holds, loads the template and
    /// starts it (`headend:item` dispatched, images decoded, fonts loaded).
    pub(crate) async fn open(
        lease: BrowserLease,
        turn: OwnedMutexGuard<FrameClock>,
        job: &RenderJob,
        settings: &BrowserSettings,
        clock_origin_ms: u64,
        cancel: CancellationToken,
    ) -> Result<PageSession, RenderError> {
        let url = job.template.to_string();
        let setup = settings.frame_timeout.max(Duration::from_secs(5));
        let guard = Guard { died: &lease.died, cancel: &cancel, url: &url };

        let mut context = CreateBrowserContextParams::builder().dispose_on_detach(true);
        if !job.allow_network {
            let mut bypass = String::from("<-loopback>");
            if let Some(origin) = job.template.origin() {
                bypass.push(';');
                bypass.push_str(&origin);
            }
            context = context.proxy_server(DEAD_PROXY).proxy_bypass_list(bypass);
        }
        let context = guard.bound("creating the browser context", setup, lease.browser.create_browser_context(context.build())).await?;
        let dispose_now = |target: Option<TargetId>, context| dispose(lease.browser.clone(), target, context);

        let target = CreateTargetParams::builder()
            .url("about:blank")
            .width(job.width as i64)
            .height(job.height as i64)
            .browser_context_id(context.clone())
            .enable_begin_frame_control(true)
            .build()
            .expect("url is set");
        let page = match guard.bound("creating the page", setup, lease.browser.new_page(target)).await {
            Ok(page) => page,
            Err(e) => {
                dispose_now(None, context).await;
                return Err(e);
            }
        };
        let exceptions = match page.event_listener::<EventExceptionThrown>().await {
            Ok(stream) => stream,
            Err(e) => {
                dispose_now(Some(page.target_id().clone()), context).await;
                return Err(protocol(&url, "Runtime.exceptionThrown listener", e));
            }
        };
        let mut session = PageSession {
            target: page.target_id().clone(),
            lease,
            turn: Some(turn),
            page,
            context,
            url,
            frame_timeout: settings.frame_timeout,
            cancel,
            exceptions,
            videos: false,
            killed: AtomicBool::new(false),
            closed: false,
        };
        match session.load(job, settings, clock_origin_ms).await {
            Ok(()) => Ok(session),
            Err(e) => {
                session.close(matches!(e, RenderError::Hung { .. } | RenderError::LoadTimeout { .. })).await;
                Err(e)
            }
        }
    }

    async fn load(&mut self, job: &RenderJob, settings: &BrowserSettings, clock_origin_ms: u64) -> Result<(), RenderError> {
        let setup = settings.frame_timeout.max(Duration::from_secs(5));
        let metrics = SetDeviceMetricsOverrideParams::new(job.width as i64, job.height as i64, 1.0, false);
        self.call("Emulation.setDeviceMetricsOverride", setup, metrics).await?;
        if job.transparent {
            let clear = SetDefaultBackgroundColorOverrideParams::builder().color(Rgba { r: 0, g: 0, b: 0, a: Some(0.0) }).build();
            self.call("Emulation.setDefaultBackgroundColorOverride", setup, clear).await?;
        }
        let script = AddScriptToEvaluateOnNewDocumentParams::new(page_script(&job.data, job.fps, clock_origin_ms));
        self.call("Page.addScriptToEvaluateOnNewDocument", setup, script).await?;

        let mut loaded = self.page.event_listener::<EventLoadEventFired>().await.map_err(|e| protocol(&self.url, "Page.loadEventFired listener", e))?;
        let nav = self.call("Page.navigate", settings.load_timeout, NavigateParams::new(job.template.navigation_url())).await;
        let nav = match nav {
            Err(RenderError::Hung { .. }) => return Err(RenderError::LoadTimeout { url: self.url.clone(), after: settings.load_timeout }),
            other => other?,
        };
        if let Some(reason) = nav.error_text.filter(|t| !t.is_empty()) {
            return Err(match &job.template {
                Template::File(path) if reason.contains("FILE_NOT_FOUND") || reason.contains("ACCESS_DENIED") => {
                    RenderError::TemplateMissing { path: path.clone(), reason }
                }
                _ => RenderError::TemplateUnreachable { url: self.url.clone(), reason },
            });
        }
        let guard = Guard { died: &self.lease.died, cancel: &self.cancel, url: &self.url };
        let wait_load = async {
            tokio::select! {
                biased;
                Some(ex) = self.exceptions.next() => Err(threw(&self.url, &ex.exception_details)),
                _ = loaded.next() => Ok(()),
            }
        };
        match guard.bound("loading", settings.load_timeout, async { Ok::<_, CdpError>(wait_load.await) }).await {
            Ok(inner) => inner?,
            Err(RenderError::Hung { .. }) => return Err(RenderError::LoadTimeout { url: self.url.clone(), after: settings.load_timeout }),
            Err(e) => return Err(e),
        }
        self.check_no_exception()?;

        let status = self.evaluate("(performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0", false, setup).await?;
        if let Some(status) = status.as_u64().filter(|s| *s >= 400) {
            return Err(RenderError::TemplateHttpStatus { url: self.url.clone(), status: status as u16 });
        }
        let started = self.evaluate(START_EXPRESSION, true, settings.load_timeout).await.map_err(|e| match e {
            RenderError::Hung { url, after, .. } => RenderError::Hung { url, phase: "while starting (headend:item, images, fonts)".into(), after },
            other => other,
        })?;
        self.videos = started.get("videos").and_then(|v| v.as_bool()).unwrap_or(false);
        self.check_no_exception()
    }

    /// Gets the page ready to draw frame `k`: seeks its videos to the frame's time.
    pub(crate) async fn prepare(&self, k: u64) -> Result<(), RenderError> {
        if !self.videos {
            return Ok(());
        }
        self.evaluate(&prepare_expression(k), true, self.frame_timeout).await.map_err(|e| match e {
            RenderError::Hung { url, after, .. } => RenderError::Hung { url, phase: format!("seeking videos for frame {k}"), after },
            other => other,
        })?;
        Ok(())
    }

    /// Fails with the first exception the page reported so far.
    fn check_no_exception(&mut self) -> Result<(), RenderError> {
        match self.exceptions.next().now_or_never() {
            Some(Some(ex)) => Err(threw(&self.url, &ex.exception_details)),
            _ => Ok(()),
        }
    }

    async fn evaluate(&self, expression: &str, await_promise: bool, limit: Duration) -> Result<serde_json::Value, RenderError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(await_promise)
            .return_by_value(true)
            .build()
            .expect("expression is set");
        let res = self.call("Runtime.evaluate", limit, params).await?;
        if let Some(ex) = res.exception_details {
            return Err(threw(&self.url, &ex));
        }
        Ok(res.result.value.unwrap_or(serde_json::Value::Null))
    }

    /// Base time (CLOCK_MONOTONIC ms) of this job's frame 0: `now_ms`, or after every frame
    /// time the browser has issued.
    pub(crate) fn frame_base(&self, now_ms: f64) -> f64 {
        self.turn.as_ref().expect("an open session holds its turn").job_base(now_ms)
    }

    /// Draws the frame at `frame_time_ms` (CLOCK_MONOTONIC ms), with a PNG screenshot if asked.
    /// Retries while Chromium answers that another frame is pending.
    pub(crate) async fn begin_frame(&mut self, frame_time_ms: f64, interval_ms: f64, screenshot: bool) -> Result<BeginFrameReturns, RenderError> {
        self.turn.as_mut().expect("an open session holds its turn").issued(frame_time_ms);
        let deadline = tokio::time::Instant::now() + self.frame_timeout;
        loop {
            let mut params = BeginFrameParams::builder().frame_time_ticks(frame_time_ms).interval(interval_ms);
            if screenshot {
                params = params.screenshot(ScreenshotParams::builder().format(ScreenshotParamsFormat::Png).optimize_for_speed(true).build());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.call("HeadlessExperimental.beginFrame", left, params.build()).await {
                Err(RenderError::Protocol { reason, .. }) if reason.contains("Another frame is pending") => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(RenderError::Hung { url, after, .. }) => {
                    self.kill_target().await;
                    return Err(RenderError::Hung { url, phase: "drawing a frame".into(), after: self.frame_timeout.max(after) });
                }
                other => return other,
            }
        }
    }

    /// One DevTools call on the page, bounded by `limit`, the browser's death and the job's cancel.
    async fn call<C: Command>(&self, name: &'static str, limit: Duration, cmd: C) -> Result<C::Response, RenderError> {
        let guard = Guard { died: &self.lease.died, cancel: &self.cancel, url: &self.url };
        guard.bound(name, limit, async { self.page.execute(cmd).await.map(|r| r.result) }).await
    }

    /// Stops a hung page: its script is terminated (served off the renderer's main thread,
    /// so it works on an endless loop) and its target closed, so the renderer process goes.
    async fn kill_target(&self) {
        if self.killed.swap(true, Ordering::SeqCst) || self.lease.died.is_cancelled() {
            return;
        }
        let _ = tokio::time::timeout(CLEANUP_LIMIT, self.page.execute(TerminateExecutionParams::default())).await;
        let _ = tokio::time::timeout(CLEANUP_LIMIT, self.lease.browser.execute(CloseTargetParams::new(self.target.clone()))).await;
    }

    /// Closes the page and its context, then gives the browser's turn back.
    pub(crate) async fn close(mut self, hung: bool) {
        self.closed = true;
        if self.lease.died.is_cancelled() {
            return;
        }
        if hung {
            self.kill_target().await;
        }
        let target = (!self.killed.load(Ordering::SeqCst)).then(|| self.target.clone());
        dispose(self.lease.browser.clone(), target, self.context.clone()).await;
        drop(self.turn.take());
    }
}

impl Drop for PageSession {
    fn drop(&mut self) {
        if self.closed || self.lease.died.is_cancelled() {
            return;
        }
        // The render future was dropped: close the page in the background, and give the
        // turn back only then.
        let (browser, turn, context) = (self.lease.browser.clone(), self.turn.take(), self.context.clone());
        let target = (!self.killed.load(Ordering::SeqCst)).then(|| self.target.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                dispose(browser, target, context).await;
                drop(turn);
            });
        }
    }
}

async fn dispose(browser: Arc<Browser>, target: Option<TargetId>, context: BrowserContextId) {
    if let Some(target) = target {
        let _ = tokio::time::timeout(CLEANUP_LIMIT, browser.execute(CloseTargetParams::new(target))).await;
    }
    let _ = tokio::time::timeout(CLEANUP_LIMIT, browser.execute(DisposeBrowserContextParams::new(context))).await;
}

/// Races a DevTools future against its time limit, the browser's death and the job's cancel.
struct Guard<'a> {
    died: &'a CancellationToken,
    cancel: &'a CancellationToken,
    url: &'a str,
}

impl Guard<'_> {
    async fn bound<T>(&self, what: &'static str, limit: Duration, fut: impl std::future::Future<Output = Result<T, CdpError>>) -> Result<T, RenderError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(RenderError::Cancelled { url: self.url.to_string() }),
            _ = self.died.cancelled() => Err(RenderError::BrowserCrashed { url: self.url.to_string(), reason: format!("the browser process exited during {what}") }),
            res = tokio::time::timeout(limit, fut) => match res {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(protocol(self.url, what, e)),
                Err(_) => Err(RenderError::Hung { url: self.url.to_string(), phase: format!("during {what}"), after: limit }),
            },
        }
    }
}

fn protocol(url: &str, command: &'static str, e: CdpError) -> RenderError {
    let reason = match e {
        CdpError::Chrome(err) => err.message,
        other => other.to_string(),
    };
    RenderError::Protocol { url: url.to_string(), command, reason }
}

fn threw(url: &str, ex: &ExceptionDetails) -> RenderError {
    let what = ex
        .exception
        .as_ref()
        .and_then(|o| o.description.clone())
        .map(|d| d.lines().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| ex.text.clone());
    let at = ex.url.as_deref().filter(|u| !u.is_empty() && !u.starts_with("data:")).unwrap_or("the page");
    RenderError::PageThrew { url: url.to_string(), message: format!("{what} (at {at} line {})", ex.line_number + 1) }
}
