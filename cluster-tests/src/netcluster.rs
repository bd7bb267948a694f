//! A cluster of `headend run` processes, each in its own network namespace of a [`Net`]
//! (started with `ip netns exec`): node `i` is `n{i+1}` on `10.77.0.{i+1}`, its Raft,
//! admin and HTTP listeners and its `[node.cluster] interfaces` on that address, so its
//! multicast leaves from there and crosses the (virtual) bridge.
//!
//! The test process stays in the host namespace and never routes into 10.77.0.0/24:
//! every admin (gRPC) and HTTP call is made from a thread that has entered the receiver
//! namespace (`setns`), and the harness's tokio runtime has its worker threads enter it
//! too, so the client sockets live beside the receiver (10.77.0.200). Nothing is added
//! to the host's interfaces or routes.
//!
//! Configs start with the same [`NodeToml`] as `cluster::TestCluster`'s.

use headend_node::ctl::client::Connection;
use headend_proto::admin as pb;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cluster::{kill_child, signal_child, NodeToml};
use crate::netns::{enter_netns, in_netns, Net};
use crate::{die_with_parent, headend_bin, headend_command, http_get, wait_for, HttpResponse};

/// How long a node may take to answer its admin API after start.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports every node listens on (each node has its own namespace, so they never clash).
pub const RAFT_PORT: u16 = 7001;
pub const ADMIN_PORT: u16 = 7002;
pub const HTTP_PORT: u16 = 8080;

/// Builds a [`NetCluster`].
#[derive(Debug, Clone)]
pub struct NetClusterBuilder {
    nodes: usize,
    lease_ms: u64,
    /// `(heartbeat, election min, election max)`, ms.
    timing: (u64, u64, u64),
    /// `[node.failover]` body, if not the default.
    failover: Option<String>,
    /// Raft links through delay relays from the start ([`Net::relay_tcp`]).
    raft_relays: bool,
    /// Each node's data dir on a tmpfs of this many MiB, private to the node.
    data_tmpfs_mb: Option<u64>,
    /// More TOML for one node's config: `(node, text)`.
    extra: Vec<(usize, String)>,
    /// Environment of every node (e.g. a content store's credentials).
    env: Vec<(String, String)>,
}

impl NetClusterBuilder {
    /// `nodes` voters, the node defaults of `ClusterBuilder` (lease 1 s, Raft 40 / 100..200 ms).
    pub fn new(nodes: usize) -> Self {
        NetClusterBuilder { nodes, lease_ms: 1000, timing: (40, 100, 200), failover: None, raft_relays: false, data_tmpfs_mb: None, extra: Vec::new(), env: Vec::new() }
    }

    pub fn lease_ms(mut self, ms: u64) -> Self {
        self.lease_ms = ms;
        self
    }

    /// Raft heartbeat and election timeout range, ms.
    pub fn timing(mut self, heartbeat_ms: u64, election_min_ms: u64, election_max_ms: u64) -> Self {
        self.timing = (heartbeat_ms, election_min_ms, election_max_ms);
        self
    }

    /// `[node.failover]` settings, as TOML lines (e.g. `"takeover_ms = 50"`).
    pub fn failover(mut self, toml: &str) -> Self {
        self.failover = Some(toml.into());
        self
    }

    /// Every node's Raft connections go through delay relays from the start (no delay
    /// until [`Net::set_tcp_delay`]), so a delay can be added without resetting them.
    pub fn raft_relays(mut self) -> Self {
        self.raft_relays = true;
        self
    }

    /// Each node's data dir on a tmpfs of `mb` MiB, mounted in the node's own mount
    /// namespace (`ip netns exec` makes one; nothing appears on the host), so that
    /// [`NetCluster::fill_disk`] can fill it. A restarted node gets a fresh, empty one.
    pub fn data_tmpfs_mb(mut self, mb: u64) -> Self {
        self.data_tmpfs_mb = Some(mb);
        self
    }

