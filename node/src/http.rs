//! The node's HTTP API: now playing and play order per channel, channel status.
//! Handlers only message the channel actors; they never block.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use headend_actors::playout::actor::{actor_name, ChannelMsg};
use ractor::{ActorRef, RpcReplyPort};
use serde_json::json;
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
    #[error("the sync actor did not answer in time")]
    SyncUnavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::UnknownChannel(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::SyncUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoSync => StatusCode::NOT_FOUND,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The router. `channels` are the ids configured on this node.
pub fn router(channels: Vec<String>) -> Router {
    let list = channels.clone();
    Router::new()
        .route("/channels", get(move || async move { Json(json!({ "channels": list })) }))
        .route("/channels/{id}/now", get(now_playing))
        .route("/channels/{id}/playlist.m3u", get(playlist_m3u))
        .route("/channels/{id}/status", get(status))
        .route("/sync/status", get(sync_status))
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
