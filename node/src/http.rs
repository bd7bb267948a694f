//! The node's HTTP API: now playing and play order per channel, channel status.
//! Handlers only message the channel actors; they never block.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use headend_actors::playout::actor::{actor_name, ChannelMsg};
use headend_actors::jobs::pool::{self, PoolMsg};
use headend_actors::jobs::status::{JobControl, JobState};
use headend_actors::recorder::{RecorderMsg, ACTOR_NAME as RECORDER};
use ractor::{ActorRef, RpcReplyPort};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a request failed; mapped to a status here, in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no channel {0:?} on this node (GET /channels lists them)")]
    UnknownChannel(String),
    #[error("channel {0:?} did not answer in time; it may be restarting")]
    Unavailable(String),
    #[error("this node syncs no media (no channel has a [channels.sync] section)")]
    NoSync,
    #[error("this node records nothing (recordings are made in a cluster, of the groups a node backs up)")]
    NoRecorder,
    #[error("the recorder did not answer in time")]
    RecorderUnavailable,
    #[error("no recorded segment {0:?} here (GET /recordings lists them)")]
    NoRecording(String),
    #[error("no item file {0:?} here (GET /items/<channel> lists a rendered channel's items on the node that builds them)")]
    NoItem(String),
    #[error("no HLS file {0:?} here (this node serves a channel as HLS while it is its main; GET /hls/<channel>/index.m3u8)")]
    NoHls(String),
    #[error("the sync actor did not answer in time")]
    SyncUnavailable,
    #[error("this node encodes nothing (no channel has a [channels.render] section)")]
    NoEncode,
    #[error("the encode pool did not answer in time")]
    EncodeUnavailable,
    #[error("no encode job {0:?} (GET /encode/status lists them)")]
    UnknownJob(String),
    #[error("encode job {0:?} has no thumbnail yet")]
    NoThumbnail(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::UnknownChannel(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::SyncUnavailable | ApiError::RecorderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoSync | ApiError::NoRecorder | ApiError::NoItem(_) | ApiError::NoHls(_) | ApiError::NoRecording(_) | ApiError::NoEncode | ApiError::UnknownJob(_) | ApiError::NoThumbnail(_) => StatusCode::NOT_FOUND,
            ApiError::EncodeUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The router. `channels` are the ids configured on this node; under `data_dir` are the
/// HLS output (`hls/`) and the recordings (`recordings/`) it serves.
pub fn router(channels: Vec<String>, data_dir: PathBuf) -> Router {
    let list = channels.clone();
    let hls_dir = data_dir.join("hls");
    let recordings_dir = data_dir.join("recordings");
    let (items_root, items_file_root) = (data_dir.clone(), data_dir.clone());
    Router::new()
        .route("/items/{id}", get(move |p| items_list(items_root.clone(), p)))
        .route("/items/{id}/{file}", get(move |p| item_file(items_file_root.clone(), p)))
        .route("/hls/{id}/{file}", get(move |p| hls_file(hls_dir.clone(), p)))
        .route("/recordings/{id}/{file}", get(move |p| recording_file(recordings_dir.clone(), p)))
        .route("/channels", get(move || async move { Json(json!({ "channels": list })) }))
        .route("/channels/{id}/now", get(now_playing))
        .route("/channels/{id}/playlist.m3u", get(playlist_m3u))
        .route("/channels/{id}/status", get(status))
        .route("/sync/status", get(sync_status))
        .route("/recordings", get(recordings))
        .route("/recordings/status", get(recorder_status))
        .route("/encode/status", get(encode_status))
        .route("/encode/jobs/{id}/start", post(encode_start))
        .route("/encode/jobs/{id}/cancel", post(encode_cancel))
        .route("/encode/thumbnails/{file}", get(encode_thumbnail))
        .route("/healthz", get(|| async { "ok\n" }))
}

fn channel(id: &str) -> Result<ActorRef<ChannelMsg>, ApiError> {
    ractor::registry::where_is(actor_name(id)).map(ActorRef::from).ok_or_else(|| ApiError::UnknownChannel(id.into()))
}

async fn ask<T: Send + 'static>(id: &str, msg: impl FnOnce(RpcReplyPort<T>) -> ChannelMsg) -> Result<T, ApiError> {
    let actor = channel(id)?;
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        _ => Err(ApiError::Unavailable(id.into())),
    }
}

