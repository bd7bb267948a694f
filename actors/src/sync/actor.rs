//! The node's sync actor: runs the sync engine for each configured source on its interval
//! (a self-sent tick), or at once on `SyncNow`, and answers `Status` at any time. A run
//! happens on its own task, so the actor keeps answering while it transfers; runs do
//! not overlap (ticks that arrive during a run are folded into the next one).
//!
//! The set of sources can change at run time (`SetSources`, sent by the cluster
//! reconciler). Sources are keyed by channel; each opened source has a generation, and a
//! tick carries the generation it was armed for, so the timer of a removed or replaced
//! source dies at its next tick and one source never has two timer chains.

use super::catalog::Catalog;
use super::engine::{sync_channel, SyncHooks, SyncSettings};
use super::report::{SyncReport, SyncStatus};
use super::source::Source;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The registry name of a node's sync actor.
pub const ACTOR_NAME: &str = "sync";

/// One channel's (or genre's) source: `<url>/<channel>/` is synced every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub channel: String,
    pub url: String,
    /// Non-secret store options (endpoint, region, allow_http, ...).
    pub options: Vec<(String, String)>,
    /// Zero: only on `SyncNow`.
    pub interval: Duration,
}

/// What the sync actor starts with. `sources` may be empty (see `SyncMsg::SetSources`).
#[derive(Debug, Clone)]
pub struct SyncArgs {
    pub sources: Vec<SourceSpec>,
    pub catalog: Catalog,
    pub settings: SyncSettings,
    pub hooks: SyncHooks,
}

#[derive(Debug)]
pub enum SyncMsg {
    /// The source of `channel` is due (its self-armed timer). Ignored unless `generation`
    /// is the source's current one: a timer of a removed or changed source stops here.
    Tick { channel: String, generation: u64 },
    /// Sync every current source now; the reply comes when that run is done (at once, with
    /// an empty report, when there is no source).
    SyncNow(RpcReplyPort<SyncReport>),
    Status(RpcReplyPort<SyncStatus>),
    /// Replace the set of sources, keyed by `SourceSpec::channel` (a later duplicate wins).
    /// An unchanged spec keeps its opened source and its timer (one whose open failed is
    /// opened again); a new or changed spec is opened under a new generation and, when
    /// its interval is non-zero, ticks at once; a removed spec stops ticking and leaves
    /// `Status`. A run under way for a removed source finishes and is counted.
    SetSources(Vec<SourceSpec>),
    /// A run finished (sent by the run's task).
    Finished(Vec<SyncReport>),
}

#[derive(Debug, Clone, Copy)]
pub struct SyncActor;

/// One current source.
struct Slot {
    spec: SourceSpec,
    /// A source that cannot be opened reports why on each run.
    source: Result<Arc<Source>, String>,
    /// Ticks armed for another generation are stale.
    generation: u64,
}

/// What `SetSources` does with one channel's source.
#[derive(Debug, Clone, PartialEq)]
enum SourceChange {
    /// Same spec: keep the opened source and its timer.
    Keep,
    /// New or changed spec: open it under a new generation.
    Open(SourceSpec),
    /// No longer wanted: forget it (its timer dies at its next tick).
    Remove,
}

/// Compares the current specs with the wanted ones, by channel.
fn plan_sources<'a>(current: impl IntoIterator<Item = &'a SourceSpec>, wanted: Vec<SourceSpec>) -> BTreeMap<String, SourceChange> {
    let current: BTreeMap<&str, &SourceSpec> = current.into_iter().map(|s| (s.channel.as_str(), s)).collect();
    let mut plan: BTreeMap<String, SourceChange> = current.keys().map(|c| (c.to_string(), SourceChange::Remove)).collect();
    for spec in wanted {
        let change = if current.get(spec.channel.as_str()) == Some(&&spec) { SourceChange::Keep } else { SourceChange::Open(spec.clone()) };
        plan.insert(spec.channel, change);
    }
    plan
}

/// Opens a source on a blocking thread (a local source lists its folder).
async fn open_source(spec: &SourceSpec) -> Result<Arc<Source>, String> {
    let (url, options, channel) = (spec.url.clone(), spec.options.clone(), spec.channel.clone());
    let label = channel.clone();
    tokio::task::spawn_blocking(move || Source::open(&url, &options).map(Arc::new).map_err(|e| format!("{channel}: {e}")))
        .await
        .unwrap_or_else(|e| Err(format!("{label}: opening the source failed: {e}")))
}

