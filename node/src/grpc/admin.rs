//! The `Admin` service (proto/admin.proto). Reads answer from this node's applied state;
//! writes go through [`ClusterHandle::propose`] (forwarded to the leader when this node
//! follows). Now playing and play order come from the channel actor when this node
//! plays the channel, with the same lookups as the HTTP API.

use futures::Stream;
use headend_actors::playout::actor::{actor_name, ChannelMsg};
use headend_proto::admin as pb;
use headend_proto::admin::admin_server::Admin;
use ractor::{ActorRef, RpcReplyPort};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;
use tonic::{Request, Response, Status};

use super::convert::{channel_from_proto, channel_to_proto, roles_to_proto};
use super::error::ApiError;
use super::status::cluster_status;
use crate::cluster::state::{CommandResult, Protocol};
use crate::cluster::{ClusterHandle, Command, Proposal};

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long RequestStream waits for the scheduler to place a new channel.
const PLACEMENT_WAIT: Duration = Duration::from_secs(3);

/// The admin API of one node.
#[derive(Debug, Clone)]
pub struct AdminService {
    cluster: ClusterHandle,
    data_dir: PathBuf,
}

impl AdminService {
    /// The service; `data_dir` locates default media folders and local schedules.
    pub fn new(cluster: ClusterHandle, data_dir: PathBuf) -> Self {
        AdminService { cluster, data_dir }
    }

    fn channel(&self, id: &str) -> Result<pb::Channel, ApiError> {
        self.cluster
            .state()
            .read(|s| s.channels.get(id).map(|c| channel_to_proto(c, s.groups.get(&c.group_key()))))
            .ok_or_else(|| ApiError::NoChannel(id.into()))
    }

    /// The local channel actor, or why this node cannot answer for the channel.
    /// A replicated channel answers on its main (a backup only computes the stream); a
    /// channel of this node's config file answers here.
    fn local_actor(&self, id: &str) -> Result<ActorRef<ChannelMsg>, ApiError> {
        let me = &self.cluster.me().name;
        let main = self.cluster.state().read(|s| {
            let c = s.channels.get(id)?;
            let main = s.groups.get(&c.group_key()).and_then(|g| g.main.clone()).unwrap_or_default();
            let admin = s.nodes.get(&main).map(|n| n.admin_addr.clone()).unwrap_or_default();
            Some((main, admin))
        });
        let here = ractor::registry::where_is(actor_name(id));
        match (main, here) {
            (Some((node, _)), Some(cell)) if node == *me => Ok(ActorRef::from(cell)),
            (None, Some(cell)) => Ok(ActorRef::from(cell)),
            (None, None) => Err(ApiError::NoChannel(id.into())),
            (Some((node, admin_addr)), _) => Err(ApiError::NotHere { channel: id.into(), node, admin_addr }),
        }
    }

    async fn ask<T: Send + 'static>(&self, id: &str, msg: impl FnOnce(RpcReplyPort<T>) -> ChannelMsg) -> Result<T, ApiError> {
        match self.local_actor(id)?.call(msg, Some(CALL_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
            _ => Err(ApiError::ChannelUnavailable(id.into())),
        }
    }
}