    /// Appends `toml` to node `i`'s config (after `[node.cluster]`: e.g. `[node.sync]`, or
    /// a local `[[channels]]` table). `{data_dir}` in it is replaced by the node's data dir.
    pub fn extra_toml(mut self, i: usize, toml: &str) -> Self {
        self.extra.push((i, toml.into()));
        self
    }

    /// Sets an environment variable for every node.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Creates the network, writes the configs, starts node 0, waits until it leads,
    /// starts the others and waits until every node is a voter.
    pub fn start(self) -> NetCluster {
        self.start_with(|_| ()).0
    }

    /// [`NetClusterBuilder::start`], running `before` on the network before any node
    /// starts (e.g. to start a server in the receiver namespace); returns its result too.
    pub fn start_with<T>(self, before: impl FnOnce(&Net) -> T) -> (NetCluster, T) {
        let net = Net::new(self.nodes);
        let pre = before(&net);
        if self.raft_relays {
            for i in 0..self.nodes {
                net.relay_tcp(i, RAFT_PORT);
            }
        }
        let work = tempfile::Builder::new().prefix("headend-chaos-").tempdir().expect("temp dir");
        let rx = net.receiver_ns();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .on_thread_start(move || enter_netns(&rx).unwrap_or_else(|e| panic!("runtime thread: {e}")))
            .enable_all()
            .build()
            .expect("runtime");
        let mut c = NetCluster { nodes: Vec::new(), rt, work: Some(work), builder: self, net };
        for i in 0..c.builder.nodes {
            c.add_node(i == 0);
        }
        c.start(0);
        c.wait_leader(&[0], Duration::from_secs(10));
        for i in 1..c.nodes.len() {
            c.start(i);
        }
        let n = c.nodes.len();
        c.wait_voters(n, Duration::from_secs(30));
        (c, pre)
    }
}

/// One node's process and addresses.
#[derive(Debug)]
pub struct NetNode {
    pub name: String,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub raft: SocketAddr,
    pub admin: SocketAddr,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
}

/// A running cluster in namespaces. Dropping it kills every node, then deletes the
/// network.
#[derive(Debug)]
pub struct NetCluster {
    pub nodes: Vec<NetNode>,
    rt: tokio::runtime::Runtime,
    /// `None` once kept (a failed test keeps its nodes' configs, logs and data).
    work: Option<tempfile::TempDir>,
    builder: NetClusterBuilder,
    /// Declared last: dropped after the nodes are killed.
    pub net: Net,
}

