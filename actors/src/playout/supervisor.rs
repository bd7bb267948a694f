//! Supervises a node's channel actors: starts one per channel, restarts a failed one
//! with exponential backoff (reset after it has run well for a while), and stops them
//! all on shutdown.

use super::actor::{actor_name, ChannelActor, ChannelEnv, ChannelMsg};
use super::clock::Clock;
use super::spec::ChannelSpec;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A channel that ran this long before failing restarts with the first backoff again.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum SupervisorMsg {
    /// (Re)start the channel with this id.
    Start(String),
    /// Ids of running channels.
    Channels(RpcReplyPort<Vec<String>>),
    /// Restarts so far, by channel.
    Restarts(RpcReplyPort<BTreeMap<String, u32>>),
}

/// Arguments: the channels and where their state lives.
#[derive(Debug, Clone)]
pub struct PlayoutArgs {
    pub channels: Vec<ChannelSpec>,
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Child {
    spec: ChannelSpec,
    actor: Option<ActorRef<ChannelMsg>>,
    started: Instant,
    backoff: Duration,
    restarts: u32,
}

#[derive(Debug)]
pub struct PlayoutState {
    args: PlayoutArgs,
    children: BTreeMap<String, Child>,
}

#[derive(Debug)]
pub struct PlayoutSupervisor;

impl PlayoutSupervisor {
    async fn start_child(myself: &ActorRef<SupervisorMsg>, state: &mut PlayoutState, id: &str) {
        let Some(child) = state.children.get_mut(id) else { return };
        let env = ChannelEnv { state_dir: state.args.data_dir.join("channels").join(id), clock: state.args.clock.clone() };
        match Actor::spawn_linked(Some(actor_name(id)), ChannelActor, (child.spec.clone(), env), myself.get_cell()).await {
            Ok((actor, _)) => {
                child.actor = Some(actor);
                child.started = Instant::now();
            }
            Err(e) => {
                tracing::error!(channel = id, backoff = ?child.backoff, "channel failed to start: {e}");
                Self::retry_later(myself, child, id);
            }
        }
    }

    fn retry_later(myself: &ActorRef<SupervisorMsg>, child: &mut Child, id: &str) {
        child.actor = None;
        child.restarts += 1;
        let wait = child.backoff;
        child.backoff = (child.backoff * 2).min(MAX_BACKOFF);
        let id = id.to_string();
        myself.send_after(wait, move || SupervisorMsg::Start(id));
    }
}

impl Actor for PlayoutSupervisor {
    type Msg = SupervisorMsg;
    type State = PlayoutState;
    type Arguments = PlayoutArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: PlayoutArgs) -> Result<PlayoutState, ActorProcessingErr> {
        let children = args
            .channels
            .iter()
            .map(|spec| {
                let child = Child { spec: spec.clone(), actor: None, started: Instant::now(), backoff: FIRST_BACKOFF, restarts: 0 };
                (spec.id.clone(), child)
            })
            .collect();
        for spec in &args.channels {
            myself.send_message(SupervisorMsg::Start(spec.id.clone()))?;
        }
        Ok(PlayoutState { args, children })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start(id) => {
                if state.children.get(&id).is_some_and(|c| c.actor.is_none()) {
                    Self::start_child(&myself, state, &id).await;
                }
            }
            SupervisorMsg::Channels(reply) => {
                let ids = state.children.iter().filter(|(_, c)| c.actor.is_some()).map(|(id, _)| id.clone()).collect();
                if !reply.is_closed() {
                    let _ = reply.send(ids);
                }
            }
            SupervisorMsg::Restarts(reply) => {
                let r = state.children.iter().map(|(id, c)| (id.clone(), c.restarts)).collect();
                if !reply.is_closed() {
                    let _ = reply.send(r);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match &event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, format!("stopped: {reason:?}")),
            _ => return Ok(()),
        };
        let Some((id, child)) = state
            .children
            .iter_mut()
            .find(|(_, c)| c.actor.as_ref().is_some_and(|a| a.get_id() == cell.get_id()))
        else {
            return Ok(());
        };
        if child.started.elapsed() > HEALTHY_AFTER {
            child.backoff = FIRST_BACKOFF;
        }
        tracing::error!(channel = %id, backoff = ?child.backoff, "channel {why}; restarting");
        let id = id.clone();
        Self::retry_later(&myself, child, &id);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        for child in state.children.values_mut() {
            if let Some(a) = child.actor.take() {
                a.unlink(_myself.get_cell());
                let _ = a.stop_and_wait(None, Some(Duration::from_secs(5))).await;
            }
        }
        Ok(())
    }
}
