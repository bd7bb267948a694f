//! The frame loop: frame `k` is drawn at `base + k * 1000 / fps` ms (Chromium's monotonic
//! clock), so animations advance exactly one frame interval per output frame.
//!
//! Frame times are not private to a target: measured on Chromium 156, a target's animation
//! time jumps to the latest frame time issued to any live target of the browser, and a
//! target whose frame times fall behind draws nothing new (no damage). So one job at a time
//! draws on a browser, and its base comes from the browser's [`FrameClock`], after every
//! frame time issued before.
//!
//! A screenshot makes Chromium report damage whatever changed, so each frame is first drawn
//! with a plain `beginFrame` (about 1 ms); only a damaged frame is drawn again, at the same
//! frame time, with a PNG screenshot (same time: same picture; tens of ms at 720p, mostly
//! PNG encoding). A screenshot identical to the previous one is sent as `Repeat`.
//! (Capturing changing pages directly, without the probe, saves about 1 ms per frame but
//! costs extra screenshots to notice that a page stopped changing: measured slower.)

use super::decode::Shot;
use super::error::RenderError;
use super::page::PageSession;
use nix::time::{clock_gettime, ClockId};
use tokio::sync::mpsc;

/// A first frame can come back without its screenshot while the page's first compositor
/// frame is not ready; it is asked again at the same frame time.
const SCREENSHOT_ATTEMPTS: u32 = 50;

/// Gap between the last frame of a job and the first of the next one.
const GAP_MS: f64 = 1000.0;

/// The frame times a browser has issued: the next job starts after all of them.
#[derive(Debug, Default)]
pub(crate) struct FrameClock {
    last_ms: Option<f64>,
}

impl FrameClock {
    /// Base of a new job: now, or later than every frame time issued so far.
    pub(crate) fn job_base(&self, now_ms: f64) -> f64 {
        match self.last_ms {
            Some(last) => now_ms.max(last + GAP_MS),
            None => now_ms,
        }
    }

    /// Records an issued frame time.
    pub(crate) fn issued(&mut self, t_ms: f64) {
        self.last_ms = Some(self.last_ms.map_or(t_ms, |last| last.max(t_ms)));
    }
}

/// Draws `frames` frames and hands frames `skip..` to the decoder.
pub(crate) async fn run(session: &mut PageSession, fps: u32, frames: u64, skip: u64, shots: &mpsc::Sender<Shot>) -> Result<(), RenderError> {
    let base = session.frame_base(monotonic_ms(&session.url)?);
    let interval = 1000.0 / f64::from(fps);
    let mut previous: Option<String> = None;
    for k in 0..frames {
        let t = base + k as f64 * 1000.0 / f64::from(fps);
        session.prepare(k).await?;
        let damaged = k == 0 || session.begin_frame(t, interval, false).await?.has_damage;
        let shot = if damaged {
            let png = screenshot(session, t, interval, k).await?;
            if previous.as_deref() == Some(png.as_str()) {
                Shot::Repeat
            } else {
                previous = Some(png.clone());
                Shot::New(png)
            }
        } else {
            Shot::Repeat
        };
        if k >= skip && shots.send(shot).await.is_err() {
            // The decoder stopped; it tells why.
            return Ok(());
        }
    }
    Ok(())
}

async fn screenshot(session: &mut PageSession, t: f64, interval: f64, frame: u64) -> Result<String, RenderError> {
    for _ in 0..SCREENSHOT_ATTEMPTS {
        if let Some(data) = session.begin_frame(t, interval, true).await?.screenshot_data {
            return Ok(data.into());
        }
    }
    Err(RenderError::Capture {
        url: session.url.clone(),
        frame,
        reason: format!("Chromium drew the frame {SCREENSHOT_ATTEMPTS} times without a screenshot"),
    })
}

/// Now on CLOCK_MONOTONIC in ms: the clock of Chromium's frame times (TimeTicks) on Linux.
pub(crate) fn monotonic_ms(url: &str) -> Result<f64, RenderError> {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map_err(|e| RenderError::Capture { url: url.to_string(), frame: 0, reason: format!("reading CLOCK_MONOTONIC: {e}") })?;
    Ok(now.tv_sec() as f64 * 1000.0 + now.tv_nsec() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_start_after_every_issued_frame() {
        let mut clock = FrameClock::default();
        assert_eq!(clock.job_base(5_000.0), 5_000.0);
        for k in 0..100 {
            clock.issued(5_000.0 + f64::from(k) * 40.0);
        }
        // The job ran ahead of real time: the next one starts after its last frame.
        assert_eq!(clock.job_base(5_200.0), 5_000.0 + 99.0 * 40.0 + GAP_MS);
        // Real time is later still: now.
        assert_eq!(clock.job_base(20_000.0), 20_000.0);
        clock.issued(100.0);
        assert_eq!(clock.job_base(0.0), 5_000.0 + 99.0 * 40.0 + GAP_MS, "never backwards");
    }
}