impl NetCluster {
    /// Writes node `nodes.len()`'s config (not started). Node 0 bootstraps; the others
    /// join it as seed.
    fn add_node(&mut self, bootstrap: bool) -> usize {
        let i = self.nodes.len();
        let name = format!("n{}", i + 1);
        let ip = self.net.node_ip(i);
        let (raft, admin, http) = (SocketAddr::from((ip, RAFT_PORT)), SocketAddr::from((ip, ADMIN_PORT)), SocketAddr::from((ip, HTTP_PORT)));
        let dir = self.work.as_ref().expect("work dir").path().join(&name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let data_dir = dir.join("data");
        let b = &self.builder;
        let mut toml =
            NodeToml { name: &name, data_dir: &data_dir, ip, http, rtsp: None, raft, admin, timing: b.timing, lease_ms: b.lease_ms, bootstrap }
                .render();
        if i > 0 {
            toml.push_str(&format!("seeds = [\"{}\"]\n", self.nodes[0].raft));
        }
        if let Some(f) = &b.failover {
            toml.push_str(&format!("\n[node.failover]\n{f}\n"));
        }
        for (_, extra) in b.extra.iter().filter(|(n, _)| *n == i) {
            toml.push('\n');
            toml.push_str(&extra.replace("{data_dir}", &data_dir.display().to_string()));
            toml.push('\n');
        }
        let config = dir.join("headend.toml");
        std::fs::write(&config, toml).expect("write config");
        let ns = self.net.node_ns(i);
        self.nodes.push(NetNode { name, ns, ip, raft, admin, http, data_dir, config, stderr: dir.join("stderr.log"), child: None });
        i
    }

    /// Starts node `i` (again) in its namespace and waits until its admin API answers.
    pub fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is running", node.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.stderr).expect("stderr log");
        let mut inner = headend_command();
        inner.env("RUST_LOG", "info,openraft=error").env("NO_COLOR", "1");
        for (k, v) in &self.builder.env {
            inner.env(k, v);
        }
        if let Some(mb) = self.builder.data_tmpfs_mb {
            // sh -c 'mount ... "$0" && exec "$@"' <data_dir> headend run ...
            std::fs::create_dir_all(&node.data_dir).expect("data dir");
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c").arg(format!("mount -t tmpfs -o size={mb}m headend-chaos \"$0\" && exec \"$@\"")).arg(&node.data_dir).arg(inner.get_program());
            for (k, v) in inner.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            inner = sh;
        }
        inner.arg("run").arg("--config").arg(&node.config);
        let mut cmd = Net::exec(&node.ns, &inner);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // `ip netns exec` execs the command in place: the child's pid is headend's.
        die_with_parent(&mut cmd);
        node.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("cannot start ip netns exec {} {}: {e}", node.ns, headend_bin().display())));
        let name = node.name.clone();
        wait_for(START_TIMEOUT, &format!("{name} to answer ClusterStatus"), || {
            if let Some(status) = self.nodes[i].child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{name} exited with {status}:\n{}", self.log(i));
            }
            self.status(i).ok()
        });
    }

    /// kill -9 of node `i`.
    pub fn kill(&mut self, i: usize) {
        kill_child(&mut self.nodes[i].child);
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to node `i`'s process.
    pub fn signal(&self, i: usize, signal: &str) {
        signal_child(self.nodes[i].child.as_ref(), &self.nodes[i].name, signal);
    }

    /// Fills node `i`'s data dir (its tmpfs, [`NetClusterBuilder::data_tmpfs_mb`]) until
    /// the disk is full, seen through `/proc/<pid>/root` (the node's mount namespace).
    /// Returns the bytes written.
    pub fn fill_disk(&self, i: usize) -> u64 {
        use std::io::Write as _;
        assert!(self.builder.data_tmpfs_mb.is_some(), "fill_disk needs NetClusterBuilder::data_tmpfs_mb");
        let pid = self.nodes[i].child.as_ref().map(|c| c.id()).unwrap_or_else(|| panic!("{} is not running", self.nodes[i].name));
        let data = self.nodes[i].data_dir.strip_prefix("/").expect("absolute data dir");
        let path = PathBuf::from(format!("/proc/{pid}/root")).join(data).join("disk-filler");
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let _ = f.sync_all();
        written
    }

    /// Whether node `i` runs (was started and not killed).
    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Index of the node named `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Everything node `i` logged.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].stderr).unwrap_or_default()
    }

    /// Runs a future on the harness's runtime from a thread in the receiver namespace.
    pub fn block_on<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        in_netns(&self.net.receiver_ns(), || self.rt.block_on(f))
    }

    /// How to reach node `i`'s admin API (no token, no TLS).
    pub fn connection(&self, i: usize) -> Connection {
        Connection { addr: self.nodes[i].admin.to_string(), token: None, ca: None, identity: None }
    }

    /// One admin call on node `i`, bounded by `timeout`.
    pub fn call<T, Fut>(&self, i: usize, timeout: Duration, f: impl FnOnce(headend_node::ctl::client::Admin) -> Fut + Send) -> Result<T, tonic::Status>
    where
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send,
        T: Send,
    {
        let conn = self.connection(i);
        self.block_on(async move {
            let admin = conn.admin().map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            tokio::time::timeout(timeout, f(admin)).await.map_err(|_| tonic::Status::deadline_exceeded(format!("no answer in {timeout:?}")))?
        })
        .map(tonic::Response::into_inner)
    }

    /// `ClusterStatus` of node `i` (2 s bound).
    pub fn status(&self, i: usize) -> Result<pb::ClusterStatusReply, tonic::Status> {
        self.call(i, Duration::from_secs(2), |mut a| async move { a.cluster_status(pb::ClusterStatusRequest {}).await })
    }

    /// `RequestStream` through node `i`.
    pub fn request_stream(&self, i: usize, req: pb::RequestStreamRequest) -> Result<pb::StreamDelivery, tonic::Status> {
        self.call(i, Duration::from_secs(10), |mut a| async move { a.request_stream(req).await })
    }

    /// Channels node `i` holds (2 s bound).
    pub fn channels(&self, i: usize) -> Result<Vec<pb::Channel>, tonic::Status> {
        self.call(i, Duration::from_secs(2), |mut a| async move { a.list_channels(pb::ListChannelsRequest {}).await }).map(|l| l.channels)
    }

    /// Channel `id` as node `i` holds it.
    pub fn channel(&self, i: usize, id: &str) -> Option<pb::Channel> {
        self.channels(i).ok()?.into_iter().find(|c| c.id == id)
    }

    /// GET `path` on node `i`'s HTTP API, from the receiver namespace.
    pub fn http_get(&self, i: usize, path: &str) -> std::io::Result<HttpResponse> {
        let addr = self.nodes[i].http;
        in_netns(&self.net.receiver_ns(), || http_get(addr, path))
    }

    /// `/channels/{id}/status` of node `i` when it answers 200.
    pub fn channel_status(&self, i: usize, id: &str) -> Option<serde_json::Value> {
        let r = self.http_get(i, &format!("/channels/{id}/status")).ok()?;
        (r.status == 200).then(|| r.json())
    }

    /// Waits until every node in `among` names the same leader, one of them, in the same
    /// term; returns the leader's index.
    pub fn wait_leader(&self, among: &[usize], timeout: Duration) -> usize {
        wait_for(timeout, &format!("nodes {among:?} to agree on a leader among them"), || {
            let statuses: Vec<_> = among.iter().map(|i| self.status(*i).ok()).collect::<Option<Vec<_>>>()?;
            let first = &statuses[0];
            let agree = statuses.iter().all(|s| s.leader == first.leader && s.term == first.term && !s.leader.is_empty());
            let leader = among.iter().copied().find(|i| self.nodes[*i].name == first.leader)?;
            (agree && statuses.iter().any(|s| s.state == "leader")).then_some(leader)
        })
    }

    /// Waits until a running node's membership has `n` voters.
    pub fn wait_voters(&self, n: usize, timeout: Duration) {
        wait_for(timeout, &format!("{n} voters"), || {
            let i = (0..self.nodes.len()).find(|i| self.running(*i))?;
            let s = self.status(i).ok()?;
            let voters = s.members.iter().filter(|m| m.role != "learner").count();
            (voters == n).then_some(())
        });
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            // A stopped process must be woken to die of SIGKILL promptly in every kernel.
            if let Some(c) = &self.nodes[i].child {
                let _ = std::process::Command::new("kill").args(["-s", "CONT", &c.id().to_string()]).status();
            }
            self.kill(i);
        }
        if std::thread::panicking() {
            for (i, n) in self.nodes.iter().enumerate() {
                let log = self.log(i);
                // Raft's own retries flood the log when a peer is cut off.
                let lines: Vec<&str> = log.lines().filter(|l| !l.contains("openraft")).collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("---- {} ({}, ns {}) stderr, last {} lines (no openraft) ----\n{}\n----", n.name, n.ip, n.ns, tail.len(), tail.join("\n"));
            }
            if let Some(work) = self.work.take() {
                eprintln!("chaos: node configs, logs and data kept in {}", work.keep().display());
            }
        }
    }
}
