//! `HlsActor`: runs one [`Segmenter`] per channel the node serves as HLS.

use super::segmenter::{HlsSettings, Segmenter};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Registry name of the node's HLS actor.
pub const ACTOR_NAME: &str = "hls";

#[derive(Debug, Clone)]
pub struct HlsArgs {
    pub settings: HlsSettings,
}

#[derive(Debug)]
pub enum HlsMsg {
    /// Serves the channel sent to `group:port` as HLS (a running one is restarted when
    /// its group changed).
    Start { channel: String, group: Ipv4Addr, port: u16, interface: Ipv4Addr },
    Stop { channel: String },
    /// The channels served.
    Channels(RpcReplyPort<Vec<String>>),
}

#[derive(Debug, Clone, Copy)]
pub struct HlsActor;

pub struct HlsState {
    settings: HlsSettings,
    running: BTreeMap<String, ((Ipv4Addr, u16, Ipv4Addr), Segmenter)>,
}

impl std::fmt::Debug for HlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsState").field("channels", &self.running.keys().collect::<Vec<_>>()).finish()
    }
}

async fn stop_segmenter(mut s: Segmenter) {
    let _ = tokio::task::spawn_blocking(move || s.stop()).await;
}

impl Actor for HlsActor {
    type Msg = HlsMsg;
    type State = HlsState;
    type Arguments = HlsArgs;

    async fn pre_start(&self, _: ActorRef<HlsMsg>, args: HlsArgs) -> Result<HlsState, ActorProcessingErr> {
        std::fs::create_dir_all(&args.settings.dir)?;
        Ok(HlsState { settings: args.settings, running: BTreeMap::new() })
    }

    async fn handle(&self, _: ActorRef<HlsMsg>, msg: HlsMsg, state: &mut HlsState) -> Result<(), ActorProcessingErr> {
        match msg {
            HlsMsg::Start { channel, group, port, interface } => {
                let key = (group, port, interface);
                if state.running.get(&channel).is_some_and(|(k, _)| *k == key) {
                    return Ok(());
                }
                if let Some((_, old)) = state.running.remove(&channel) {
                    stop_segmenter(old).await;
                }
                match Segmenter::start(&channel, group, port, interface, &state.settings) {
                    Ok(s) => {
                        tracing::info!(channel = %channel, group = %group, port, "serving the channel as HLS");
                        state.running.insert(channel, (key, s));
                    }
                    Err(e) => tracing::error!(channel = %channel, error = %e, "cannot serve the channel as HLS"),
                }
            }
            HlsMsg::Stop { channel } => {
                if let Some((_, s)) = state.running.remove(&channel) {
                    tracing::info!(channel = %channel, "no longer serving the channel as HLS");
                    stop_segmenter(s).await;
                }
            }
            HlsMsg::Channels(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.running.keys().cloned().collect());
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<HlsMsg>, state: &mut HlsState) -> Result<(), ActorProcessingErr> {
        for (_, (_, s)) in std::mem::take(&mut state.running) {
            stop_segmenter(s).await;
        }
        Ok(())
    }
}