fn id_of(r: &pb::ChannelRef) -> Result<&str, ApiError> {
    if r.id.trim().is_empty() {
        return Err(ApiError::invalid("id", "empty; fix: set the channel id (ListChannels shows them)"));
    }
    Ok(&r.id)
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn request_stream(&self, request: Request<pb::RequestStreamRequest>) -> Reply<pb::StreamDelivery> {
        let req = request.into_inner();
        let record = self.cluster.state().read(|s| super::request_stream::record(&req, s, &self.data_dir))?;
        let id = record.config.id.clone();
        let key = record.group_key();
        let outcome = self.cluster.propose(Proposal::Command(Command::PutChannel(Box::new(record.clone())))).await.map_err(ApiError::from)?;
        // Wait (briefly) for the leader's scheduler to place the group.
        let mut changes = self.cluster.state().subscribe();
        let roles = tokio::time::timeout(PLACEMENT_WAIT, async {
            loop {
                let roles = self.cluster.state().read(|s| s.groups.get(&key).filter(|g| g.main.is_some()).cloned());
                if roles.is_some() || changes.changed().await.is_err() {
                    return roles;
                }
            }
        })
        .await
        .ok()
        .flatten();
        let (group, port) = (record.config.multicast.group, record.config.multicast.port);
        // HLS is served by the main (its URL moves with the main on a failover).
        let url = match record.protocol {
            Protocol::Hls => {
                let main = roles.as_ref().and_then(|r| r.main.clone()).unwrap_or_default();
                let http = self.cluster.state().read(|s| s.nodes.get(&main).map(|n| n.http_addr.clone())).unwrap_or_default();
                format!("http://{http}/hls/{id}/index.m3u8")
            }
            Protocol::Rtsp => {
                let main = roles.as_ref().and_then(|r| r.main.clone()).unwrap_or_default();
                let rtsp = self.cluster.state().read(|s| s.nodes.get(&main).map(|n| n.rtsp_addr.clone())).unwrap_or_default();
                if rtsp.is_empty() {
                    return Err(ApiError::FailedPrecondition(format!(
                        "channel {id:?} is placed on {main}, which runs no RTSP server; fix: set node.rtsp_listen on every node"
                    ))
                    .into());
                }
                format!("rtsp://{rtsp}/{id}")
            }
            _ => format!("udp://@{group}:{port}"),
        };
        Ok(Response::new(pb::StreamDelivery {
            channel_id: id,
            protocol: match record.protocol {
                Protocol::Hls => pb::Protocol::Hls as i32,
                Protocol::Rtsp => pb::Protocol::Rtsp as i32,
                _ => pb::Protocol::Multicast as i32,
            },
            group: group.to_string(),
            port: port.into(),
            url,
            main_node: roles.as_ref().and_then(|r| r.main.clone()).unwrap_or_default(),
            backup_node: roles.as_ref().and_then(|r| r.backup.clone()).unwrap_or_default(),
            epoch: roles.as_ref().map_or(0, |r| r.epoch),
            created: outcome.result == CommandResult::Created,
        }))
    }

    async fn get_channel(&self, request: Request<pb::ChannelRef>) -> Reply<pb::Channel> {
        Ok(Response::new(self.channel(id_of(request.get_ref())?)?))
    }

    async fn list_channels(&self, _request: Request<pb::ListChannelsRequest>) -> Reply<pb::ChannelList> {
        let channels = self
            .cluster
            .state()
            .read(|s| s.channels.values().map(|c| channel_to_proto(c, s.groups.get(&c.group_key()))).collect());
        Ok(Response::new(pb::ChannelList { channels }))
    }

    async fn update_channel(&self, request: Request<pb::Channel>) -> Reply<pb::Channel> {
        let record = self.cluster.state().read(|s| channel_from_proto(request.get_ref(), s))?;
        let id = record.config.id.clone();
        self.cluster.propose(Proposal::Command(Command::PutChannel(Box::new(record)))).await.map_err(ApiError::from)?;
        Ok(Response::new(self.channel(&id)?))
    }

    async fn delete_channel(&self, request: Request<pb::ChannelRef>) -> Reply<pb::DeleteChannelReply> {
        let id = id_of(request.get_ref())?.to_owned();
        let outcome = self.cluster.propose(Proposal::Command(Command::DeleteChannel { id: id.clone() })).await.map_err(ApiError::from)?;
        if outcome.result == CommandResult::NotFound {
            return Err(ApiError::NoChannel(id).into());
        }
        Ok(Response::new(pb::DeleteChannelReply { id }))
    }

    async fn now_playing(&self, request: Request<pb::ChannelRef>) -> Reply<pb::NowPlayingReply> {
        let id = id_of(request.get_ref())?;
        let now = self.ask(id, ChannelMsg::NowPlaying).await?;
        let now = now.ok_or_else(|| ApiError::ChannelUnavailable(id.into()))?;
        Ok(Response::new(pb::NowPlayingReply {
            channel: now.channel,
            index: now.index,
            media_id: now.media_id,
            title: now.title,
            artist: now.artist,
            album: now.album,
            genre: now.genre,
            started_unix_ms: now.started_unix_ms,
            duration_ms: now.duration_ms,
            position_ms: now.position_ms,
            path: now.path.display().to_string(),
            node: self.cluster.me().name.clone(),
        }))
    }

    async fn playlist(&self, request: Request<pb::ChannelRef>) -> Reply<pb::PlaylistReply> {
        let id = id_of(request.get_ref())?;
        let entries = self.ask(id, ChannelMsg::Playlist).await?;
        Ok(Response::new(pb::PlaylistReply {
            channel: id.to_owned(),
            entries: entries
                .into_iter()
                .map(|e| pb::PlaylistEntry {
                    title: e.title,
                    artist: e.artist,
                    duration_s: e.duration_s.unwrap_or(-1.0),
                    path: e.path.display().to_string(),
                    scheduled: e.scheduled,
                })
                .collect(),
            node: self.cluster.me().name.clone(),
        }))
    }

    async fn schedule(&self, request: Request<pb::ChannelRef>) -> Reply<pb::ScheduleReply> {
        let id = id_of(request.get_ref())?.to_owned();
        let replicated = self.cluster.state().read(|s| s.schedules.get(&id).cloned());
        let schedule = match replicated {
            Some(s) => s,
            None => {
                // The schedule this node keeps for a channel it plays.
                let dir = self.data_dir.join("channels").join(&id);
                let store = headend_actors::playout::store::ScheduleStore::new(&dir);
                let loaded = tokio::task::spawn_blocking(move || store.load()).await.map_err(|e| Status::internal(e.to_string()))?;
                match loaded {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        return Err(ApiError::NotFound(format!(
                            "no schedule of channel {id:?} here (not replicated yet, and this node does not play it); fix: ask the node that plays it"
                        ))
                        .into())
                    }
                    Err(e) => return Err(ApiError::NotFound(e.to_string()).into()),
                }
            }
        };
        Ok(Response::new(pb::ScheduleReply {
            channel: id,
            epoch_unix_ns: schedule.epoch_unix_ns,
            mux_rate: schedule.mux_rate.bits_per_second(),
            entries: schedule
                .entries
                .iter()
                .map(|e| pb::ScheduledItem {
                    index: e.index,
                    path: e.facts.path.display().to_string(),
                    title: e.facts.meta.title.clone(),
                    start_packet: e.start_packet,
                    transmission_end: e.transmission_end,
                    kind: format!("{:?}", e.kind).to_lowercase(),
                })
                .collect(),
        }))
    }

    type WatchEncodeJobsStream = Pin<Box<dyn Stream<Item = Result<pb::EncodeJobs, Status>> + Send>>;

    async fn watch_encode_jobs(&self, request: Request<pb::WatchEncodeJobsRequest>) -> Reply<Self::WatchEncodeJobsStream> {
        let channel = request.into_inner().channel;
        let state = self.cluster.state().clone();
        let changes = state.subscribe();
        let table = move || {
            state.read(|s| pb::EncodeJobs {
                jobs: s
                    .encode_jobs
                    .values()
                    .filter(|j| channel.is_empty() || j.channel == channel)
                    .map(|j| pb::EncodeJob { id: j.id.clone(), channel: j.channel.clone(), item: j.item.clone(), node: j.node.clone().unwrap_or_default() })
                    .collect(),
                applied_index: 0,
            })
        };
        let stream = futures::stream::unfold((changes, None::<Vec<pb::EncodeJob>>, table), |(mut changes, last, table)| async move {
            loop {
                let mut current = table();
                if last.as_ref() != Some(&current.jobs) {
                    current.applied_index = *changes.borrow();
                    let jobs = current.jobs.clone();
                    return Some((Ok(current), (changes, Some(jobs), table)));
                }
                changes.changed().await.ok()?;
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cluster_status(&self, _request: Request<pb::ClusterStatusRequest>) -> Reply<pb::ClusterStatusReply> {
        Ok(Response::new(cluster_status(&self.cluster)))
    }

    async fn add_learner(&self, request: Request<pb::AddLearnerRequest>) -> Reply<pb::ClusterStatusReply> {
        let r = request.into_inner();
        let node = super::request_stream::member(&r)?;
        self.cluster.propose(Proposal::AddLearner(node)).await.map_err(ApiError::from)?;
        Ok(Response::new(cluster_status(&self.cluster)))
    }

    async fn promote_voter(&self, request: Request<pb::MemberRef>) -> Reply<pb::ClusterStatusReply> {
        let name = member_name(request.get_ref())?;
        self.cluster.propose(Proposal::Promote { name }).await.map_err(ApiError::from)?;
        Ok(Response::new(cluster_status(&self.cluster)))
    }

    async fn remove_member(&self, request: Request<pb::MemberRef>) -> Reply<pb::ClusterStatusReply> {
        let name = member_name(request.get_ref())?;
        self.cluster.propose(Proposal::Remove { name }).await.map_err(ApiError::from)?;
        Ok(Response::new(cluster_status(&self.cluster)))
    }
}

fn member_name(r: &pb::MemberRef) -> Result<String, ApiError> {
    if r.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "empty; fix: set the member's node name (ClusterStatus lists them)"));
    }
    Ok(r.name.clone())
}

/// Roles of every group, for the status.
pub(super) fn groups(cluster: &ClusterHandle) -> Vec<pb::GroupRoles> {
    cluster.state().read(|s| s.groups.iter().map(|(k, g)| roles_to_proto(k, g)).collect())
}
