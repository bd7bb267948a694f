//! `headend ctl`: the admin API from the command line. Readable tables by default,
//! `--json` for scripts.

pub mod client;
pub mod table;

use clap::{Args, Subcommand, ValueEnum};
use headend_proto::admin as pb;
use serde::Serialize;
use std::path::PathBuf;

use client::Connection;
use table::Table;

/// `headend ctl` options.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin API address of any node (`node.cluster.advertise_admin`).
    #[arg(long, env = "HEADEND_ADMIN", default_value = "127.0.0.1:7101")]
    pub admin: String,
    /// Bearer token.
    #[arg(long, env = "HEADEND_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Cluster CA (PEM): connect with TLS.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --key).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `headend ctl` subcommands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Members, leader, term, replication lag and roles per group.
    Status,
    /// Channels of the cluster.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// What a channel airs now (ask a node that plays it).
    Now { id: String },
    /// Request a media stream for a broadcast channel (creates or updates it).
    RequestStream(RequestStreamArgs),
    /// Cluster membership.
    #[command(subcommand)]
    Members(MembersCommand),
}

/// `headend ctl channels ...`
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    List,
    Get { id: String },
    Delete { id: String },
}

/// `headend ctl members ...`
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add a node as a learner.
    Add {
        name: String,
        /// Its Raft address (`node.cluster.advertise_raft`).
        #[arg(long)]
        raft_addr: String,
        /// Its admin API address.
        #[arg(long)]
        admin_addr: String,
    },
    /// Make a learner a voter.
    Promote { name: String },
    /// Remove a voter or learner.
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Video {
    H264,
    Mpeg2,
    Hevc,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Audio {
    Aac,
    Mp2,
    Ac3,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Delivery {
    Multicast,
    Hls,
    Rtsp,
}

/// `headend ctl request-stream` options.
#[derive(Debug, Args)]
pub struct RequestStreamArgs {
    /// Channel name.
    #[arg(long, conflicts_with = "genre", required_unless_present = "genre")]
    pub name: Option<String>,
    /// Genre (the channel plays the genre's folder).
    #[arg(long)]
    pub genre: Option<String>,
    #[arg(long, value_enum, default_value = "h264")]
    pub video: Video,
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    #[arg(long, default_value_t = 720)]
    pub height: u32,
    /// Video bit rate, bit/s.
    #[arg(long, default_value_t = 3_000_000)]
    pub video_bitrate: u64,
    #[arg(long, value_enum, default_value = "aac")]
    pub audio: Audio,
    /// Audio bit rate, bit/s.
    #[arg(long, default_value_t = 128_000)]
    pub audio_bitrate: u64,
    #[arg(long, value_enum, default_value = "multicast")]
    pub protocol: Delivery,
    /// Multicast group.
    #[arg(long)]
    pub group: String,
    #[arg(long)]
    pub port: u16,
    /// Custom UI template (`default`, `file:///page.html` or `https://...`); renders the channel.
    #[arg(long, default_value = "")]
    pub template: String,
    /// Media folder on every node, or an object-store URL the nodes sync from
    /// (`s3://bucket/prefix`, `gs://`, `az://`, `https://`, `file:///`).
    #[arg(long, default_value = "")]
    pub media_folder: String,
    /// Render the media with the template and encode them in the format (without it and
    /// without --template, the media are MPEG-TS items played as they are).
    #[arg(long)]
    pub render: bool,
}

/// Runs `headend ctl`; prints the answer, or returns the call's error.
pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let conn = Connection { addr: args.admin.clone(), token: args.token.clone(), ca: args.ca.clone(), identity: args.cert.clone().zip(args.key.clone()) };
    let mut admin = conn.admin()?;
    let json = args.json;
    match args.command {
        CtlCommand::Status => {
            let s = admin.cluster_status(pb::ClusterStatusRequest {}).await?.into_inner();
            print(json, &s, || status_text(&s))
        }
        CtlCommand::Channels(ChannelsCommand::List) => {
            let list = admin.list_channels(pb::ListChannelsRequest {}).await?.into_inner();
            print(json, &list, || channels_table(&list.channels))
        }
        CtlCommand::Channels(ChannelsCommand::Get { id }) => {
            let c = admin.get_channel(pb::ChannelRef { id }).await?.into_inner();
            print(json, &c, || channels_table(std::slice::from_ref(&c)))
        }
        CtlCommand::Channels(ChannelsCommand::Delete { id }) => {
            let r = admin.delete_channel(pb::ChannelRef { id }).await?.into_inner();
            print(json, &r, || format!("deleted {}\n", r.id))
        }
        CtlCommand::Now { id } => {
            let n = admin.now_playing(pb::ChannelRef { id }).await?.into_inner();
            print(json, &n, || {
                format!("{}: {} - {} ({} / {} ms) on {}\n", n.channel, n.artist, n.title, n.position_ms, n.duration_ms, n.node)
            })
        }
        CtlCommand::RequestStream(r) => {
            let d = admin.request_stream(request(&r)).await?.into_inner();
            print(json, &d, || {
                let mut t = Table::new(&["channel", "delivered at", "main", "backup", "epoch", "created"]);
                t.row(vec![d.channel_id.clone(), d.url.clone(), d.main_node.clone(), d.backup_node.clone(), d.epoch.to_string(), d.created.to_string()]);
                t.render()
            })
        }
        CtlCommand::Members(m) => {
            let s = match m {
                MembersCommand::Add { name, raft_addr, admin_addr } => {
                    admin.add_learner(pb::AddLearnerRequest { name, raft_addr, admin_addr }).await?
                }
                MembersCommand::Promote { name } => admin.promote_voter(pb::MemberRef { name }).await?,
                MembersCommand::Remove { name } => admin.remove_member(pb::MemberRef { name }).await?,
            }
            .into_inner();
            print(json, &s, || status_text(&s))
        }
    }
}

fn request(r: &RequestStreamArgs) -> pb::RequestStreamRequest {
    use pb::request_stream_request::Channel;
    pb::RequestStreamRequest {
        channel: match (&r.name, &r.genre) {
            (Some(n), _) => Some(Channel::Name(n.clone())),
            (None, Some(g)) => Some(Channel::Genre(g.clone())),
            (None, None) => None,
        },
        format: Some(pb::StreamFormat {
            video_codec: match r.video {
                Video::H264 => pb::VideoCodec::H264,
                Video::Mpeg2 => pb::VideoCodec::Mpeg2,
                Video::Hevc => pb::VideoCodec::Hevc,
                Video::None => pb::VideoCodec::None,
            } as i32,
            width: r.width,
            height: r.height,
            video_bitrate: r.video_bitrate,
            audio_codec: match r.audio {
                Audio::Aac => pb::AudioCodec::Aac,
                Audio::Mp2 => pb::AudioCodec::Mp2,
                Audio::Ac3 => pb::AudioCodec::Ac3,
            } as i32,
            audio_bitrate: r.audio_bitrate,
        }),
        protocol: match r.protocol {
            Delivery::Multicast => pb::Protocol::Multicast,
            Delivery::Hls => pb::Protocol::Hls,
            Delivery::Rtsp => pb::Protocol::Rtsp,
        } as i32,
        destination: Some(pb::Destination { group: r.group.clone(), port: r.port.into() }),
        template: r.template.clone(),
        media_folder: r.media_folder.clone(),
        render: r.render,
    }
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

fn channels_table(channels: &[pb::Channel]) -> String {
    let mut t = Table::new(&["id", "name", "destination", "mux rate", "main", "backup", "epoch", "revision"]);
    for c in channels {
        let m = c.multicast.clone().unwrap_or_default();
        let r = c.roles.clone().unwrap_or_default();
        t.row(vec![
            c.id.clone(),
            c.name.clone(),
            format!("{}:{}", m.group, m.port),
            c.mux_rate.to_string(),
            r.main,
            r.backup,
            r.epoch.to_string(),
            c.revision.to_string(),
        ]);
    }
    t.render()
}

fn status_text(s: &pb::ClusterStatusReply) -> String {
    let mut out = format!(
        "node {} ({}), leader {}, term {}, last log {}, applied {}\n\n",
        s.node, s.state, s.leader, s.term, s.last_log_index, s.last_applied
    );
    let mut t = Table::new(&["member", "role", "raft", "admin", "matched", "lag", "alive", "capacity"]);
    for m in &s.members {
        t.row(vec![
            m.name.clone(),
            m.role.clone(),
            m.raft_addr.clone(),
            m.admin_addr.clone(),
            m.matched_index.to_string(),
            m.lag.to_string(),
            m.alive.to_string(),
            m.capacity.to_string(),
        ]);
    }
    out.push_str(&t.render());
    if !s.groups.is_empty() {
        let mut g = Table::new(&["group", "main", "backup", "epoch"]);
        for r in &s.groups {
            g.row(vec![r.group.clone(), r.main.clone(), r.backup.clone(), r.epoch.to_string()]);
        }
        out.push('\n');
        out.push_str(&g.render());
    }
    out
}