async fn now_playing(Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(match ask(&id, ChannelMsg::NowPlaying).await? {
        Some(now) => Json(now).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": format!("channel {id:?} is not on air yet") })))
            .into_response(),
    })
}

async fn status(Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(ask(&id, ChannelMsg::Status).await?).into_response())
}

/// Extended M3U with one line per item in play order.
async fn playlist_m3u(Path(id): Path<String>) -> Result<Response, ApiError> {
    let entries = ask(&id, ChannelMsg::Playlist).await?;
    let mut body = String::from("#EXTM3U\n");
    for e in entries {
        let secs = e.duration_s.map_or(-1, |d| d.round() as i64);
        let name = if e.artist.is_empty() { e.title.clone() } else { format!("{} - {}", e.artist, e.title) };
        // M3U is line-based: a newline in metadata must not start a new entry.
        let name = name.replace(['\r', '\n'], " ");
        body.push_str(&format!("#EXTINF:{secs},{name}\n{}\n", e.path.display()));
    }
    Ok(([(header::CONTENT_TYPE, "audio/x-mpegurl")], body).into_response())
}

/// Last runs, counts, bytes, errors and whether the store is unreachable (degraded).
async fn sync_status() -> Result<Response, ApiError> {
    use headend_actors::sync::actor::{SyncMsg, ACTOR_NAME};
    let actor: ActorRef<SyncMsg> = ractor::registry::where_is(ACTOR_NAME).map(ActorRef::from).ok_or(ApiError::NoSync)?;
    match actor.call(SyncMsg::Status, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(status)) => Ok(Json(status).into_response()),
        _ => Err(ApiError::SyncUnavailable),
    }
}

/// A channel's HLS playlist or segment. Only names the segmenter writes are served, so a
/// request never reaches outside the channel's folder.
async fn hls_file(dir: PathBuf, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let id_ok = !id.is_empty() && id.len() <= 63 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let (content_type, cache) = if file == headend_actors::hls::PLAYLIST {
        ("application/vnd.apple.mpegurl", "no-cache")
    } else if file.strip_suffix(".ts").is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit())) {
        ("video/mp2t", "max-age=60")
    } else {
        return Err(ApiError::NoHls(format!("{id}/{file}")));
    };
    if !id_ok {
        return Err(ApiError::NoHls(format!("{id}/{file}")));
    }
    match tokio::fs::read(dir.join(&id).join(&file)).await {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], bytes).into_response()),
        Err(_) => Err(ApiError::NoHls(format!("{id}/{file}"))),
    }
}

fn channel_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A rendered channel's items on this node, and whether builds of it are pending (for
/// the peers that mirror them; see `items.rs`).
async fn items_list(data_dir: PathBuf, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !channel_id_ok(&id) {
        return Err(ApiError::NoItem(id));
    }
    let dir = crate::spec::items_dir(&data_dir, &id);
    if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
        return Err(ApiError::NoItem(id));
    }
    let building = match ask_pool(PoolMsg::Status).await {
        Ok(s) => s.jobs.iter().any(|j| j.channel == id && matches!(j.state, JobState::Queued | JobState::Running)),
        Err(_) => true, // unknown: never let a peer delete on our account
    };
    let items = tokio::task::spawn_blocking(move || crate::items::list(&dir)).await.unwrap_or_default();
    Ok(Json(crate::items::ItemList { channel: id, items, building }).into_response())
}

