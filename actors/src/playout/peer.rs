//! A peer's recordings of a channel as filler: the main keeps copies of the newest
//! complete segments its backup recorded of the channel's output (`GET /recordings` and
//! `GET /recordings/<channel>/<start>.ts` on the backup's HTTP API) in
//! `<state_dir>/peer-recordings`. When the channel's content fails (every item missing
//! or unreadable), the schedule plays them before the configured fallback and the slate
//! (see `extend.rs`).

use crate::recorder::{SegmentInfo, SegmentState};
use crate::ts::MuxRate;
use std::path::{Path, PathBuf};

/// The folder of a channel's copies of its peer's recordings.
pub fn peer_recordings_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("peer-recordings")
}

/// The copies, oldest first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_segment_name(p)).collect())
        .unwrap_or_default();
    out.sort_by_key(|p| start_ms(p));
    out
}

fn start_ms(p: &Path) -> u64 {
    p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn is_segment_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "ts") && p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(serde::Deserialize)]
struct Listing {
    segments: Vec<SegmentInfo>,
}

/// Brings the copies up to the newest `keep` playable complete segments `peer_http`
/// (`host:port`) recorded of `channel`, and deletes older copies. Each new copy is
/// probed at the channel's `rate` first: a segment recorded while the channel itself
/// had no content (tables only) is refused and remembered (`<start>.bad`), so copies
/// of good content are never pushed out by recordings of the failure. Returns how many
/// were fetched.
pub async fn refresh(client: &reqwest::Client, peer_http: &str, channel: &str, dir: &Path, keep: usize, rate: MuxRate) -> Result<usize, String> {
    let url = format!("http://{peer_http}/recordings");
    let listing: Listing = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut candidates: Vec<u64> = listing
        .segments
        .iter()
        .filter(|s| s.channel == channel && s.state == SegmentState::Complete)
        .map(|s| s.start_unix_ms)
        .collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    tokio::fs::create_dir_all(dir).await.map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut kept: Vec<u64> = Vec::new();
    let mut fetched = 0;
    for start in candidates {
        if kept.len() >= keep {
            break;
        }
        let path = dir.join(format!("{start}.ts"));
        let bad = dir.join(format!("{start}.bad"));
        if tokio::fs::try_exists(&bad).await.unwrap_or(false) {
            continue;
        }
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            kept.push(start);
            continue;
        }
        let url = format!("http://{peer_http}/recordings/{channel}/{start}.ts");
        let bytes = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("{url}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let tmp = dir.join(format!("{start}.ts.tmp"));
        tokio::fs::write(&tmp, &bytes).await.map_err(|e| format!("{}: {e}", tmp.display()))?;
        let probe_path = tmp.clone();
        let playable = tokio::task::spawn_blocking(move || super::probe::probe(&probe_path, rate).map(|_| ()))
            .await
            .map_err(|e| e.to_string())?;
        if let Err(e) = playable {
            tracing::debug!(segment = %url, "not kept as filler: {e}");
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::write(&bad, b"").await;
            continue;
        }
        let meta = serde_json::json!({
            "media_id": format!("recording-{start}"),
            "title": format!("Recording of {channel}"),
            "artist": "",
        });
        tokio::fs::write(dir.join(format!("{start}.ts.json")), meta.to_string()).await.map_err(|e| format!("{}: {e}", dir.display()))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        kept.push(start);
        fetched += 1;
    }
    let oldest = kept.iter().min().copied().unwrap_or(0);
    for old in list(dir) {
        if !kept.contains(&start_ms(&old)) {
            let _ = tokio::fs::remove_file(&old).await;
            let _ = tokio::fs::remove_file(format!("{}.json", old.display())).await;
        }
    }
    // Markers of segments older than every copy kept will not be listed again.
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let p = e.path();
            let stale = p.extension().is_some_and(|x| x == "bad") && start_ms(&p) < oldest;
            if stale {
                let _ = tokio::fs::remove_file(&p).await;
            }
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segment_names_are_listed_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        for n in ["200.ts", "100.ts", "100.ts.json", "x.ts", "300.ts.tmp"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let names: Vec<String> = list(d.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["100.ts", "200.ts"]);
    }
}
