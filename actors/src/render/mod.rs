//! Rendering of channel HTML pages into frames in headless Chromium.
//!
//! One supervised Chromium (`chromium-headless-shell`) per node renders every job; each job
//! gets its own browser context (cookies, storage and proxy of its own) and one page (target)
//! created with begin-frame control, so frames are produced only when the renderer asks for
//! them, at frame times it chooses (`HeadlessExperimental.beginFrame`). A page therefore
//! renders as fast as Chromium can draw it, not in real time, and CSS animations, timers,
//! `Date.now()` and `performance.now()` all follow the virtual frame clock (`shim.js`).
//!
//! - [`Renderer`] (`renderer.rs`): the cheap handle jobs use; retries a hung or crashed job once.
//! - `supervisor.rs`: the task that owns the browser process, restarts it when it dies or
//!   stops answering its heartbeat.
//! - `process.rs`: launching Chromium and reading its DevTools address.
//! - `page.rs`: one job's page: context, injection, navigation, readiness, CDP calls with a
//!   heartbeat bound.
//! - `capture.rs`: the frame loop (damage probe, screenshot, repeat).
//! - `decode.rs`: PNG screenshots to [`crate::frame::RgbaFrame`] on a blocking thread.
//! - `template.rs`, `page_data.rs`, `script.rs`: what is rendered and the data the page gets.

mod capture;
mod decode;
mod error;
mod page;
mod page_data;
mod process;
mod renderer;
mod script;
mod supervisor;
mod template;

pub use error::RenderError;
pub use page_data::{PageData, MAX_IMAGE_BYTES};
pub use renderer::{BrowserSettings, BrowserStatus, RenderJob, RenderStats, Renderer};
pub use template::{template_fingerprint, Template, DEFAULT_TEMPLATE_HTML};