/// One item or sidecar, streamed (items run to hundreds of megabytes).
async fn item_file(data_dir: PathBuf, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    if !channel_id_ok(&id) || !crate::items::servable(&file) {
        return Err(ApiError::NoItem(format!("{id}/{file}")));
    }
    let path = crate::spec::items_dir(&data_dir, &id).join(&file);
    let f = tokio::fs::File::open(&path).await.map_err(|_| ApiError::NoItem(format!("{id}/{file}")))?;
    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let kind = if file.ends_with(".ts") { "video/mp2t" } else { "application/json" };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f));
    Ok(([(header::CONTENT_TYPE, kind.to_string()), (header::CONTENT_LENGTH, len.to_string())], body).into_response())
}

/// A complete recorded segment (`<start_ms>.ts`; a segment being written is `.part` and
/// never matches), for a peer that fills in with it.
async fn recording_file(dir: PathBuf, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let id_ok = channel_id_ok(&id);
    let file_ok = file.strip_suffix(".ts").is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()));
    if !id_ok || !file_ok {
        return Err(ApiError::NoRecording(format!("{id}/{file}")));
    }
    match tokio::fs::read(dir.join(&id).join(&file)).await {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, "video/mp2t")], bytes).into_response()),
        Err(_) => Err(ApiError::NoRecording(format!("{id}/{file}"))),
    }
}

async fn ask_recorder<T: Send + 'static>(msg: impl FnOnce(RpcReplyPort<T>) -> RecorderMsg) -> Result<T, ApiError> {
    let actor: ActorRef<RecorderMsg> = ractor::registry::where_is(RECORDER).map(ActorRef::from).ok_or(ApiError::NoRecorder)?;
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        _ => Err(ApiError::RecorderUnavailable),
    }
}

/// The recorded segments on this node (groups it backs up), oldest first per channel.
async fn recordings() -> Result<Response, ApiError> {
    Ok(Json(json!({ "segments": ask_recorder(RecorderMsg::List).await? })).into_response())
}

async fn recorder_status() -> Result<Response, ApiError> {
    Ok(Json(ask_recorder(RecorderMsg::Status).await?).into_response())
}

fn encode_pool() -> Result<ActorRef<PoolMsg>, ApiError> {
    ractor::registry::where_is(pool::ACTOR_NAME).map(ActorRef::from).ok_or(ApiError::NoEncode)
}

async fn ask_pool<T: Send + 'static>(msg: impl FnOnce(RpcReplyPort<T>) -> PoolMsg) -> Result<T, ApiError> {
    match encode_pool()?.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        _ => Err(ApiError::EncodeUnavailable),
    }
}

/// Every job: media id, title, artist, state, progress, output file, thumbnail URL, reason.
async fn encode_status() -> Result<Response, ApiError> {
    Ok(Json(ask_pool(PoolMsg::Status).await?).into_response())
}

/// Builds (or rebuilds) a job now.
async fn encode_start(Path(id): Path<String>) -> Result<Response, ApiError> {
    control(&id, ask_pool(|reply| PoolMsg::Start { id: id.clone(), reply }).await?)
}

/// Stops a running job (its partial output is removed) or drops a queued one.
async fn encode_cancel(Path(id): Path<String>) -> Result<Response, ApiError> {
    control(&id, ask_pool(|reply| PoolMsg::Cancel { id: id.clone(), reply }).await?)
}

fn control(id: &str, answer: JobControl) -> Result<Response, ApiError> {
    let status = match answer {
        JobControl::Unknown => return Err(ApiError::UnknownJob(id.into())),
        JobControl::Started => StatusCode::ACCEPTED,
        JobControl::AlreadyActive | JobControl::NotActive => StatusCode::CONFLICT,
        JobControl::Cancelled => StatusCode::OK,
    };
    Ok((status, Json(json!({ "id": id, "result": answer }))).into_response())
}

/// `/encode/thumbnails/<id>.png`.
async fn encode_thumbnail(Path(file): Path<String>) -> Result<Response, ApiError> {
    let id = file.strip_suffix(".png").unwrap_or(&file).to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::UnknownJob(id));
    }
    let pool = encode_pool()?;
    let path = pool::thumbnail(&pool, &id).await.ok_or_else(|| ApiError::NoThumbnail(id.clone()))?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| ApiError::NoThumbnail(id))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}