pub struct SyncState {
    catalog: Catalog,
    settings: SyncSettings,
    hooks: SyncHooks,
    /// Current sources by channel.
    slots: BTreeMap<String, Slot>,
    /// The last generation handed out.
    generation: u64,
    status: SyncStatus,
    run: Option<tokio::task::JoinHandle<()>>,
    due: BTreeSet<String>,
    waiting: Vec<RpcReplyPort<SyncReport>>,
    replies: Vec<RpcReplyPort<SyncReport>>,
}

impl std::fmt::Debug for SyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncState").field("sources", &self.slots.len()).field("running", &self.run.is_some()).finish()
    }
}

impl SyncState {
    fn new(args: SyncArgs) -> SyncState {
        SyncState {
            catalog: args.catalog,
            settings: args.settings,
            hooks: args.hooks,
            slots: BTreeMap::new(),
            generation: 0,
            status: SyncStatus::default(),
            run: None,
            due: BTreeSet::new(),
            waiting: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Applies a new set of sources; returns the ticks to send at once (channel, generation).
    async fn set_sources(&mut self, wanted: Vec<SourceSpec>) -> Vec<(String, u64)> {
        let plan = plan_sources(self.slots.values().map(|s| &s.spec), wanted);
        let mut ticks = Vec::new();
        for (channel, change) in plan {
            match change {
                SourceChange::Keep => {
                    if let Some(slot) = self.slots.get_mut(&channel).filter(|s| s.source.is_err()) {
                        slot.source = open_source(&slot.spec).await;
                    }
                }
                SourceChange::Remove => {
                    self.slots.remove(&channel);
                    self.due.remove(&channel);
                }
                SourceChange::Open(spec) => {
                    self.generation += 1;
                    let generation = self.generation;
                    if !spec.interval.is_zero() {
                        ticks.push((channel.clone(), generation));
                    }
                    let source = open_source(&spec).await;
                    self.due.remove(&channel);
                    self.slots.insert(channel, Slot { spec, source, generation });
                }
            }
        }
        self.prune_status();
        ticks
    }

    /// A timer fired: marks the source due and returns when to tick again, or `None` when
    /// the tick is stale (its source was removed or replaced) or the source has no interval.
    fn tick(&mut self, channel: &str, generation: u64) -> Option<Duration> {
        let slot = self.slots.get(channel).filter(|s| s.generation == generation && !s.spec.interval.is_zero())?;
        self.due.insert(channel.to_string());
        Some(slot.spec.interval)
    }

    /// Status lists only current sources (a removed one's last health would linger).
    fn prune_status(&mut self) {
        let slots = &self.slots;
        self.status.channels.retain(|c, _| slots.contains_key(c));
        self.status.degraded = self.status.channels.values().any(|c| c.degraded);
    }

    /// Answers `SyncNow` callers waiting for a run that has nothing left to do.
    fn answer_waiting_empty(&mut self) {
        for reply in std::mem::take(&mut self.waiting) {
            if !reply.is_closed() {
                let _ = reply.send(SyncReport::default());
            }
        }
    }

    /// Starts a run of the due sources unless one is under way.
    fn maybe_start(&mut self, myself: &ActorRef<SyncMsg>) {
        if self.run.is_some() {
            return;
        }
        let due = std::mem::take(&mut self.due);
        let jobs: Vec<(String, Result<Arc<Source>, String>)> =
            due.into_iter().filter_map(|c| self.slots.get(&c).map(|s| (c, s.source.clone()))).collect();
        if jobs.is_empty() {
            self.answer_waiting_empty();
            return;
        }
        self.replies = std::mem::take(&mut self.waiting);
        self.status.running = true;
        let (catalog, settings, hooks) = (self.catalog.clone(), self.settings.clone(), self.hooks.clone());
        let myself = myself.clone();
        self.run = Some(tokio::spawn(async move {
            let mut reports = Vec::with_capacity(jobs.len());
            for (channel, source) in jobs {
                reports.push(match source {
                    Ok(s) => sync_channel(&s, &channel, &catalog, &settings, &hooks).await,
                    Err(e) => SyncReport { channels: vec![channel], errors: vec![e], degraded: true, ..Default::default() },
                });
            }
            let _ = myself.send_message(SyncMsg::Finished(reports));
        }));
    }

    /// A run ended: records its reports and answers the callers that waited for it.
    fn finished(&mut self, reports: Vec<SyncReport>) {
        self.run = None;
        self.status.running = false;
        self.status.runs += 1;
        let mut merged = SyncReport::default();
        for r in reports {
            self.status.record(&r);
            merged.merge(r);
        }
        self.prune_status();
        for reply in std::mem::take(&mut self.replies) {
            if !reply.is_closed() {
                let _ = reply.send(merged.clone());
            }
        }
    }
}

/// Sends the first tick of newly opened sources.
fn send_ticks(myself: &ActorRef<SyncMsg>, ticks: Vec<(String, u64)>) -> Result<(), ActorProcessingErr> {
    for (channel, generation) in ticks {
        myself.send_message(SyncMsg::Tick { channel, generation })?;
    }
    Ok(())
}

impl Actor for SyncActor {
    type Msg = SyncMsg;
    type State = SyncState;
    type Arguments = SyncArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, mut args: SyncArgs) -> Result<SyncState, ActorProcessingErr> {
        let sources = std::mem::take(&mut args.sources);
        let mut state = SyncState::new(args);
        let ticks = state.set_sources(sources).await;
        send_ticks(&myself, ticks)?;
        Ok(state)
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SyncMsg::Tick { channel, generation } => {
                if let Some(interval) = state.tick(&channel, generation) {
                    myself.send_after(interval, move || SyncMsg::Tick { channel, generation });
                    state.maybe_start(&myself);
                }
            }
            SyncMsg::SyncNow(reply) => {
                state.due.extend(state.slots.keys().cloned());
                state.waiting.push(reply);
                state.maybe_start(&myself);
            }
            SyncMsg::Status(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.status.clone());
                }
            }
            SyncMsg::SetSources(sources) => {
                let ticks = state.set_sources(sources).await;
                send_ticks(&myself, ticks)?;
            }
            SyncMsg::Finished(reports) => {
                state.finished(reports);
                state.maybe_start(&myself);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // An interrupted run is like a crash: Pending entries are redone next time.
        if let Some(run) = state.run.take() {
            run.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::call_t;
    use std::time::Instant;

    fn file_spec(channel: &str, store: &std::path::Path, interval: Duration) -> SourceSpec {
        SourceSpec { channel: channel.into(), url: format!("file://{}", store.display()), options: vec![], interval }
    }

    /// A catalog, cache settings and a `file://` store with `rock/notes.txt`.
    fn setup(dir: &std::path::Path) -> (std::path::PathBuf, SyncArgs) {
        let store = dir.join("store");
        std::fs::create_dir_all(store.join("rock")).unwrap();
        std::fs::write(store.join("rock/notes.txt"), "not media").unwrap();
        let catalog = Catalog::open(&dir.join("catalog")).unwrap();
        let mut settings = SyncSettings::new(dir.join("cache"));
        settings.disk_floor_bytes = 0;
        (store, SyncArgs { sources: vec![], catalog, settings, hooks: SyncHooks::default() })
    }

    async fn status(actor: &ActorRef<SyncMsg>) -> SyncStatus {
        call_t!(actor, SyncMsg::Status, 1_000).unwrap()
    }

    /// Polls the status until `ok` holds.
    async fn wait_for(actor: &ActorRef<SyncMsg>, what: &str, ok: impl Fn(&SyncStatus) -> bool) -> SyncStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = status(actor).await;
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn answers_status_and_sync_now_and_ticks_on_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut args) = setup(dir.path());
        args.sources = vec![
            file_spec("rock", &store, Duration::from_millis(100)),
            SourceSpec { channel: "jazz".into(), url: "ftp://nowhere/x".into(), options: vec![], interval: Duration::ZERO },
        ];
        let (actor, handle) = Actor::spawn(None, SyncActor, args).await.unwrap();
        let report: SyncReport = call_t!(actor, SyncMsg::SyncNow, 10_000).unwrap();
        assert_eq!(report.channels.len(), 2);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].reason.contains("refused"), "{report:?}");
        assert!(report.errors.iter().any(|e| e.contains("jazz") && e.contains("ftp://nowhere/x")), "{report:?}");
        // The rock source keeps ticking by itself.
        let status = wait_for(&actor, "3 runs", |s| s.runs >= 3).await;
        assert!(status.channels["rock"].last_run_unix_ms.is_some());
        assert!(status.channels["jazz"].degraded);
        actor.stop(None);
        handle.await.unwrap();
    }

    #[test]
    fn plan_keeps_same_specs_and_reopens_changed_ones() {
        let store = std::path::Path::new("/srv/store");
        let rock = file_spec("rock", store, Duration::from_secs(60));
        let jazz = file_spec("jazz", store, Duration::from_secs(60));
        let plan = plan_sources([&rock, &jazz], vec![rock.clone()]);
        assert_eq!(plan, BTreeMap::from([("jazz".into(), SourceChange::Remove), ("rock".into(), SourceChange::Keep)]));
        let faster = file_spec("rock", store, Duration::from_secs(5));
        let folk = file_spec("folk", store, Duration::ZERO);
        let plan = plan_sources([&rock], vec![faster.clone(), folk.clone()]);
        assert_eq!(plan, BTreeMap::from([("folk".into(), SourceChange::Open(folk)), ("rock".into(), SourceChange::Open(faster))]));
        assert!(plan_sources([], vec![]).is_empty());
    }

    #[tokio::test]
    async fn stale_ticks_are_ignored_and_same_specs_keep_their_timer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, args) = setup(dir.path());
        let mut state = SyncState::new(args);
        let spec = file_spec("rock", &store, Duration::from_millis(100));
        let ticks = state.set_sources(vec![spec.clone()]).await;
        assert_eq!(ticks, [("rock".to_string(), 1)]);
        assert!(state.slots["rock"].source.is_ok());
        // The same spec again: no new timer chain, the old one stays current.
        assert!(state.set_sources(vec![spec.clone()]).await.is_empty());
        assert_eq!(state.tick("rock", 1), Some(Duration::from_millis(100)));
        assert!(state.due.contains("rock"));
        // A changed spec: a new generation; the old chain's next tick is dropped.
        let slower = file_spec("rock", &store, Duration::from_millis(300));
        assert_eq!(state.set_sources(vec![slower]).await, [("rock".to_string(), 2)]);
        assert!(!state.due.contains("rock"), "a replaced source's pending run is dropped");
        assert_eq!(state.tick("rock", 1), None);
        assert_eq!(state.tick("rock", 2), Some(Duration::from_millis(300)));
        // Removed: every tick is stale.
        assert!(state.set_sources(vec![]).await.is_empty());
        assert_eq!((state.tick("rock", 2), state.due.len()), (None, 0));
    }

    #[tokio::test]
    async fn set_sources_starts_and_stops_syncing_a_channel() {
        let dir = tempfile::tempdir().unwrap();
        let (store, args) = setup(dir.path());
        let (actor, handle) = Actor::spawn(None, SyncActor, args).await.unwrap();
        let empty: SyncReport = call_t!(actor, SyncMsg::SyncNow, 1_000).unwrap();
        assert_eq!(empty, SyncReport::default());

        let spec = file_spec("rock", &store, Duration::from_millis(100));
        actor.send_message(SyncMsg::SetSources(vec![spec.clone()])).unwrap();
        let s = wait_for(&actor, "rock synced", |s| s.runs >= 2 && s.channels.contains_key("rock")).await;
        assert_eq!(s.channels["rock"].listed, 1, "{s:?}");

        // The same spec again does not start a second timer chain: with one chain a
        // 100 ms interval allows about 10 runs a second (20 with two).
        actor.send_message(SyncMsg::SetSources(vec![spec.clone()])).unwrap();
        actor.send_message(SyncMsg::SetSources(vec![spec])).unwrap();
        let before = status(&actor).await.runs;
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let runs = status(&actor).await.runs - before;
        assert!((1..=13).contains(&runs), "{runs} runs in 1 s at a 100 ms interval");

        // Removed: the run under way (if any) finishes, then no more runs.
        actor.send_message(SyncMsg::SetSources(vec![])).unwrap();
        let s = wait_for(&actor, "the last run to end", |s| !s.running).await;
        assert!(!s.channels.contains_key("rock"), "a removed source leaves the status: {s:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(status(&actor).await.runs, s.runs, "a removed source kept ticking");
        actor.stop(None);
        handle.await.unwrap();
    }
}
