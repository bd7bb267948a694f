//! The node's encode side: `[channels.render]` + `[channels.encode]` become the encode
//! pool's channel builds; `start` launches the node's browser and the pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headend_actors::encode::{EncodeProfile, TsLayout};
use headend_actors::jobs::build::ChannelBuild;
use headend_actors::jobs::pool::{EncodePool, PoolArgs, PoolMsg, PoolSettings, ACTOR_NAME};
use headend_actors::jobs::record::JobRecords;
use headend_actors::render::{BrowserSettings, Renderer, Template};
use headend_actors::supervise::Restarter;
use ractor::{Actor, ActorRef};

use crate::config::{ChannelConfig, Config};
use crate::spec::items_dir;

/// The encode profile of a channel's items: its `[channels.encode]` format with the
/// channel's PIDs and service.
pub fn profile(c: &ChannelConfig) -> EncodeProfile {
    let mut p = c.encode.clone().unwrap_or_default().profile();
    p.ts = TsLayout {
        pmt_pid: c.pids.pmt,
        video_pid: c.pids.video,
        audio_pid: c.pids.audio,
        service_id: c.program_number,
        service_name: c.service_name().to_string(),
        provider: c.provider.clone(),
    };
    p
}

/// Where a channel's media to render are: `render.media`, else its sync cache folder.
pub fn media_dir(config: &Config, c: &ChannelConfig) -> Option<PathBuf> {
    let render = c.render.as_ref()?;
    if let Some(m) = &render.media {
        return Some(m.clone());
    }
    Some(crate::sync::cache_root(config).join(crate::sync::channel_folder(c)?))
}

/// The channel builds of every rendered channel. The config must have passed `validate()`.
pub fn channel_builds(config: &Config) -> anyhow::Result<Vec<ChannelBuild>> {
    let mut out = Vec::new();
    for c in &config.channels {
        let Some(render) = &c.render else { continue };
        let Some(media_dir) = media_dir(config, c) else { continue };
        let template: Template = render.template.parse().map_err(|e| anyhow::anyhow!("channels[{:?}].render.template: {e}", c.id))?;
        out.push(ChannelBuild {
            channel: c.id.clone(),
            name: c.name.clone(),
            media_dir,
            items_dir: items_dir(&config.node.data_dir, &c.id),
            template,
            allow_network: render.allow_network,
            logo: None,
            profile: profile(c),
        });
    }
    Ok(out)
}

/// Creates the items folder of every rendered channel (its playlist folder), so playout
/// finds an empty folder, not a missing one, before the first item is built.
pub fn create_items_dirs(config: &Config) -> std::io::Result<()> {
    for c in config.channels.iter().filter(|c| c.render.is_some()) {
        std::fs::create_dir_all(items_dir(&config.node.data_dir, &c.id))?;
    }
    Ok(())
}

/// The pool's settings from `[node.encode]`.
pub fn pool_settings(config: &Config) -> PoolSettings {
    let e = &config.node.encode;
    PoolSettings {
        workers: if e.workers == 0 { PoolSettings::auto_workers() } else { e.workers },
        min_free_bytes: e.min_free_bytes,
        scan_every: Duration::from_secs(5),
        template_check_every: Duration::from_secs(e.template_check_secs),
    }
}

/// Starts the node's browser and the encode pool (under a `Restarter`, registered as
/// `encode`) when a channel is rendered; `None` otherwise.
pub async fn start(config: &Config) -> anyhow::Result<Option<(Renderer, ActorRef<headend_actors::supervise::RestarterMsg>)>> {
    let builds = channel_builds(config)?;
    if builds.is_empty() {
        return Ok(None);
    }
    let data_dir: &Path = &config.node.data_dir;
    let mut browser = BrowserSettings::new(data_dir.join("browser"));
    let e = &config.node.encode;
    if e.chromium != Path::new("/usr/bin/chromium-headless-shell") {
        browser.executable = e.chromium.clone();
    }
    browser.frame_timeout = Duration::from_secs(e.frame_timeout_secs);
    let renderer = Renderer::start(browser).await.map_err(|e| anyhow::anyhow!("node.encode.chromium: {e}"))?;
    let path = data_dir.join("encode.sled");
    let records = tokio::task::spawn_blocking(move || JobRecords::open(&path)).await??;
    let args = PoolArgs { channels: builds, renderer: renderer.clone(), records, settings: pool_settings(config) };
    let restarter = Restarter { child: EncodePool, name: ACTOR_NAME.into() };
    let (actor, _) = Actor::spawn(None, restarter, args).await?;
    Ok(Some((renderer, actor)))
}

/// Waits until the pool is registered (after `start`).
pub fn pool() -> Option<ActorRef<PoolMsg>> {
    ractor::registry::where_is(ACTOR_NAME).map(ActorRef::from)
}
