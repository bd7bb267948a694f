//! The node's side of media sync: the sync actor's arguments from the configuration,
//! `headend sync --once` with progress bars, and the status the HTTP API serves.

use crate::config::{ChannelConfig, Config};
use headend_actors::sync::actor::{SourceSpec, SyncArgs};
use headend_actors::sync::catalog::Catalog;
use headend_actors::sync::engine::{sync_channel, SyncHooks, SyncSettings};
use headend_actors::sync::report::{Progress, SyncReport};
use headend_actors::sync::source::Source;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The node's cache folder: `node.sync.cache_dir`, else `<data_dir>/cache`.
pub fn cache_root(config: &Config) -> PathBuf {
    config.node.sync.cache_dir.clone().unwrap_or_else(|| config.node.data_dir.join("cache"))
}

/// The folder under the source (and under the cache) a channel syncs: `sync.folder`, else
/// the channel id. `None` for a channel without `[channels.sync]`.
pub fn channel_folder(c: &ChannelConfig) -> Option<String> {
    Some(c.sync.as_ref()?.folder.clone().unwrap_or_else(|| c.id.clone()))
}

/// Where a synced channel's media land on a node whose cache is `cache_root`; `None` for
/// a channel without `[channels.sync]`.
pub fn cache_folder(c: &ChannelConfig, cache_root: &Path) -> Option<PathBuf> {
    Some(cache_root.join(channel_folder(c)?))
}

/// The source of a channel with a `[channels.sync]` section; `default_interval_secs` is
/// `node.sync.interval_secs`.
pub fn source_spec(c: &ChannelConfig, default_interval_secs: u64) -> Option<SourceSpec> {
    let s = c.sync.as_ref()?;
    Some(SourceSpec {
        channel: channel_folder(c)?,
        url: s.source.clone(),
        options: s.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        interval: Duration::from_secs(s.interval_secs.unwrap_or(default_interval_secs)),
    })
}

/// The sources configured on this node (channels with a `[channels.sync]` section).
pub fn sources(config: &Config) -> Vec<SourceSpec> {
    config.channels.iter().filter_map(|c| source_spec(c, config.node.sync.interval_secs)).collect()
}

/// Sync settings from `[node.sync]`.
pub fn settings(config: &Config) -> SyncSettings {
    let s = &config.node.sync;
    let cache = cache_root(config);
    SyncSettings {
        parallelism: s.parallel,
        max_object_bytes: s.max_object_bytes,
        disk_floor_bytes: s.disk_floor_bytes,
        bandwidth_bytes_per_second: s.bandwidth_bytes_per_second,
        ..SyncSettings::new(cache)
    }
}

/// Opens the node's catalog (`<data_dir>/catalog`).
pub fn catalog(config: &Config) -> anyhow::Result<Catalog> {
    let path = config.node.data_dir.join("catalog");
    std::fs::create_dir_all(&config.node.data_dir)?;
    Ok(Catalog::open(&path)?)
}

/// The sync actor's arguments, or `None` when no channel syncs and the node is not in a
/// cluster (whose reconciler hands the actor the replicated channels' sources).
pub fn actor_args(config: &Config, hooks: SyncHooks) -> anyhow::Result<Option<SyncArgs>> {
    let sources = sources(config);
    if sources.is_empty() && config.node.cluster.is_none() {
        return Ok(None);
    }
    Ok(Some(SyncArgs { sources, catalog: catalog(config)?, settings: settings(config), hooks }))
}

/// Progress bars: objects and bytes of the run.
struct Bars {
    objects: ProgressBar,
    bytes: ProgressBar,
}

impl Progress for Bars {
    fn planned(&self, objects: u64, bytes: u64) {
        self.objects.inc_length(objects);
        self.bytes.inc_length(bytes);
    }
    fn object_done(&self, key: &str, bytes: u64, ok: bool) {
        self.objects.inc(1);
        self.bytes.inc(bytes);
        if !ok {
            self.objects.println(format!("failed: {key}"));
        }
        self.objects.set_message(key.to_string());
    }
}

/// Runs every configured source once, with progress bars when `bars` is set.
pub async fn sync_once(config: &Config, bars: bool) -> anyhow::Result<SyncReport> {
    let specs = sources(config);
    anyhow::ensure!(!specs.is_empty(), "no channel has a [channels.sync] section in {}", config.source_name);
    let catalog = catalog(config)?;
    let settings = settings(config);
    let multi = MultiProgress::new();
    if !bars {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let objects = multi.add(ProgressBar::new(0).with_style(
        ProgressStyle::with_template("objects {bar:30} {pos}/{len} {wide_msg}").expect("template"),
    ));
    let bytes = multi.add(ProgressBar::new(0).with_style(
        ProgressStyle::with_template("bytes   {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").expect("template"),
    ));
    let hooks = SyncHooks { progress: Arc::new(Bars { objects: objects.clone(), bytes: bytes.clone() }), ..SyncHooks::default() };
    let mut total: Option<SyncReport> = None;
    for spec in &specs {
        let report = match Source::open(&spec.url, &spec.options) {
            Ok(source) => sync_channel(&source, &spec.channel, &catalog, &settings, &hooks).await,
            Err(e) => SyncReport { channels: vec![spec.channel.clone()], errors: vec![e.to_string()], degraded: true, ..Default::default() },
        };
        match &mut total {
            None => total = Some(report),
            Some(t) => t.merge(report),
        }
    }
    objects.finish();
    bytes.finish();
    Ok(total.expect("at least one source"))
}
