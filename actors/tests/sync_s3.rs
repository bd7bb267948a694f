//! Sync against a real S3-compatible server (s3s-fs, started by the tests) and against
//! `file://`: incremental runs, metadata from tags and sidecars, the catalog across a
//! reopen, faults (server killed mid-download, truncated objects, checksum mismatch,
//! store unreachable, disk floor) and hostile keys.

mod s3;

use headend_actors::sync::actor::{SourceSpec, SyncActor, SyncArgs, SyncMsg};
use headend_actors::sync::catalog::{CatalogEntry, EntryState};
use headend_actors::sync::engine::{sync_channel, SyncHooks};
use headend_actors::sync::keys::TEMP_PREFIX;
use headend_actors::sync::report::{Progress, SyncEvent, SyncReport, SyncStatus};
use headend_actors::sync::source::Source;
use headend_actors::sync::transfer::{free_bytes, temp_path};
use ractor::{call_t, Actor};
use s3::{delete, files, media, put, sha256_hex, upload_library, walk, Node, S3Server};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

#[derive(Default)]
struct Recorder {
    planned: Mutex<(u64, u64)>,
    done: Mutex<Vec<(String, u64, bool)>>,
    on_planned: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Progress for Recorder {
    fn planned(&self, objects: u64, bytes: u64) {
        *self.planned.lock().unwrap() = (objects, bytes);
        if let Some(f) = &self.on_planned {
            f();
        }
    }
    fn object_done(&self, key: &str, bytes: u64, ok: bool) {
        self.done.lock().unwrap().push((key.into(), bytes, ok));
    }
}

fn chrono_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn drain(rx: &mut UnboundedReceiver<SyncEvent>) -> Vec<SyncEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn entry(node: &Node, key: &str) -> CatalogEntry {
    node.catalog.get("rock", key).unwrap().unwrap_or_else(|| panic!("no catalog entry for {key}"))
}

fn failure<'a>(r: &'a SyncReport, key: &str) -> &'a str {
    &r.failed.iter().find(|f| f.key == key).unwrap_or_else(|| panic!("{key} did not fail: {r:#?}")).reason
}

/// The three items are in the cache and the catalog, with metadata from tags and sidecars.
fn assert_library_synced(node: &Node) {
    let m = media();
    let one = entry(node, "rock/one.mp3");
    assert_eq!(one.state, EntryState::Ready);
    assert_eq!((one.title.as_str(), one.artist.as_str(), one.album.as_str(), one.genre.as_str()), ("One", "Artist A", "Album A", "Rock"));
    assert!((900..1200).contains(&one.duration_ms), "{}", one.duration_ms);
    assert_eq!(one.sha256.as_deref(), Some(sha256_hex(&m.one_mp3).as_str()));
    assert_eq!(one.local_path, node.cache.join("rock/one.mp3"));
    assert_eq!(std::fs::read(&one.local_path).unwrap(), m.one_mp3);
    assert!(node.cache.join("rock/one.mp3.cover.png").is_file(), "embedded artwork extracted");
    let two = entry(node, "rock/two.ogg");
    assert_eq!((two.title.as_str(), two.artist.as_str(), two.state.clone()), ("Two", "Artist B", EntryState::Ready));
    let three = entry(node, "rock/three.m4a");
    assert_eq!((three.title.as_str(), three.artist.as_str(), three.genre.as_str()), ("Three (sidecar)", "Artist C", "Jazz"));
    assert_eq!(three.media_id, "m-3");
    assert_eq!(std::fs::read(node.cache.join("rock/three.m4a.cover.png")).unwrap(), m.cover_png, "sidecar image copied");
}

