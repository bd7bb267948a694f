//! Supervises a node's channels: one [`Restarter`] per channel keeps its
//! `ChannelActor` running under its registry name (restart with exponential backoff),
//! and stopping this supervisor stops them all.

use super::actor::{actor_name, ChannelActor, ChannelEnv};
use super::clock::Clock;
use super::spec::ChannelSpec;
use crate::supervise::{Restarter, RestarterMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments: the channels and where their state lives.
#[derive(Debug, Clone)]
pub struct PlayoutArgs {
    pub channels: Vec<ChannelSpec>,
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
}

/// Orders from the node (in a cluster, its reconciler).
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Runs the channel with this spec and environment; a running channel with another
    /// spec is restarted with the new one.
    Ensure { spec: Box<ChannelSpec>, env: Box<ChannelEnv> },
    /// Stops the channel.
    Remove { id: String },
    /// The ids of the running channels.
    Running(RpcReplyPort<Vec<String>>),
}

#[derive(Debug)]
pub struct PlayoutState {
    channels: BTreeMap<String, (ChannelSpec, ActorRef<RestarterMsg>)>,
}

#[derive(Debug)]
pub struct PlayoutSupervisor;

/// The state directory of a channel under the node's data directory.
pub fn state_dir(data_dir: &std::path::Path, id: &str) -> PathBuf {
    data_dir.join("channels").join(id)
}

async fn spawn(myself: &ActorRef<SupervisorMsg>, spec: ChannelSpec, env: ChannelEnv) -> Result<ActorRef<RestarterMsg>, ActorProcessingErr> {
    let restarter = Restarter { child: ChannelActor, name: actor_name(&spec.id) };
    Ok(Actor::spawn_linked(None, restarter, (spec, env), myself.get_cell()).await?.0)
}

async fn stop(myself: &ActorRef<SupervisorMsg>, r: ActorRef<RestarterMsg>) {
    r.unlink(myself.get_cell());
    let _ = r.stop_and_wait(None, Some(Duration::from_secs(10))).await;
}

impl Actor for PlayoutSupervisor {
    type Msg = SupervisorMsg;
    type State = PlayoutState;
    type Arguments = PlayoutArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: PlayoutArgs) -> Result<PlayoutState, ActorProcessingErr> {
        let mut channels = BTreeMap::new();
        for spec in args.channels {
            let env = ChannelEnv::standalone(state_dir(&args.data_dir, &spec.id), args.clock.clone());
            let r = spawn(&myself, spec.clone(), env).await?;
            channels.insert(spec.id.clone(), (spec, r));
        }
        Ok(PlayoutState { channels })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Ensure { spec, env } => {
                if state.channels.get(&spec.id).is_some_and(|(s, _)| *s == *spec) {
                    return Ok(());
                }
                if let Some((_, r)) = state.channels.remove(&spec.id) {
                    tracing::info!(channel = %spec.id, "channel changed: restarting it");
                    stop(&myself, r).await;
                }
                let r = spawn(&myself, (*spec).clone(), *env).await?;
                state.channels.insert(spec.id.clone(), (*spec, r));
            }
            SupervisorMsg::Remove { id } => {
                if let Some((_, r)) = state.channels.remove(&id) {
                    tracing::info!(channel = %id, "channel no longer played here: stopping it");
                    stop(&myself, r).await;
                }
            }
            SupervisorMsg::Running(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.channels.keys().cloned().collect());
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(&self, _: ActorRef<Self::Msg>, event: SupervisionEvent, _: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // A restarter only stops when told to; anything else is worth a line.
        if let SupervisionEvent::ActorFailed(cell, e) = event {
            tracing::error!(actor = ?cell.get_name(), "channel supervisor failed: {e}");
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        for (_, (_, r)) in std::mem::take(&mut state.channels) {
            stop(&myself, r).await;
        }
        Ok(())
    }
}
