//! The node's encode side: `[channels.render]` + `[channels.encode]` become the encode
//! pool's channel builds; `start` launches the node's browser and the pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headend_actors::encode::{EncodeProfile, TsLayout};
use headend_actors::jobs::build::ChannelBuild;
use headend_actors::jobs::pool::{EncodePool, PoolArgs, PoolMsg, PoolSettings, ACTOR_NAME};
use headend_actors::jobs::record::JobRecords;
use headend_actors::render::{BrowserSettings, Renderer, Template};
use headend_actors::supervise::{Restarter, RestarterMsg};
use ractor::{Actor, ActorRef};
use std::sync::Arc;

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

/// Where a channel's media to render are: `render.media`, else its sync cache folder
/// under `cache_root`; `None` for a channel that is not rendered or has neither.
pub fn media_dir(c: &ChannelConfig, cache_root: &Path) -> Option<PathBuf> {
    let render = c.render.as_ref()?;
    render.media.clone().or_else(|| crate::sync::cache_folder(c, cache_root))
}

/// The build of one rendered channel from the media in `media_dir` into the items
/// folder under `data_dir`; `None` for a channel that is not rendered.
pub fn channel_build(c: &ChannelConfig, media_dir: PathBuf, data_dir: &Path) -> anyhow::Result<Option<ChannelBuild>> {
    let Some(render) = &c.render else { return Ok(None) };
    let template: Template = render.template.parse().map_err(|e| anyhow::anyhow!("channels[{:?}].render.template: {e}", c.id))?;
    Ok(Some(ChannelBuild {
        channel: c.id.clone(),
        name: c.name.clone(),
        media_dir,
        items_dir: items_dir(data_dir, &c.id),
        template,
        allow_network: render.allow_network,
        logo: None,
        profile: profile(c),
    }))
}

/// The channel builds of every rendered channel. The config must have passed `validate()`.
pub fn channel_builds(config: &Config) -> anyhow::Result<Vec<ChannelBuild>> {
    let cache_root = crate::sync::cache_root(config);
    let mut out = Vec::new();
    for c in &config.channels {
        let Some(media_dir) = media_dir(c, &cache_root) else { continue };
        out.extend(channel_build(c, media_dir, &config.node.data_dir)?);
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

/// The node's browser and encode pool, started when the first channel to build arrives
/// (a node of a cluster may never render anything: it then never runs Chromium). The
/// pool runs under a `Restarter`, registered as `encode`; [`Encoder::set`] hands it the
/// channels to build, the config file's and those the cluster places here.
#[derive(Clone)]
pub struct Encoder {
    data_dir: PathBuf,
    browser: BrowserSettings,
    settings: PoolSettings,
    running: Arc<tokio::sync::Mutex<Option<Running>>>,
}

/// The browser and the pool's restarter, once started.
type Running = (Renderer, ActorRef<RestarterMsg>);

impl Encoder {
    pub fn new(config: &Config) -> Self {
        let data_dir = config.node.data_dir.clone();
        let mut browser = BrowserSettings::new(data_dir.join("browser"));
        let e = &config.node.encode;
        if e.chromium != Path::new("/usr/bin/chromium-headless-shell") {
            browser.executable = e.chromium.clone();
        }
        browser.frame_timeout = Duration::from_secs(e.frame_timeout_secs);
        Encoder { data_dir, browser, settings: pool_settings(config), running: Arc::default() }
    }

    /// Builds exactly `builds` from now on: starts the browser and pool on the first
    /// non-empty set; later sets replace the pool's channels (unchanged ones keep their
    /// jobs). Idempotent, so a caller may repeat it (a restarted pool gets it back).
    pub async fn set(&self, builds: Vec<ChannelBuild>) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_none() {
            if builds.is_empty() {
                return Ok(());
            }
            for b in &builds {
                std::fs::create_dir_all(&b.items_dir).map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", b.items_dir.display()))?;
            }
            let renderer = Renderer::start(self.browser.clone()).await.map_err(|e| anyhow::anyhow!("node.encode.chromium: {e}"))?;
            let path = self.data_dir.join("encode.sled");
            let records = tokio::task::spawn_blocking(move || JobRecords::open(&path)).await??;
            let args = PoolArgs { channels: builds, renderer: renderer.clone(), records, settings: self.settings.clone() };
            let restarter = Restarter { child: EncodePool, name: ACTOR_NAME.into() };
            let (actor, _) = Actor::spawn(None, restarter, args).await?;
            *running = Some((renderer, actor));
            return Ok(());
        }
        if let Some(p) = pool() {
            p.cast(PoolMsg::SetChannels(builds))?;
        }
        Ok(())
    }

    /// Stops the pool and the browser, if they run.
    pub async fn shutdown(&self) {
        if let Some((renderer, pool)) = self.running.lock().await.take() {
            pool.stop(Some("shutdown".into()));
            renderer.shutdown().await;
        }
    }
}

/// Starts the node's encoder with the config file's rendered channels (the browser and
/// pool start only when there is one).
pub async fn start(config: &Config) -> anyhow::Result<Encoder> {
    let encoder = Encoder::new(config);
    encoder.set(channel_builds(config)?).await?;
    Ok(encoder)
}

/// Waits until the pool is registered (after `start`).
pub fn pool() -> Option<ActorRef<PoolMsg>> {
    ractor::registry::where_is(ACTOR_NAME).map(ActorRef::from)
}