/// Listing in ranges cut at the keys of an older run finds every key exactly once: keys
/// added since, keys gone since and keys beyond the last hint included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hinted_listing_covers_every_key_once_whatever_changed() {
    let server = S3Server::start();
    let source = server.source();
    // 2,500 objects, written straight into the server's folder (faster than 2,500 PUTs).
    let dir = server.file_of("rock");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..2500 {
        std::fs::write(dir.join(format!("{i:05}.mp3")), b"x").unwrap();
    }
    let keys = |l: Vec<headend_actors::sync::plan::RemoteObject>| l.into_iter().map(|o| o.key).collect::<Vec<_>>();
    let all = keys(source.list_objects("rock").await.unwrap());
    assert_eq!(all.len(), 2500);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, no key twice");
    // The older run knew keys since deleted (2,500 to 2,999) and missed every seventh.
    let old: Vec<String> = (0..3000).filter(|i| i % 7 != 0).map(|i| format!("rock/{i:05}.mp3")).collect();
    let short: Vec<String> = (0..1200).map(|i| format!("rock/{i:05}.mp3")).collect();
    for hints in [old, short, vec!["rock/01234.mp3".to_string()], vec![]] {
        let refs: Vec<&str> = hints.iter().map(String::as_str).collect();
        let got = keys(source.list_objects_hinted("rock", &refs).await.unwrap());
        assert_eq!(got, all, "with {} hints", hints.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_first_sync_then_nothing_then_one_change_then_removal() {
    let server = S3Server::start();
    let source = server.source();
    upload_library(&source).await;
    let mut node = Node::new();
    let (tx, mut rx) = unbounded_channel();
    let progress = Arc::new(Recorder::default());
    let hooks = SyncHooks { events: Some(tx), progress: progress.clone(), ..Default::default() };

    let r = node.sync(&source, &hooks).await;
    assert!(r.is_clean(), "{r:#?}");
    assert_eq!((r.listed, r.media, r.downloaded, r.unchanged), (6, 3, 3, 0));
    assert_library_synced(&node);
    // The cached file carries the store's modification time, the same on every node (so
    // items built from it get the same name anywhere in a cluster).
    let listed = source.list_objects("rock").await.unwrap().into_iter().find(|o| o.key == "rock/one.mp3").expect("listed");
    let mtime = std::fs::metadata(entry(&node, "rock/one.mp3").local_path).unwrap().modified().unwrap();
    assert_eq!(chrono_ms(mtime), listed.last_modified_ms, "cache mtime = the object's listed last-modified");
    let (objects, bytes) = *progress.planned.lock().unwrap();
    assert_eq!((objects, bytes), (3, r.bytes));
    assert!(progress.done.lock().unwrap().iter().all(|(_, _, ok)| *ok));
    let events = drain(&mut rx);
    assert_eq!(events.iter().filter(|e| matches!(e, SyncEvent::New(_))).count(), 3, "{events:?}");

    let r = node.sync(&source, &hooks).await;
    assert!(r.is_clean() && r.downloaded == 0 && r.bytes == 0 && r.unchanged == 3, "{r:#?}");
    assert!(drain(&mut rx).is_empty());

    put(&source, "rock/two.ogg", &media().two_ogg_v2).await;
    let r = node.sync(&source, &hooks).await;
    assert!(r.is_clean() && r.downloaded == 1 && r.unchanged == 2, "{r:#?}");
    assert_eq!(r.bytes, media().two_ogg_v2.len() as u64);
    let events = drain(&mut rx);
    assert!(matches!(&events[..], [SyncEvent::Changed(e)] if e.title.starts_with("Two, remastered")), "{events:?}");

    // A sidecar taken away: the tags speak again, and its copy leaves the cache.
    delete(&source, "rock/three.m4a.json").await;
    let r = node.sync(&source, &hooks).await;
    assert!(r.is_clean() && r.downloaded == 1, "{r:#?}");
    assert_eq!((entry(&node, "rock/three.m4a").title.as_str(), entry(&node, "rock/three.m4a").media_id.as_str()), ("Three (tag)", "three"));
    assert!(!node.cache.join("rock/three.m4a.json").exists());
    assert!(node.cache.join("rock/three.m4a.cover.png").is_file(), "the sidecar image still applies");
    drain(&mut rx);

    // The catalog survives a reopen, and the next run still has nothing to do.
    let before = node.catalog.channel("rock").unwrap();
    node.reopen_catalog();
    assert_eq!(node.catalog.channel("rock").unwrap(), before);
    assert_eq!(node.sync(&source, &hooks).await.downloaded, 0);

    // A removed item is kept while on air, then deleted.
    delete(&source, "rock/two.ogg").await;
    let on_air = SyncHooks { in_use: Arc::new(|p: &Path| p.ends_with("rock/two.ogg")), ..hooks.clone() };
    let r = node.sync(&source, &on_air).await;
    assert_eq!((r.removed, r.removal_deferred), (0, 1), "{r:#?}");
    assert!(node.cache.join("rock/two.ogg").is_file());
    assert!(matches!(&drain(&mut rx)[..], [SyncEvent::Removed { deleted: false, .. }]));
    let r = node.sync(&source, &hooks).await;
    assert_eq!((r.removed, r.removal_deferred), (1, 0), "{r:#?}");
    assert!(!node.cache.join("rock/two.ogg").exists());
    assert!(node.catalog.get("rock", "rock/two.ogg").unwrap().is_none());
    assert!(matches!(&drain(&mut rx)[..], [SyncEvent::Removed { deleted: true, .. }]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_url_happy_path() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("library")).unwrap();
    let source = Source::open(&format!("file://{}/library", store.path().display()), &[]).unwrap();
    upload_library(&source).await;
    let node = Node::new();
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert!(r.is_clean() && r.downloaded == 3, "{r:#?}");
    assert_library_synced(&node);
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert!(r.is_clean() && r.downloaded == 0 && r.unchanged == 3, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_download_then_restarted() {
    let mut server = S3Server::start();
    let source = server.source();
    put(&source, "rock/big.wav", &media().big_wav).await;
    let mut node = Node::new();
    node.settings.bandwidth_bytes_per_second = Some(8 << 20);
    let (src, catalog, settings) = (source.clone(), node.catalog.clone(), node.settings.clone());
    let run = tokio::spawn(async move { sync_channel(&src, "rock", &catalog, &settings, &SyncHooks::default()).await });
    let temp = temp_path(&node.cache.join("rock/big.wav"));
    let target = node.cache.join("rock/big.wav");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&temp).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
        assert!(Instant::now() < deadline && !run.is_finished(), "the download never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(entry(&node, "rock/big.wav").state, EntryState::Pending, "pending while it downloads");
    server.kill();
    let r = run.await.unwrap();
    assert_eq!(r.downloaded, 0, "{r:#?}");
    assert!(failure(&r, "rock/big.wav").contains("store error"), "{r:#?}");
    assert!(r.degraded, "{r:#?}");
    assert!(!target.exists() && !temp.exists(), "no partial file, under any name");
    assert!(matches!(entry(&node, "rock/big.wav").state, EntryState::Failed { .. }));

    server.restart();
    node.settings.bandwidth_bytes_per_second = None;
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert!(r.is_clean() && r.downloaded == 1, "{r:#?}");
    assert_eq!(entry(&node, "rock/big.wav").state, EntryState::Ready);
    assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha256_hex(&media().big_wav));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_objects_are_refused_then_fetched_when_whole() {
    let server = S3Server::start();
    let source = server.source();
    let m = media();
    // Cut before the upload: the checksum sidecar gives it away.
    put(&source, "rock/cut.mp3", &m.one_mp3[..m.one_mp3.len() / 2]).await;
    put(&source, "rock/cut.mp3.sha256", sha256_hex(&m.one_mp3).as_bytes()).await;
    // Cut after the listing: fewer bytes than listed.
    put(&source, "rock/two.ogg", &m.two_ogg).await;
    let node = Node::new();
    let stored = server.file_of("rock/two.ogg");
    let half = m.two_ogg.len() as u64 / 2;
    let cut = move || std::fs::File::options().write(true).open(&stored).unwrap().set_len(half).unwrap();
    let progress = Arc::new(Recorder { on_planned: Some(Box::new(cut)), ..Default::default() });
    let r = node.sync(&source, &SyncHooks { progress, ..Default::default() }).await;
    assert_eq!(r.downloaded, 0, "{r:#?}");
    assert!(failure(&r, "rock/cut.mp3").contains("checksum mismatch"), "{r:#?}");
    assert!(failure(&r, "rock/two.ogg").contains("truncated"), "{r:#?}");
    assert!(!r.degraded, "a bad object is not an unreachable store: {r:#?}");
    assert!(files(&node.cache).is_empty(), "nothing kept: {:?}", files(&node.cache));
    for key in ["rock/cut.mp3", "rock/two.ogg"] {
        assert!(matches!(entry(&node, key).state, EntryState::Failed { .. }), "{key}");
    }
    put(&source, "rock/cut.mp3", &m.one_mp3).await;
    put(&source, "rock/two.ogg", &m.two_ogg).await;
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert!(r.is_clean() && r.downloaded == 2, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mismatch_keeps_the_ready_version() {
    let server = S3Server::start();
    let source = server.source();
    upload_library(&source).await;
    put(&source, "rock/bad.mp3", &media().one_mp3).await;
    put(&source, "rock/bad.mp3.sha256", "0".repeat(64).as_bytes()).await;
    let node = Node::new();
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert_eq!(r.downloaded, 3, "{r:#?}");
    assert!(failure(&r, "rock/bad.mp3").contains("checksum mismatch"));
    assert!(!node.cache.join("rock/bad.mp3").exists());
    // A new version of one.mp3 that does not match its sidecar: the old one stays on.
    let before = entry(&node, "rock/one.mp3");
    put(&source, "rock/one.mp3", &media().two_ogg).await;
    let (tx, mut rx) = unbounded_channel();
    let r = node.sync(&source, &SyncHooks { events: Some(tx), ..Default::default() }).await;
    assert!(failure(&r, "rock/one.mp3").contains("checksum mismatch"), "{r:#?}");
    assert_eq!(entry(&node, "rock/one.mp3"), before, "still the verified version");
    assert_eq!(std::fs::read(&before.local_path).unwrap(), media().one_mp3);
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_unreachable_keeps_the_cache_and_reports_degraded_until_it_is_back() {
    let mut server = S3Server::start();
    let source = server.source();
    upload_library(&source).await;
    let node = Node::new();
    assert!(node.sync(&source, &SyncHooks::default()).await.is_clean());
    let catalog_before = node.catalog.channel("rock").unwrap();
    let files_before = files(&node.cache);
    server.kill();

    let r = node.sync(&source, &SyncHooks::default()).await;
    assert!(r.degraded && r.downloaded == 0 && r.removed == 0, "{r:#?}");
    assert!(r.errors[0].contains("s3://media/library") && r.errors[0].contains("listing"), "{:?}", r.errors);
    assert_eq!(node.catalog.channel("rock").unwrap(), catalog_before, "nothing Ready is lost");
    assert_eq!(files(&node.cache), files_before);

    // The actor reports degraded, and recovers by itself once the store is back.
    let spec = SourceSpec { channel: "rock".into(), url: server.url(), options: server.options(), interval: Duration::from_millis(200) };
    let args =
        SyncArgs { sources: vec![spec], catalog: node.catalog.clone(), settings: node.settings.clone(), hooks: SyncHooks::default() };
    let (actor, handle) = Actor::spawn(None, SyncActor, args).await.unwrap();
    let r: SyncReport = call_t!(actor, SyncMsg::SyncNow, 15_000).unwrap();
    assert!(r.degraded);
    let status: SyncStatus = call_t!(actor, SyncMsg::Status, 1_000).unwrap();
    assert!(status.degraded && status.channels["rock"].recent_errors[0].contains("s3://media/library"), "{status:#?}");
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status: SyncStatus = call_t!(actor, SyncMsg::Status, 1_000).unwrap();
        if !status.degraded {
            assert!(status.channels["rock"].last_success_unix_ms.is_some(), "{status:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "still degraded: {status:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    actor.stop(None);
    handle.await.unwrap();
    assert_eq!(node.catalog.channel("rock").unwrap(), catalog_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_floor_refuses_with_a_clear_error_and_writes_nothing() {
    let server = S3Server::start();
    let source = server.source();
    upload_library(&source).await;
    let mut node = Node::new();
    node.settings.disk_floor_bytes = free_bytes(&node.cache).unwrap() + (1 << 40);
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert_eq!((r.downloaded, r.failed.len()), (0, 3), "{r:#?}");
    for f in &r.failed {
        assert!(f.reason.contains("not enough disk space") && f.reason.contains("disk_floor_bytes"), "{}", f.reason);
    }
    assert!(!r.degraded);
    assert!(files(&node.cache).is_empty(), "{:?}", files(&node.cache));
    assert!(matches!(entry(&node, "rock/one.mp3").state, EntryState::Failed { .. }));
    // The per-object limit refuses the same way.
    node.settings.disk_floor_bytes = 0;
    node.settings.max_object_bytes = 1000;
    let r = node.sync(&source, &SyncHooks::default()).await;
    assert_eq!((r.downloaded, r.failed.len()), (0, 3), "{r:#?}");
    assert!(r.failed.iter().all(|f| f.reason.contains("per-object limit")), "{r:#?}");
    assert!(files(&node.cache).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_never_write_outside_the_cache() {
    let server = S3Server::start();
    let source = server.source();
    let m = media();
    put(&source, "rock/one.mp3", &m.one_mp3).await;
    // object_store escapes what it cannot send: these arrive as `%2E%2E` and `abs.mp3`.
    put(&source, "rock/../escape.mp3", &m.one_mp3).await;
    put(&source, "/rock/abs.mp3", &m.one_mp3).await;
    put(&source, &format!("rock/{TEMP_PREFIX}one.mp3"), &m.one_mp3).await;
    // Keys S3 stores as given, placed straight into the server's folder.
    let raw = |key: &str| {
        let path = server.file_of(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &m.one_mp3).unwrap();
    };
    raw("rock/a\\..\\..\\b.mp3");
    raw("rock/line\nbreak.mp3");
    let deep = format!("rock/{}x.mp3", format!("{}/", "d".repeat(200)).repeat(6));
    raw(&deep);
    raw(&format!("rock/{}.mp3", "n".repeat(250)));
    let node = Node::new();
    // The cache's parent, and the whole node folder but the catalog.
    let outside = node.cache.parent().unwrap().to_path_buf();
    let (before, node_before) = (walk(&outside), walk(node.dir.path()));
    let r = node.sync(&source, &SyncHooks::default()).await;
    let new: Vec<_> = walk(&outside).difference(&before).filter(|p| !p.starts_with(&node.cache)).cloned().collect();
    assert!(new.is_empty(), "written outside the cache: {new:?}");
    let new: Vec<_> = walk(node.dir.path())
        .difference(&node_before)
        .filter(|p| !p.starts_with(&node.cache) && !p.starts_with(&node.catalog_path))
        .cloned()
        .collect();
    assert!(new.is_empty(), "written outside the cache: {new:?}");
    let reasons: Vec<&str> = r.refused.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(r.refused.len(), 4, "{r:#?}");
    assert!(reasons.iter().any(|x| x.contains("control character")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("backslash")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("over the 1024-byte limit")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("reserved prefix")), "{reasons:?}");
    // The run went on: the ordinary item and the escaped `..` one are in the cache.
    assert!(node.cache.join("rock/one.mp3").is_file());
    assert!(node.cache.join("rock/%2E%2E/escape.mp3").is_file(), "{r:#?}");
    // A 250-byte name is a legal key: its temporary name is short, so it downloads.
    assert!(r.failed.is_empty(), "{r:#?}");
    assert!(node.cache.join(format!("rock/{}.mp3", "n".repeat(250))).is_file(), "{r:#?}");
}
