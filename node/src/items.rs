//! A rendered channel's items across the cluster. One node builds them (the channel's
//! encode job, placed by the scheduler); the channel's main and backup mirror that node's
//! items folder over HTTP, so both play byte-identical items (the backup's shadow mux
//! matches the main's packets, and a takeover continues the same stream).
//!
//! The builder serves `GET /items/<channel>` (the list, and whether builds are pending)
//! and `GET /items/<channel>/<file>`; [`mirror`] copies what is new and, once the builder
//! has nothing left to build, removes what the builder no longer has.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of an items folder: an item (`x.ts`) or its now-playing sidecar (`x.json`
/// as the encoder writes it, or `x.ts.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFile {
    pub name: String,
    pub bytes: u64,
}

/// What `GET /items/<channel>` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList {
    pub channel: String,
    pub items: Vec<ItemFile>,
    /// Builds of the channel are queued or running: the list is not final yet.
    pub building: bool,
}

/// What one mirror pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub copied: usize,
    pub removed: usize,
}

/// Whether `name` is a file an items folder serves: a plain name of `[A-Za-z0-9._-]`
/// ending in `.ts` or `.json`, not hidden, no path.
pub fn servable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && (name.ends_with(".ts") || name.ends_with(".json"))
}

/// The servable files of `dir`, by name. A missing folder has none.
pub fn list(dir: &Path) -> Vec<ItemFile> {
    let mut out: Vec<ItemFile> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            (meta.is_file() && servable(&name)).then_some(ItemFile { name, bytes: meta.len() })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Makes `dir` (a main's or backup's items folder of `channel`) match the builder's at
/// `peer` (`host:port` of its HTTP API). Sidecars are copied before their items, each
/// file to `.part` and then renamed, so playout never sees half a file. Files the builder
/// no longer has are removed only when its list is final (nothing building): an item
/// being rebuilt elsewhere keeps playing here until its replacement exists.
pub async fn mirror(client: &reqwest::Client, peer: &str, channel: &str, dir: &Path) -> Result<Mirrored, String> {
    let url = format!("http://{peer}/items/{channel}");
    let remote: ItemList = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    tokio::fs::create_dir_all(dir).await.map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let local = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || list(&dir)).await.unwrap_or_default()
    };
    let mut done = Mirrored::default();
    let mut wanted: Vec<&ItemFile> = remote.items.iter().filter(|f| servable(&f.name) && !local.contains(f)).collect();
    // Sidecars first: an item appears with its now-playing data.
    wanted.sort_by_key(|f| (!f.name.ends_with(".json"), f.name.clone()));
    for f in wanted {
        fetch(client, peer, channel, f, dir).await?;
        done.copied += 1;
    }
    if !remote.building && !remote.items.is_empty() {
        for f in local.iter().filter(|l| !remote.items.iter().any(|r| r.name == l.name)) {
            // Playout keeps the file it plays open: removing it never cuts the air.
            if tokio::fs::remove_file(dir.join(&f.name)).await.is_ok() {
                done.removed += 1;
            }
        }
    }
    Ok(done)
}

/// Copies one file to `<dir>/<name>.part`, checks its length, then renames it.
async fn fetch(client: &reqwest::Client, peer: &str, channel: &str, file: &ItemFile, dir: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let url = format!("http://{peer}/items/{channel}/{}", file.name);
    let mut resp = client.get(&url).send().await.and_then(reqwest::Response::error_for_status).map_err(|e| format!("GET {url}: {e}"))?;
    let part: PathBuf = dir.join(format!("{}.part", file.name));
    let mut out = tokio::fs::File::create(&part).await.map_err(|e| format!("{}: {e}", part.display()))?;
    let mut bytes = 0u64;
    let copied: Result<(), String> = async {
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await.map_err(|_| format!("GET {url}: stalled"))?.map_err(|e| format!("GET {url}: {e}"))? {
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| format!("{}: {e}", part.display()))?;
        }
        out.sync_all().await.map_err(|e| format!("{}: {e}", part.display()))?;
        if bytes != file.bytes {
            return Err(format!("GET {url}: {bytes} bytes, the list said {} (rebuilt meanwhile?)", file.bytes));
        }
        Ok(())
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, dir.join(&file.name)).await.map_err(|e| format!("{}: {e}", part.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_item_and_sidecar_names_are_served() {
        for ok in ["01-first-0123456789ab.ts", "a.ts.json", "a.json", "A_b-c.ts"] {
            assert!(servable(ok), "{ok}");
        }
        for bad in ["", ".hidden.ts", "../x.ts", "a/b.ts", "x.ts.part", "x.png", "x.json.tmp", "a b.ts", "%2e%2e.ts", ".json"] {
            assert!(!servable(bad), "{bad}");
        }
    }

    #[test]
    fn a_folder_lists_its_items_and_sidecars_only() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("b.ts", 3), ("a.ts", 2), ("a.json", 1), ("a.png", 4), ("c.ts.part", 5), ("c.json.tmp", 6)] {
            std::fs::write(dir.path().join(name), vec![0u8; bytes]).unwrap();
        }
        std::fs::create_dir(dir.path().join("d.ts")).unwrap();
        let names: Vec<(String, u64)> = list(dir.path()).into_iter().map(|f| (f.name, f.bytes)).collect();
        assert_eq!(names, vec![("a.json".into(), 1), ("a.ts".into(), 2), ("b.ts".into(), 3)]);
        assert!(list(&dir.path().join("missing")).is_empty());
    }
}
