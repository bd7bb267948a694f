//! Restart with backoff, in one place: a supervisor of one actor that spawns it linked
//! under its registry name, restarts it with exponential backoff when it fails (reset
//! after a healthy minute), and stops it on shutdown. Used for each channel
//! (`playout::supervisor`) and for the node's sync actor.

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::time::{Duration, Instant};

pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before failing restarts with the first backoff again.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Supervises one actor of type `A`, registered under `name`.
#[derive(Debug)]
pub struct Restarter<A> {
    pub child: A,
    pub name: String,
}

#[derive(Debug)]
pub enum RestarterMsg {
    Start,
}

#[derive(Debug)]
pub struct RestarterState<Args> {
    args: Args,
    child: Option<ractor::ActorCell>,
    started: Instant,
    backoff: Duration,
    restarts: u32,
}

impl<A> Actor for Restarter<A>
where
    A: Actor + Clone + Sync,
    A::Arguments: Clone + Sync,
{
    type Msg = RestarterMsg;
    type State = RestarterState<A::Arguments>;
    type Arguments = A::Arguments;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
        myself.send_message(RestarterMsg::Start)?;
        Ok(RestarterState { args, child: None, started: Instant::now(), backoff: FIRST_BACKOFF, restarts: 0 })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, _msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if state.child.is_some() {
            return Ok(());
        }
        match Actor::spawn_linked(Some(self.name.clone()), self.child.clone(), state.args.clone(), myself.get_cell()).await {
            Ok((child, _)) => {
                state.child = Some(child.get_cell());
                state.started = Instant::now();
            }
            Err(e) => {
                tracing::error!(actor = %self.name, backoff = ?state.backoff, "failed to start: {e}");
                retry_later(&myself, state);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(&self, myself: ActorRef<Self::Msg>, event: SupervisionEvent, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        let why = match &event {
            SupervisionEvent::ActorFailed(_, e) => format!("failed: {e}"),
            SupervisionEvent::ActorTerminated(_, _, reason) => format!("stopped: {reason:?}"),
            _ => return Ok(()),
        };
        if state.started.elapsed() > HEALTHY_AFTER {
            state.backoff = FIRST_BACKOFF;
        }
        tracing::error!(actor = %self.name, backoff = ?state.backoff, restarts = state.restarts + 1, "{why}; restarting");
        retry_later(&myself, state);
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if let Some(child) = state.child.take() {
            child.unlink(myself.get_cell());
            let _ = child.stop_and_wait(None, Some(Duration::from_secs(5))).await;
        }
        Ok(())
    }
}

fn retry_later<Args>(myself: &ActorRef<RestarterMsg>, state: &mut RestarterState<Args>) {
    state.child = None;
    state.restarts += 1;
    let wait = state.backoff;
    state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
    myself.send_after(wait, || RestarterMsg::Start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Counts its starts; fails when told to.
    #[derive(Debug, Clone)]
    struct Fragile;

    impl Actor for Fragile {
        type Msg = ();
        type State = ();
        type Arguments = Arc<AtomicU32>;
        async fn pre_start(&self, _: ActorRef<()>, starts: Arc<AtomicU32>) -> Result<(), ActorProcessingErr> {
            starts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn handle(&self, _: ActorRef<()>, _: (), _: &mut ()) -> Result<(), ActorProcessingErr> {
            Err("told to fail".into())
        }
    }

    #[tokio::test]
    async fn a_failed_child_is_restarted_under_its_name() {
        let starts = Arc::new(AtomicU32::new(0));
        let name = "fragile-under-test".to_string();
        let (sup, _) = Actor::spawn(None, Restarter { child: Fragile, name: name.clone() }, starts.clone()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let child = loop {
            if let Some(c) = ractor::registry::where_is(name.clone()) {
                break c;
            }
            assert!(Instant::now() < deadline, "child never registered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        ActorRef::<()>::from(child).send_message(()).unwrap();
        while starts.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "child not restarted after failing");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ractor::registry::where_is(name).is_some(), "registered again under its name");
        sup.stop_and_wait(None, Some(Duration::from_secs(5))).await.unwrap();
    }
}
