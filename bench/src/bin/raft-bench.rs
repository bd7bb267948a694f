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
//!
//! Each failover trial starts from a settled cluster: every node has the leader's whole
//! log (a node restarted by the previous trial has caught up), then a random pause of up
//! to half a lease so that the kill falls anywhere in the lease-renewal cycle. The time is
//! from just before SIGKILL until both survivors, polled every 5 ms over connections
//! opened beforehand, name the same new leader (one of them) in the same, newer term.

use clap::Parser;
use headend_cluster_tests::cluster::{ClusterBuilder, TestCluster};
use headend_proto::admin as pb;
use std::hash::{BuildHasher, Hasher};
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
    /// Node lease, ms (the node default; the test harness's own default is shorter).
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    /// Kill the leader as soon as every node names it (the procedure before 25 Nov 2026):
    /// no wait until a node restarted by the previous trial has caught up, no random pause.
    #[arg(long)]
    kill_at_once: bool,
    /// Seconds of idle cluster over which Raft entries per second are counted (lease
    /// renewals and scheduler decisions); 0 skips.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// During the kill trials, a client writes this many `UpdateChannel` per second
    /// (round robin over the nodes, failures ignored): failover with writes in flight.
    #[arg(long, default_value_t = 0)]
    background_writes: u32,
}

/// `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// A pseudo-random number below `n` (no RNG dependency: std's randomly keyed hasher).
fn random_below(n: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() % n.max(1)
}

/// Waits until every node in `all` has the log of the leader, which has it replicated to
/// every member (no lag).
fn wait_caught_up(c: &TestCluster, all: &[usize], timeout: Duration) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let s: Vec<_> = all.iter().filter_map(|i| c.status(*i).ok()).collect();
        let leader = s.iter().find(|s| s.state == "leader");
        let settled = s.len() == all.len()
            && leader.is_some_and(|l| {
                l.members.iter().all(|m| m.lag == 0 && m.matched_index == l.last_log_index)
                    && s.iter().all(|s| s.last_log_index == l.last_log_index && s.leader == l.node && s.term == l.term)
            });
        if settled {
            return Ok(());
        }
        anyhow::ensure!(t0.elapsed() < timeout, "the cluster did not settle within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
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
    let lease = args.lease_ms;
    eprintln!("raft-bench: heartbeat {hb} ms, election timeout {min}..{max} ms, lease {lease} ms");
    let mut c = ClusterBuilder::new(3).timing(hb, min, max).lease_ms(lease).start();
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

    // Raft entries per second with no client writes: what liveness costs.
    let idle = if args.idle_secs > 0 {
        let first = c.status(leader)?.last_log_index;
        std::thread::sleep(Duration::from_secs(args.idle_secs));
        let last = c.status(leader)?.last_log_index;
        Some((last - first) as f64 / args.idle_secs as f64)
    } else {
        None
    };

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = (args.background_writes > 0).then(|| {
        let (rate, stop, conns, mut channel) =
            (args.background_writes, stop.clone(), (0..3).map(|i| c.connection(i)).collect::<Vec<_>>(), channel.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let mut admins: Vec<_> = rt.block_on(async { conns.iter().map(|c| c.admin().expect("admin client")).collect() });
            let every = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut k = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                channel.mux_rate = 5_000_000 + (k % 1000) * 1000;
                let a = &mut admins[(k % 3) as usize];
                let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), a.update_channel(channel.clone())).await });
                k += 1;
                std::thread::sleep(every);
            }
            k
        })
    });

    let mut failover = Vec::new();
    let mut extra_rounds = 0;
    for trial in 0..args.trials {
        let all: Vec<usize> = (0..3).collect();
        let old = c.wait_leader(&all, Duration::from_secs(15));
        if !args.kill_at_once {
            wait_caught_up(&c, &all, Duration::from_secs(15))?;
            std::thread::sleep(Duration::from_millis(random_below(lease / 2)));
        }
        let rest: Vec<usize> = all.iter().copied().filter(|i| *i != old).collect();
        let mut admins: Vec<_> = rest.iter().map(|i| c.admin(*i)).collect();
        // ClusterStatus of survivor `k` over its open connection.
        macro_rules! status {
            ($k:expr) => {{
                let a = &mut admins[$k];
                c.block_on(async {
                    tokio::time::timeout(Duration::from_secs(2), a.cluster_status(pb::ClusterStatusRequest {})).await.ok()?.ok()
                })
                .map(|r| r.into_inner())
            }};
        }
        let old_term = match (status!(0), status!(1)) {
            (Some(a), Some(b)) if a.term == b.term && a.leader == c.nodes[old].name => a.term,
            _ => anyhow::bail!("trial {trial}: the survivors do not agree on the leader before the kill"),
        };
        let t0 = Instant::now();
        c.kill(old);
        // Poll every 5 ms until both survivors name the same new leader in a newer term.
        let (took, term) = loop {
            let s: Vec<_> = [status!(0), status!(1)].into_iter().flatten().collect();
            let done = s.len() == 2
                && s[0].term > old_term
                && s[0].leader == s[1].leader
                && s[0].term == s[1].term
                && rest.iter().any(|i| c.nodes[*i].name == s[0].leader);
            if done {
                break (t0.elapsed(), s[0].term);
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "trial {trial}: no new leader within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        };
        // One term more: the first candidate won; more: a candidacy was refused or split.
        eprintln!("trial {trial}: new leader after {} ms (term {old_term} -> {term})", ms(took));
        if term > old_term + 1 {
            extra_rounds += 1;
        }
        failover.push(took);
        drop(admins);
        c.start(old);
        c.wait_voters(3, Duration::from_secs(15));
        c.wait_leader(&all, Duration::from_secs(15));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let background = writer.map(|w| w.join().unwrap_or(0));
    failover.sort();
    let mut procedure = if args.kill_at_once { "kill as soon as all name the leader" } else { "kill in a settled cluster" }.to_string();
    if let Some(n) = background {
        procedure += &format!(", {} client writes/s during the trials ({n} sent)", args.background_writes);
    }
    println!("heartbeat {hb} ms, election timeout {min}..{max} ms, lease {lease} ms, {procedure}\n");
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
        println!("\nelections that needed more than one round (term + 2 or more): {extra_rounds} of {}", failover.len());
    }
    if let Some(rate) = idle {
        println!("Raft entries per second with no client writes ({} s): {rate:.2}", args.idle_secs);
    }
    Ok(())
}
