//! One build: a media file of a rendered channel becomes a TS item.
//!
//! 1. read the media's metadata (tags, sidecar, artwork) and measure its audio (exact
//!    duration, loudness) on a blocking thread;
//! 2. render the channel's page for exactly round(duration x fps) frames (audio media),
//!    or transcode the video (video media), or no picture (audio-only channels);
//! 3. encode frames and audio into the item, written atomically with its thumbnail.
//!
//! Render and encode run at once, joined by a bounded channel of frames, so memory stays
//! flat whatever the item's length.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::scan::{MediaFile, MediaKind};
use crate::encode::{self, EncodeError, EncodeProfile, ItemEncodeJob, VideoInput};
use crate::render::{PageData, RenderError, RenderJob, Renderer, Template};
use crate::sync::metadata::{read_media_info, MetadataError};

/// Frames buffered between the renderer and the encoder.
const FRAME_QUEUE: usize = 8;

/// Everything about a channel that its items are made from.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelBuild {
    pub channel: String,
    /// Shown on the page.
    pub name: String,
    pub media_dir: PathBuf,
    pub items_dir: PathBuf,
    pub template: Template,
    pub allow_network: bool,
    /// The channel's logo, shown by the page when set.
    pub logo: Option<PathBuf>,
    pub profile: EncodeProfile,
}

impl ChannelBuild {
    /// The part of every item fingerprint that comes from the channel: format, page
    /// settings and the template's own fingerprint.
    pub fn format_key(&self, template_fingerprint: &str) -> String {
        format!(
            "{:?}|net={}|name={}|logo={:?}|template={}",
            self.profile, self.allow_network, self.name, self.logo, template_fingerprint
        )
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub output: PathBuf,
    pub thumbnail: Option<PathBuf>,
    pub title: String,
    pub artist: String,
}

/// Why a build failed. Each names the media or template and the fix.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Media(#[from] MetadataError),
    #[error("{0}")]
    Render(RenderError),
    #[error("{0}")]
    Encode(EncodeError),
    #[error("the build was cancelled")]
    Cancelled,
    #[error("build of {}: a worker thread failed: {reason}", media.display())]
    Worker { media: PathBuf, reason: String },
}

impl BuildError {
    /// A short stable class for counting (`render:hung`, `encode:corrupt_audio`, ...).
    pub fn kind(&self) -> String {
        match self {
            BuildError::Media(_) => "media_refused".into(),
            BuildError::Render(e) => format!("render:{}", e.kind()),
            BuildError::Encode(e) => format!("encode:{}", e.kind()),
            BuildError::Cancelled => "cancelled".into(),
            BuildError::Worker { .. } => "worker".into(),
        }
    }
}

/// The template's fingerprint: its content (default, file, and for http(s) the body the
/// server returns now), so an edited template rebuilds the channel's items.
pub async fn template_fingerprint(build: &ChannelBuild) -> Result<String, String> {
    match &build.template {
        Template::Url(url) => {
            let body = fetch(url).await?;
            let mut h = Sha256::new();
            h.update(url.as_bytes());
            h.update(&body);
            Ok(super::scan::hex(&h.finalize()))
        }
        t => {
            let t = t.clone();
            tokio::task::spawn_blocking(move || crate::render::template_fingerprint(&t).map_err(|e| e.to_string()))
                .await
                .map_err(|e| e.to_string())?
        }
    }
}

/// GET an http(s) template.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| format!("template {url} is unreachable: {e}; fix: check the URL and that the server is up"))?;
    if !resp.status().is_success() {
        return Err(format!("template {url} answered HTTP {}; fix: correct render.template or publish the page", resp.status()));
    }
    resp.bytes().await.map(|b| b.to_vec()).map_err(|e| format!("template {url}: reading the page failed: {e}"))
}

/// Builds `media`'s item into `build.items_dir` (atomically, with a `.png` thumbnail).
/// `progress` gets the fraction done (0..=1) from the encoder's thread.
pub async fn build(
    renderer: &Renderer,
    build: &ChannelBuild,
    media: &MediaFile,
    progress: impl FnMut(f32) + Send + 'static,
    cancel: CancellationToken,
) -> Result<Built, BuildError> {
    let output = build.items_dir.join(media.item_name());
    let sidecar = output.with_extension("json");

    // 1. Metadata, the audio's exact length and the page's data, on a blocking thread;
    //    the item's now-playing sidecar is in place before the item itself appears.
    let prepared = {
        let (build, media, sidecar) = (build.clone(), media.clone(), sidecar.clone());
        blocking(&media.path.clone(), move || {
            let mut info = read_media_info(&media.path).map_err(BuildError::Media)?;
            if info.media_id.is_empty() {
                info.media_id = media.rel.clone();
            }
            let measure = encode::measure_audio(&media.path, &build.profile.audio).map_err(BuildError::Encode)?;
            let page = match (&build.profile.video, media.kind) {
                (Some(_), MediaKind::Audio) => Some(page_data(&build, &info)?),
                _ => None,
            };
            std::fs::create_dir_all(&build.items_dir).map_err(|e| io_error("create items folder", &build.items_dir, e))?;
            write_sidecar(&sidecar, &info).map_err(|e| io_error("write item sidecar", &sidecar, e))?;
            Ok((info, measure, page))
        })
        .await?
    };
    let (info, measure, page) = prepared;
    let result = if cancel.is_cancelled() {
        Err(BuildError::Cancelled)
    } else {
        encode_with_picture(renderer, build, media, &info, measure, page, progress, cancel).await
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&sidecar);
    }
    result
}

