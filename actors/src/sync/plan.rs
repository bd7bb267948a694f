//! The sync plan: what to download and what to retire, from a listing of the store and
//! what the catalog already holds. Pure logic, no I/O.

use std::collections::BTreeMap;

/// One object as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    pub key: String,
    pub size: u64,
    /// ETag (or another version token) when the store gives one.
    pub etag: Option<String>,
    /// Unix milliseconds.
    pub last_modified_ms: i64,
}

/// What the catalog says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified_ms: i64,
    pub state: KnownState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownState {
    /// Downloaded and verified.
    Ready,
    /// A download was started and not finished (crash, kill -9).
    Pending,
    /// The last attempt failed.
    Failed,
    /// This version cannot be used; only a change brings it back.
    Refused,
}

/// Why an object is (re)downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    New,
    Changed,
    /// A download interrupted by a crash.
    Unfinished,
    RetryFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Download { object: RemoteObject, why: Why },
    /// No longer listed: leaves the schedule at the next boundary, then the cache.
    Remove { key: String },
}

/// True when the listed object is not what the catalog holds.
fn changed(o: &RemoteObject, k: &Known) -> bool {
    match (&o.etag, &k.etag) {
        // An ETag is the store's own version token: trust it over times.
        (Some(a), Some(b)) => a != b || o.size != k.size,
        _ => o.size != k.size || o.last_modified_ms != k.last_modified_ms,
    }
}

/// The actions that bring the cache to the listing. Downloads come in key order.
pub fn plan(listing: &[RemoteObject], catalog: &BTreeMap<String, Known>) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    let mut sorted: Vec<&RemoteObject> = listing.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for o in sorted {
        listed.insert(o.key.as_str());
        let why = match catalog.get(&o.key) {
            None => Some(Why::New),
            Some(k) if changed(o, k) => Some(Why::Changed),
            Some(k) => match k.state {
                KnownState::Ready => None,
                KnownState::Pending => Some(Why::Unfinished),
                KnownState::Failed => Some(Why::RetryFailed),
                KnownState::Refused => None,
            },
        };
        if let Some(why) = why {
            actions.push(Action::Download { object: o.clone(), why });
        }
    }
    for key in catalog.keys() {
        if !listed.contains(key.as_str()) {
            actions.push(Action::Remove { key: key.clone() });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, size: u64, etag: Option<&str>, t: i64) -> RemoteObject {
        RemoteObject { key: key.into(), size, etag: etag.map(Into::into), last_modified_ms: t }
    }
    fn known(o: &RemoteObject, state: KnownState) -> Known {
        Known { size: o.size, etag: o.etag.clone(), last_modified_ms: o.last_modified_ms, state }
    }

    #[test]
    fn second_sync_does_nothing_and_one_change_downloads_one() {
        let listing: Vec<_> = (0..100).map(|i| obj(&format!("rock/{i:03}.mp3"), 1000 + i, Some(&format!("e{i}")), 5)).collect();
        let empty = BTreeMap::new();
        let first = plan(&listing, &empty);
        assert_eq!(first.len(), 100);
        assert!(first.iter().all(|a| matches!(a, Action::Download { why: Why::New, .. })));
        let catalog: BTreeMap<_, _> = listing.iter().map(|o| (o.key.clone(), known(o, KnownState::Ready))).collect();
        assert!(plan(&listing, &catalog).is_empty(), "no-op re-sync");
        let mut changed = listing.clone();
        changed[42].etag = Some("new".into());
        let p = plan(&changed, &catalog);
        assert_eq!(p.len(), 1);
        assert!(matches!(&p[0], Action::Download { object, why: Why::Changed } if object.key == "rock/042.mp3"));
    }

    #[test]
    fn without_etags_size_and_time_decide() {
        let a = obj("a", 10, None, 100);
        let catalog = BTreeMap::from([("a".to_string(), known(&a, KnownState::Ready))]);
        assert!(plan(std::slice::from_ref(&a), &catalog).is_empty());
        assert_eq!(plan(&[obj("a", 10, None, 101)], &catalog).len(), 1);
        assert_eq!(plan(&[obj("a", 11, None, 100)], &catalog).len(), 1);
    }

    #[test]
    fn refused_versions_wait_for_a_change() {
        let a = obj("notes.txt", 9, Some("v1"), 0);
        let catalog = BTreeMap::from([("notes.txt".to_string(), known(&a, KnownState::Refused))]);
        assert!(plan(std::slice::from_ref(&a), &catalog).is_empty(), "not fetched again every run");
        let changed = obj("notes.txt", 9, Some("v2"), 0);
        assert!(matches!(&plan(&[changed], &catalog)[0], Action::Download { why: Why::Changed, .. }));
    }

    #[test]
    fn unfinished_failed_and_removed() {
        let a = obj("a", 1, Some("x"), 0);
        let b = obj("b", 1, Some("y"), 0);
        let gone = obj("gone", 1, Some("z"), 0);
        let catalog = BTreeMap::from([
            ("a".to_string(), known(&a, KnownState::Pending)),
            ("b".to_string(), known(&b, KnownState::Failed)),
            ("gone".to_string(), known(&gone, KnownState::Ready)),
        ]);
        let p = plan(&[a, b], &catalog);
        assert!(matches!(&p[0], Action::Download { why: Why::Unfinished, .. }));
        assert!(matches!(&p[1], Action::Download { why: Why::RetryFailed, .. }));
        assert_eq!(p[2], Action::Remove { key: "gone".into() });
    }
}
