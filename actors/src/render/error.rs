//! Why a render job failed. Every message names the template (or file) and the fix.

use std::path::PathBuf;
use std::time::Duration;

/// A render job failed, or the renderer could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    /// The channel's template setting cannot be understood.
    #[error("template setting {input:?} is not valid: {reason}; use \"default\", an absolute path, a file:// URL or an http(s):// URL")]
    TemplateSetting { input: String, reason: String },

    /// A `file://` template does not exist or cannot be read.
    #[error("template file {path} cannot be read: {reason}; create it or fix the channel's template path")]
    TemplateMissing { path: PathBuf, reason: String },

    /// An http(s) template answered with an error status.
    #[error("template {url} answered HTTP {status}; check that the URL is right and the server serves it")]
    TemplateHttpStatus { url: String, status: u16 },

    /// Chromium could not load the template at all (DNS, connection, file not found).
    #[error("template {url} could not be loaded: {reason}; check the URL and that it is reachable from this node")]
    TemplateUnreachable { url: String, reason: String },

    /// The template did not finish loading in time.
    #[error("template {url} did not finish loading within {after:?}; make it load faster (inline assets) or raise the render load timeout")]
    LoadTimeout { url: String, after: Duration },

    /// A script of the template threw before the page was ready.
    #[error("template {url} threw during load: {message}; fix the template's script")]
    PageThrew { url: String, message: String },

    /// The page stopped answering (an endless loop, a stuck renderer): its target was killed.
    #[error("template {url} hung {phase} (no answer within {after:?}); its page was killed; look for an endless loop in the template's scripts")]
    Hung { url: String, phase: String, after: Duration },

    /// The browser process died or was restarted while the job ran.
    #[error("the browser died while rendering {url}: {reason}; it is restarted automatically, the job can be retried")]
    BrowserCrashed { url: String, reason: String },

    /// Chromium could not be started.
    #[error("cannot start Chromium {executable}: {reason}; install chromium-headless-shell (Debian package) or fix the render executable path")]
    BrowserStart { executable: PathBuf, reason: String },

    /// An image given to the page is larger than the limit.
    #[error("{what} is {size} bytes, over the {limit}-byte limit; use a smaller image (the renderer passes artwork as a data URL)")]
    ImageTooLarge { what: String, size: u64, limit: u64 },

    /// An image given to the page cannot be used.
    #[error("{what} cannot be used: {reason}; give a PNG, JPEG, GIF, WebP or SVG image")]
    ImageUnusable { what: String, reason: String },

    /// The job's parameters are not renderable.
    #[error("render job field {field} is not valid: {reason}")]
    InvalidJob { field: &'static str, reason: String },

    /// A frame could not be captured or decoded.
    #[error("frame {frame} of template {url} could not be captured: {reason}")]
    Capture { url: String, frame: u64, reason: String },

    /// Chromium refused a DevTools command.
    #[error("Chromium refused {command} for template {url}: {reason}")]
    Protocol { url: String, command: &'static str, reason: String },

    /// The job was cancelled or its frame receiver was dropped.
    #[error("render of template {url} was cancelled (cancel token or frame receiver dropped)")]
    Cancelled { url: String },

    /// The renderer has been shut down.
    #[error("the renderer is shut down; start a new one")]
    ShutDown,
}

impl RenderError {
    /// A short stable name of the failure, for counting (metrics, status).
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::TemplateSetting { .. } => "template_setting",
            RenderError::TemplateMissing { .. } => "template_missing",
            RenderError::TemplateHttpStatus { .. } => "template_http_status",
            RenderError::TemplateUnreachable { .. } => "template_unreachable",
            RenderError::LoadTimeout { .. } => "load_timeout",
            RenderError::PageThrew { .. } => "page_threw",
            RenderError::Hung { .. } => "hung",
            RenderError::BrowserCrashed { .. } => "browser_crashed",
            RenderError::BrowserStart { .. } => "browser_start",
            RenderError::ImageTooLarge { .. } => "image_too_large",
            RenderError::ImageUnusable { .. } => "image_unusable",
            RenderError::InvalidJob { .. } => "invalid_job",
            RenderError::Capture { .. } => "capture",
            RenderError::Protocol { .. } => "protocol",
            RenderError::Cancelled { .. } => "cancelled",
            RenderError::ShutDown => "shut_down",
        }
    }

    /// Whether running the job again may succeed (the page or the browser was killed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RenderError::Hung { .. } | RenderError::BrowserCrashed { .. })
    }
}
