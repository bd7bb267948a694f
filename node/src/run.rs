//! Runs a node: the playout supervisor with one actor per channel, and the HTTP API,
//! until `shutdown` resolves.

use crate::config::Config;
use crate::spec::channel_spec;
use crate::reconcile::Reconciler;
use headend_actors::hls::{HlsActor, HlsArgs, HlsSettings, ACTOR_NAME as HLS};
use headend_actors::recorder::{RecorderActor, RecorderArgs, SegmentIndex, ACTOR_NAME as RECORDER};
use headend_actors::playout::clock::{Clock, MonotonicClock};
use headend_actors::playout::supervisor::{PlayoutArgs, PlayoutSupervisor};
use headend_actors::sync::actor as sync_actor;
use headend_actors::sync::engine::SyncHooks;
use headend_actors::supervise::Restarter;
use ractor::Actor;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Runs the node with an already bound HTTP listener (tests bind port 0).
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    crate::encode::create_items_dirs(&config)?;
    let specs: Vec<_> = config.channels.iter().map(|c| channel_spec(c, &config.node.data_dir, &crate::sync::cache_root(&config))).collect();
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let args = PlayoutArgs { channels: specs, data_dir: config.node.data_dir.clone(), clock: clock.clone() };
    let (supervisor, supervisor_done) = Actor::spawn(Some("playout".into()), PlayoutSupervisor, args).await?;
    // Media sync, when a channel has a source. The player keeps the file it plays open,
    // so a removed item is never pulled from under it even when its file is deleted.
    let sync = match crate::sync::actor_args(&config, SyncHooks::default())? {
        Some(args) => {
            let restarter = Restarter { child: sync_actor::SyncActor, name: sync_actor::ACTOR_NAME.into() };
            Some(Actor::spawn(None, restarter, args).await?.0)
        }
        None => None,
    };
    // Render + encode, when a channel is rendered: the node's browser and encode pool.
    let encode = crate::encode::start(&config).await?;
    // Raft and the gRPC admin API, when the config has [node.cluster].
    let cluster = crate::grpc::start(&config).await?;
    // In a cluster, the reconciler runs the replicated channels this node has a role for,
    // and the recorder records the groups it backs up.
    let mut recorder = None;
    let mut hls = None;
    if let (Some(runtime), Some(c)) = (&cluster, &config.node.cluster) {
        let settings = config.node.recorder.settings(&config.node.data_dir);
        std::fs::create_dir_all(&settings.dir)?;
        let index = SegmentIndex::open(&settings.dir.join("index.sled"))?;
        let restarter = Restarter { child: RecorderActor, name: RECORDER.into() };
        recorder = Some(Actor::spawn(None, restarter, RecorderArgs { settings, index: Some(index) }).await?.0);
        let settings = HlsSettings::new(config.node.data_dir.join("hls"));
        let restarter = Restarter { child: HlsActor, name: HLS.into() };
        hls = Some(Actor::spawn(None, restarter, HlsArgs { settings }).await?.0);
        let reconciler = Reconciler {
            cluster: runtime.handle().clone(),
            supervisor: supervisor.clone(),
            node: config.node.id.clone(),
            data_dir: config.node.data_dir.clone(),
            failover: config.node.failover.clone(),
            interface: c.interfaces.first().copied(),
            local_ids: ids.iter().cloned().collect(),
            clock: clock.clone(),
            rtsp: None,
            cache_root: crate::sync::cache_root(&config),
            sync_interval_secs: config.node.sync.interval_secs,
            local_sources: crate::sync::sources(&config),
            local_builds: crate::encode::channel_builds(&config)?,
            encoder: encode.clone(),
        };
        let mut reconciler = reconciler;
        if let Some(addr) = config.node.rtsp_listen {
            let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("node.rtsp_listen {addr}: cannot listen: {e}"))?;
            let channels = crate::rtsp::RtspChannels::default();
            tokio::spawn(crate::rtsp::serve(listener, channels.clone(), runtime.stopping()));
            tracing::info!(rtsp = %addr, "RTSP server listening");
            reconciler.rtsp = Some(channels);
        }
        tokio::spawn(reconciler.run(runtime.stopping()));
    }
    tracing::info!(node = %config.node.id, http = %listener.local_addr()?, channels = ids.len(), "node started");
    let served = axum::serve(listener, crate::http::router(ids, config.node.data_dir.clone())).with_graceful_shutdown(shutdown).await;
    tracing::info!("shutting down");
    if let Some(cluster) = cluster {
        cluster.stop().await;
    }
    if let Some(sync) = sync {
        sync.stop(Some("shutdown".into()));
    }
    if let Some(hls) = hls {
        let _ = hls.stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10))).await;
    }
    if let Some(recorder) = recorder {
        let _ = recorder.stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10))).await;
    }
    encode.shutdown().await;
    supervisor.stop(Some("shutdown".into()));
    let _ = tokio::time::timeout(Duration::from_secs(10), supervisor_done).await;
    served?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