/// `<item>.json`: what playout shows as now playing (title, artist, album, genre, media id).
fn write_sidecar(path: &Path, info: &crate::sync::metadata::MediaInfo) -> std::io::Result<()> {
    let meta = serde_json::json!({
        "title": info.title, "artist": info.artist, "album": info.album, "genre": info.genre, "media_id": info.media_id,
    });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&meta).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

/// Steps 2 and 3: the picture source (page frames for audio media, the video itself, or
/// none) and the encoder, run at once.
#[allow(clippy::too_many_arguments)]
async fn encode_with_picture(
    renderer: &Renderer,
    build: &ChannelBuild,
    media: &MediaFile,
    info: &crate::sync::metadata::MediaInfo,
    measure: encode::AudioMeasure,
    page: Option<PageData>,
    progress: impl FnMut(f32) + Send + 'static,
    cancel: CancellationToken,
) -> Result<Built, BuildError> {
    let output = build.items_dir.join(media.item_name());
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = {
        let (cancel, stop) = (cancel.clone(), stop.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut render = None;
    let video = match (&build.profile.video, media.kind, page) {
        (None, _, _) => VideoInput::None,
        (Some(v), MediaKind::Audio, Some(data)) => {
            let frames = measure.video_frames(v.fps);
            let mut job = RenderJob::new(build.template.clone(), data, v.width, v.height, v.fps, frames);
            job.allow_network = build.allow_network;
            let (tx, rx) = mpsc::channel(FRAME_QUEUE);
            render = Some((job, tx));
            VideoInput::Frames { rx, frames }
        }
        (Some(_), _, _) => VideoInput::Transcode { path: media.path.clone(), overlay: None },
    };
    let thumbnail = output.with_extension("png");
    let job = ItemEncodeJob::new(build.profile.clone(), media.path.clone(), video, output, Some(thumbnail), &info.title, &info.artist)
        .with_measure(measure);
    let encoding = {
        let stop = stop.clone();
        let mut progress = progress;
        tokio::task::spawn_blocking(move || encode::encode_item(job, &mut progress, &stop))
    };
    let rendered = match render {
        Some((job, tx)) => Some(renderer.render(job, tx, cancel.child_token()).await),
        None => None,
    };
    if let Some(Err(e)) = &rendered {
        if !matches!(e, RenderError::Cancelled { .. }) {
            stop.store(true, Ordering::SeqCst); // the encoder is waiting for frames that will not come
        }
    }
    let encoded = encoding.await;
    bridge.abort();
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    match rendered {
        Some(Err(e)) => return Err(BuildError::Render(e)),
        Some(Ok(stats)) => tracing::debug!(media = %media.rel, captured = stats.captured, repeated = stats.repeated, "rendered"),
        None => {}
    }
    let item = match encoded {
        Ok(Ok(item)) => item,
        Ok(Err(EncodeError::Cancelled)) => return Err(BuildError::Cancelled),
        Ok(Err(e)) => return Err(BuildError::Encode(e)),
        Err(e) => return Err(BuildError::Worker { media: media.path.clone(), reason: e.to_string() }),
    };
    Ok(Built { output: item.path, thumbnail: item.thumbnail, title: info.title.clone(), artist: info.artist.clone() })
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> BuildError {
    BuildError::Encode(EncodeError::Io { op, path: path.to_path_buf(), source })
}

fn page_data(build: &ChannelBuild, info: &crate::sync::metadata::MediaInfo) -> Result<PageData, BuildError> {
    let image = |p: &Path| PageData::artwork_from_file(p).map_err(BuildError::Render);
    Ok(PageData {
        title: info.title.clone(),
        artist: info.artist.clone(),
        album: info.album.clone(),
        genre: info.genre.clone(),
        duration_ms: info.duration_ms,
        artwork: info.artwork.as_deref().map(image).transpose()?,
        channel: build.name.clone(),
        logo: build.logo.as_deref().map(image).transpose()?,
        media_id: info.media_id.clone(),
    })
}

/// Runs blocking work; a panic becomes a `Worker` error naming the media.
async fn blocking<T: Send + 'static>(media: &Path, f: impl FnOnce() -> Result<T, BuildError> + Send + 'static) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BuildError::Worker { media: media.to_path_buf(), reason: e.to_string() })?
}
