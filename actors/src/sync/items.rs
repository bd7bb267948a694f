//! A listing split into items: each media object with its sidecars (`<media>.json` or
//! `<stem>.json`, `<media>.jpg/.png` or `<stem>.jpg/.png`, `<media>.sha256`). Keys that
//! are not safe in the cache are refused here, with the reason.

use super::keys::CachePath;
use super::metadata;
use super::plan::RemoteObject;
use super::report::{ObjectFailure, SyncReport};
use std::collections::{BTreeMap, BTreeSet};

/// A media object with its sidecars, as one unit of the plan.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub media: RemoteObject,
    pub dest: CachePath,
    /// `.json` and image sidecars, brought into the cache beside the media.
    pub files: Vec<(RemoteObject, CachePath)>,
    pub sha256: Option<RemoteObject>,
}

impl Item {
    /// What the plan compares: the media, with its sidecars folded into the version (so
    /// a sidecar added, changed or taken away is a change of the item). Without an ETag,
    /// an object's version is its size and time.
    pub fn version(&self) -> RemoteObject {
        let tag = |o: &RemoteObject| o.etag.clone().unwrap_or_else(|| format!("{}@{}", o.size, o.last_modified_ms));
        let mut etag = tag(&self.media);
        let mut last = self.media.last_modified_ms;
        for o in self.files.iter().map(|(o, _)| o).chain(&self.sha256) {
            last = last.max(o.last_modified_ms);
            etag.push_str(&format!("|{}={}", o.key, tag(o)));
        }
        RemoteObject { key: self.media.key.clone(), size: self.media.size, etag: Some(etag), last_modified_ms: last }
    }
}

fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next()?;
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

/// Splits a listing into items (media and their sidecars); unsafe keys are refused.
pub(crate) fn group(listing: &[RemoteObject], channel: &str, report: &mut SyncReport) -> Vec<Item> {
    let is_sidecar =
        |k: &str| extension(k).is_some_and(|e| e == "json" || e == "sha256" || metadata::IMAGE_EXTENSIONS.contains(&e.as_str()));
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    let mut by_stem: BTreeMap<String, String> = BTreeMap::new();
    let refuse = |report: &mut SyncReport, key: &str, reason: String| {
        tracing::warn!(channel, key, "refusing object key: {reason}");
        report.refused.push(ObjectFailure { channel: channel.into(), key: key.chars().take(300).collect(), reason });
    };
    let keys: BTreeSet<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    // A folder marker (`rock/live/`, listed as `rock/live`) is not an item.
    let is_folder = |k: &str| keys.range(format!("{k}/").as_str()..).next().is_some_and(|n| n.starts_with(&format!("{k}/")));
    for o in listing.iter().filter(|o| !is_sidecar(&o.key) && !is_folder(&o.key)) {
        match CachePath::from_key(&o.key) {
            Ok(dest) => {
                if let Some((stem, _)) = o.key.rsplit_once('.').filter(|(s, e)| !s.ends_with('/') && !e.contains('/')) {
                    by_stem.entry(stem.to_string()).or_insert_with(|| o.key.clone());
                }
                items.insert(o.key.clone(), Item { media: o.clone(), dest, files: vec![], sha256: None });
            }
            Err(e) => refuse(report, &o.key, e.to_string()),
        }
    }
    for o in listing.iter().filter(|o| is_sidecar(&o.key)) {
        let Some((base, ext)) = o.key.rsplit_once('.') else { continue };
        // `<media>.<ext>` first, then `<stem>.<ext>` (claimed by one media item only).
        let owner = if items.contains_key(base) { Some(base.to_string()) } else { by_stem.get(base).cloned() };
        let Some(item) = owner.and_then(|k| items.get_mut(&k)) else { continue };
        if ext.eq_ignore_ascii_case("sha256") {
            item.sha256 = Some(o.clone());
            continue;
        }
        match CachePath::from_key(&o.key) {
            Ok(dest) => item.files.push((o.clone(), dest)),
            Err(e) => refuse(report, &o.key, e.to_string()),
        }
    }
    items.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, etag: &str) -> RemoteObject {
        RemoteObject { key: key.into(), size: 10, etag: Some(etag.into()), last_modified_ms: 1 }
    }

    #[test]
    fn sidecars_join_their_media_and_hostile_keys_are_refused() {
        let listing = [
            obj("rock/a.mp3", "1"),
            obj("rock/a.mp3.json", "2"),
            obj("rock/a.mp3.sha256", "3"),
            obj("rock/a.png", "4"),
            obj("rock/b.ogg", "5"),
            obj("rock/stray.json", "6"),
            obj("rock/x\\..\\y.mp3", "7"),
            obj("rock/live", "8"),
            obj("rock/live/c.mp3", "9"),
        ];
        let mut report = SyncReport::default();
        let items = group(&listing, "rock", &mut report);
        assert_eq!(items.iter().map(|i| i.media.key.as_str()).collect::<Vec<_>>(), ["rock/a.mp3", "rock/b.ogg", "rock/live/c.mp3"]);
        let a = &items[0];
        assert_eq!(a.files.iter().map(|(o, _)| o.key.as_str()).collect::<Vec<_>>(), ["rock/a.mp3.json", "rock/a.png"]);
        assert_eq!(a.sha256.as_ref().map(|o| o.key.as_str()), Some("rock/a.mp3.sha256"));
        assert!(items[1].files.is_empty());
        assert_eq!(report.refused.len(), 1);
        assert!(report.refused[0].reason.contains("backslash"));
        // A changed sidecar changes the item's version; the media's size stays.
        let mut edited = listing.clone();
        edited[1].etag = Some("2b".into());
        let again = group(&edited, "rock", &mut SyncReport::default());
        assert_ne!(again[0].version().etag, a.version().etag);
        assert_eq!(again[0].version().size, 10);
    }
}
