//! `headend-bench headend-child`: the headend process the playout bench measures. It
//! runs N channels on the full playout supervisor (channel actors, schedule extension,
//! one pacing thread per channel) as a node does, until its stdin closes (the bench
//! exited) or it is killed. Warnings and errors are logged to stderr.

use crate::scenario::channel_output;
use clap::Args;
use headend_actors::playout::clock::MonotonicClock;
use headend_actors::playout::spec::{
    ChannelPids, ChannelSpec, MulticastOutput, PlayOrder, PlaylistSource, ServiceKind,
};
use headend_actors::playout::supervisor::{PlayoutArgs, PlayoutSupervisor};
use headend_actors::ts::MuxRate;
use ractor::Actor;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ChildArgs {
    #[arg(long)]
    pub channels: usize,
    /// The item every channel plays (in a loop).
    #[arg(long)]
    pub item: PathBuf,
    #[arg(long)]
    pub rate: u64,
    #[arg(long)]
    pub port_base: u16,
    /// The node's data directory (schedules, slates).
    #[arg(long)]
    pub state_dir: PathBuf,
}

/// Channel `i` of the bench: its own group and port on loopback, looping `item`.
pub fn channel_spec(i: usize, rate: u64, port_base: u16, item: &Path) -> ChannelSpec {
    let out = channel_output(i, port_base);
    ChannelSpec {
        id: format!("ch{i:03}"),
        name: format!("Bench {i}"),
        service_name: format!("Bench {i}"),
        provider: "headend-bench".into(),
        service_kind: ServiceKind::Tv,
        program_number: 1,
        transport_stream_id: 1,
        original_network_id: 1,
        mux_rate: MuxRate::new(rate),
        pids: ChannelPids::default(),
        output: MulticastOutput {
            group: *out.ip(),
            port: out.port(),
            interface: Ipv4Addr::LOCALHOST,
            ttl: 1,
            loopback: true,
            rtp: false,
            source: None,
            hitless_group: None,
        },
        playlist: PlaylistSource::Items(vec![item.to_path_buf()]),
        order: PlayOrder::Sequential,
        fallback: None,
    }
}

pub fn run(args: ChildArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let channels = (0..args.channels).map(|i| channel_spec(i, args.rate, args.port_base, &args.item)).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let playout =
            PlayoutArgs { channels, data_dir: args.state_dir.clone(), clock: Arc::new(MonotonicClock::new()) };
        let (supervisor, done) = Actor::spawn(Some("playout".into()), PlayoutSupervisor, playout).await?;
        // Runs until the bench closes our stdin (or kills us).
        tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        })
        .await?;
        supervisor.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        anyhow::Ok(())
    })
}
