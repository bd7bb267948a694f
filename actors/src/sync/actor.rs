//! The node's sync actor: runs the sync engine for each configured source on its interval
//! (a self-sent tick), or at once on `SyncNow`, and answers `Status` at any time. A run
//! happens on its own task, so the actor keeps answering while it transfers; runs do
//! not overlap (ticks that arrive during a run are folded into the next one).

use super::catalog::Catalog;
use super::engine::{sync_channel, SyncHooks, SyncSettings};
use super::report::{SyncReport, SyncStatus};
use super::source::Source;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeSet;
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

#[derive(Debug, Clone)]
pub struct SyncArgs {
    pub sources: Vec<SourceSpec>,
    pub catalog: Catalog,
    pub settings: SyncSettings,
    pub hooks: SyncHooks,
}

#[derive(Debug)]
pub enum SyncMsg {
    /// The source with this index is due.
    Tick(usize),
    /// Sync every source now; the reply comes when that run is done.
    SyncNow(RpcReplyPort<SyncReport>),
    Status(RpcReplyPort<SyncStatus>),
    /// A run finished (sent by the run's task).
    Finished(Vec<SyncReport>),
}

#[derive(Debug, Clone, Copy)]
pub struct SyncActor;

pub struct SyncState {
    args: SyncArgs,
    /// Opened once; a source that cannot be opened reports why on each run.
    sources: Vec<Result<Arc<Source>, String>>,
    status: SyncStatus,
    run: Option<tokio::task::JoinHandle<()>>,
    due: BTreeSet<usize>,
    waiting: Vec<RpcReplyPort<SyncReport>>,
    replies: Vec<RpcReplyPort<SyncReport>>,
}

impl std::fmt::Debug for SyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncState").field("sources", &self.args.sources.len()).field("running", &self.run.is_some()).finish()
    }
}

impl SyncState {
    /// Starts a run of the due sources unless one is under way.
    fn maybe_start(&mut self, myself: &ActorRef<SyncMsg>) {
        if self.run.is_some() || self.due.is_empty() {
            return;
        }
        let jobs: Vec<(String, Result<Arc<Source>, String>)> =
            std::mem::take(&mut self.due).into_iter().map(|i| (self.args.sources[i].channel.clone(), self.sources[i].clone())).collect();
        self.replies = std::mem::take(&mut self.waiting);
        self.status.running = true;
        let (catalog, settings, hooks) = (self.args.catalog.clone(), self.args.settings.clone(), self.args.hooks.clone());
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
}

impl Actor for SyncActor {
    type Msg = SyncMsg;
    type State = SyncState;
    type Arguments = SyncArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: SyncArgs) -> Result<SyncState, ActorProcessingErr> {
        let sources = args
            .sources
            .iter()
            .map(|s| Source::open(&s.url, &s.options).map(Arc::new).map_err(|e| format!("{}: {e}", s.channel)))
            .collect();
        for (i, s) in args.sources.iter().enumerate() {
            if !s.interval.is_zero() {
                myself.send_message(SyncMsg::Tick(i))?;
            }
        }
        let state = SyncState {
            args,
            sources,
            status: SyncStatus::default(),
            run: None,
            due: BTreeSet::new(),
            waiting: Vec::new(),
            replies: Vec::new(),
        };
        Ok(state)
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SyncMsg::Tick(i) => {
                let Some(spec) = state.args.sources.get(i) else { return Ok(()) };
                myself.send_after(spec.interval, move || SyncMsg::Tick(i));
                state.due.insert(i);
                state.maybe_start(&myself);
            }
            SyncMsg::SyncNow(reply) => {
                state.due.extend(0..state.args.sources.len());
                state.waiting.push(reply);
                if state.args.sources.is_empty() {
                    for r in std::mem::take(&mut state.waiting) {
                        let _ = r.send(SyncReport::default());
                    }
                }
                state.maybe_start(&myself);
            }
            SyncMsg::Status(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.status.clone());
                }
            }
            SyncMsg::Finished(reports) => {
                state.run = None;
                state.status.running = false;
                state.status.runs += 1;
                let mut merged = SyncReport::default();
                for r in reports {
                    state.status.record(&r);
                    merged.merge(r);
                }
                for reply in std::mem::take(&mut state.replies) {
                    if !reply.is_closed() {
                        let _ = reply.send(merged.clone());
                    }
                }
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

    #[tokio::test]
    async fn answers_status_and_sync_now_and_ticks_on_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(store.join("rock")).unwrap();
        std::fs::write(store.join("rock/notes.txt"), "not media").unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog")).unwrap();
        let mut settings = SyncSettings::new(dir.path().join("cache"));
        settings.disk_floor_bytes = 0;
        let sources = vec![
            SourceSpec {
                channel: "rock".into(),
                url: format!("file://{}", store.display()),
                options: vec![],
                interval: Duration::from_millis(100),
            },
            SourceSpec { channel: "jazz".into(), url: "ftp://nowhere/x".into(), options: vec![], interval: Duration::ZERO },
        ];
        let args = SyncArgs { sources, catalog, settings, hooks: SyncHooks::default() };
        let (actor, handle) = Actor::spawn(None, SyncActor, args).await.unwrap();
        let report: SyncReport = call_t!(actor, SyncMsg::SyncNow, 10_000).unwrap();
        assert_eq!(report.channels.len(), 2);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].reason.contains("refused"), "{report:?}");
        assert!(report.errors.iter().any(|e| e.contains("jazz") && e.contains("ftp://nowhere/x")), "{report:?}");
        // The rock source keeps ticking by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status: SyncStatus = call_t!(actor, SyncMsg::Status, 1_000).unwrap();
            if status.runs >= 3 {
                assert!(status.channels["rock"].last_run_unix_ms.is_some());
                assert!(status.channels["jazz"].degraded);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no ticks: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        actor.stop(None);
        handle.await.unwrap();
    }
}
