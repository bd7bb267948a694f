//! `raft-bench`: the cluster control plane on 3 local `headend run` processes
//! (127.0.0.1-3): admin write latency (p50/p99, on the leader and forwarded by a
//! follower) and the time to a new leader after kill -9 of the leader (p50/p99/max over
//! N trials). Targets: write p99 <= 20 ms, new leader <= 1 s.
//!
//! ```sh
//! cargo build --release -p headend-node --bin headend
//! cargo run --release -p headend-bench --bin raft-bench -- --writes 500 --trials 20
//! ```
//! The `headend` binary is `$HEADEND_BIN`, else the one beside this binary.

use clap::Parser;
use headend_cluster_tests::cluster::ClusterBuilder;
use headend_proto::admin as pb;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Raft write latency and leader failover time on 3 local headend nodes")]
struct Args {
    /// Writes per path (leader, follower).
    #[arg(long, default_value_t = 500)]
    writes: usize,
    /// kill -9 trials.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Raft heartbeat, ms (the node default).
    #[arg(long, default_value_t = 40)]
    heartbeat_ms: u64,
    /// Election timeout range, ms (the node default).
    #[arg(long, default_value_t = 100)]
    election_min_ms: u64,
    #[arg(long, default_value_t = 200)]
    election_max_ms: u64,
}

/// `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("HEADEND_BIN").is_none() {
        let exe = std::env::current_exe()?;
        let bin = exe.with_file_name("headend");
        anyhow::ensure!(bin.is_file(), "{} not found; fix: cargo build --release -p headend-node --bin headend, or set HEADEND_BIN", bin.display());
        std::env::set_var("HEADEND_BIN", &bin);
    }
    eprintln!("raft-bench: headend = {}", std::env::var("HEADEND_BIN").unwrap_or_default());
    let (hb, min, max) = (args.heartbeat_ms, args.election_min_ms, args.election_max_ms);
    eprintln!("raft-bench: heartbeat {hb} ms, election timeout {min}..{max} ms");
    let mut c = ClusterBuilder::new(3).timing(hb, min, max).start();
    let leader = c.wait_leader(&[0, 1, 2], Duration::from_secs(15));
    let follower = (leader + 1) % 3;

    // A channel to rewrite: each UpdateChannel is one committed Raft entry.
    c.request_stream(leader, "bench", 250).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut channel = {
        let mut a = c.admin(leader);
        c.block_on(a.get_channel(pb::ChannelRef { id: "bench".into() }))?.into_inner()
    };
    let mut rows = Vec::new();
    for (label, node) in [("leader", leader), ("follower (forwarded)", follower)] {
        let mut a = c.admin(node);
        let mut lat = Vec::with_capacity(args.writes);
        for k in 0..args.writes + 20 {
            channel.mux_rate = 3_000_000 + (k as u64 % 1000) * 1000;
            let t = Instant::now();
            c.block_on(a.update_channel(channel.clone()))?;
            if k >= 20 {
                lat.push(t.elapsed()); // the first 20 warm connections up
            }
        }
        lat.sort();
        rows.push(format!(
            "| write via {label} | {} | {} | {} | {} |",
            lat.len(),
            ms(quantile(&lat, 0.5)),
            ms(quantile(&lat, 0.99)),
            ms(*lat.last().unwrap())
        ));
    }

    let mut failover = Vec::new();
    for trial in 0..args.trials {
        let all: Vec<usize> = (0..3).collect();
        let old = c.wait_leader(&all, Duration::from_secs(15));
        let rest: Vec<usize> = all.iter().copied().filter(|i| *i != old).collect();
        let old_term = c.status(rest[0]).map(|s| s.term).unwrap_or(0);
        let t0 = Instant::now();
        c.kill(old);
        // Poll every 5 ms until both survivors name the same new leader in a newer term.
        let took = loop {
            let s: Vec<_> = rest.iter().filter_map(|i| c.status(*i).ok()).collect();
            let done = s.len() == 2
                && s[0].term > old_term
                && s[0].leader == s[1].leader
                && s[0].term == s[1].term
                && rest.iter().any(|i| c.nodes[*i].name == s[0].leader);
            if done {
                break t0.elapsed();
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "trial {trial}: no new leader within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        };
        eprintln!("trial {trial}: new leader after {} ms", ms(took));
        failover.push(took);
        c.start(old);
        c.wait_voters(3, Duration::from_secs(15));
        c.wait_leader(&all, Duration::from_secs(15));
    }
    failover.sort();
    println!("heartbeat {hb} ms, election timeout {min}..{max} ms\n");
    println!("| measurement | n | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    if !failover.is_empty() {
        println!(
            "| new leader after kill -9 of the leader | {} | {} | {} | {} |",
            failover.len(),
            ms(quantile(&failover, 0.5)),
            ms(quantile(&failover, 0.99)),
            ms(*failover.last().unwrap())
        );
    }
    Ok(())
}
