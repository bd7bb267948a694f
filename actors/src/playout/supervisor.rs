//! Supervises a node's channels: one [`Restarter`] per channel keeps its
//! `ChannelActor` running under its registry name (restart with exponential backoff),
//! and stopping this supervisor stops them all.

use super::actor::{actor_name, ChannelActor, ChannelEnv};
use super::clock::Clock;
use super::spec::ChannelSpec;
use crate::supervise::{Restarter, RestarterMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
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

#[derive(Debug)]
pub enum SupervisorMsg {}

#[derive(Debug)]
pub struct PlayoutState {
    restarters: Vec<ActorRef<RestarterMsg>>,
}

#[derive(Debug)]
pub struct PlayoutSupervisor;

impl Actor for PlayoutSupervisor {
    type Msg = SupervisorMsg;
    type State = PlayoutState;
    type Arguments = PlayoutArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: PlayoutArgs) -> Result<PlayoutState, ActorProcessingErr> {
        let mut restarters = Vec::with_capacity(args.channels.len());
        for spec in args.channels {
            let env = ChannelEnv { state_dir: args.data_dir.join("channels").join(&spec.id), clock: args.clock.clone() };
            let restarter = Restarter { child: ChannelActor, name: actor_name(&spec.id) };
            let (r, _) = Actor::spawn_linked(None, restarter, (spec, env), myself.get_cell()).await?;
            restarters.push(r);
        }
        Ok(PlayoutState { restarters })
    }

    async fn handle(&self, _: ActorRef<Self::Msg>, msg: Self::Msg, _: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {}
    }

    async fn handle_supervisor_evt(&self, _: ActorRef<Self::Msg>, event: SupervisionEvent, _: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // A restarter only stops when told to; anything else is worth a line.
        if let SupervisionEvent::ActorFailed(cell, e) = event {
            tracing::error!(actor = ?cell.get_name(), "channel supervisor failed: {e}");
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        for r in state.restarters.drain(..) {
            r.unlink(myself.get_cell());
            let _ = r.stop_and_wait(None, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }
}
