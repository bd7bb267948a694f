//! A harness for clusters of `headend run` processes: a builder that writes each node's
//! config (`[node.cluster]` on 127.0.0.x), starts the nodes, and injects faults (kill -9,
//! restart); the tests observe the cluster only through the nodes' gRPC admin API.
//!
//! Node `i` is named `n{i+1}` and listens on `127.0.0.{i+1}`; node 0 starts the cluster,
//! the others join it through node 0 as seed.

use headend_node::ctl::client::{Admin, Connection};
use headend_proto::admin as pb;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::{die_with_parent, headend_bin, headend_command, toml_str, wait_for, Channel};

/// How long a node may take to answer its admin API after start.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// TLS material made by `headend certs` for a test cluster.
#[derive(Debug, Clone)]
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// `(cert, key)` of `name`.
    pub fn identity(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")))
    }
}

/// Runs `headend certs` into `dir` for `nodes` and `clients`.
pub fn make_certs(dir: &Path, nodes: &[String], clients: &[&str]) -> CertDir {
    let mut cmd = headend_command();
    cmd.arg("certs").arg("--dir").arg(dir);
    for n in nodes {
        cmd.arg("--node").arg(n);
    }
    for c in clients {
        cmd.arg("--client").arg(c);
    }
    let out = cmd.output().expect("run headend certs");
    assert!(out.status.success(), "headend certs failed: {}", String::from_utf8_lossy(&out.stderr));
    CertDir { dir: dir.to_path_buf() }
}

/// Builds a [`TestCluster`].
#[derive(Debug)]
pub struct ClusterBuilder {
    nodes: usize,
    token: Option<String>,
    tls: bool,
    snapshot_logs: Option<u64>,
    lease_ms: u64,
    /// `(heartbeat, election min, election max)`, ms.
    timing: (u64, u64, u64),
    channels: Vec<(usize, Channel)>,
    /// `[node.recorder] segment_secs` of every node.
    recorder_segment_secs: Option<u64>,
    /// Environment of every node's process (credentials of an object store).
    env: Vec<(String, String)>,
}

impl ClusterBuilder {
    /// A cluster of `nodes` voters.
    pub fn new(nodes: usize) -> Self {
        ClusterBuilder { nodes, token: None, tls: false, snapshot_logs: None, lease_ms: 1000, timing: (40, 100, 200), channels: Vec::new(), recorder_segment_secs: None, env: Vec::new() }
    }

    /// Requires this bearer token on the admin API.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Mutual TLS between nodes and on the admin API (certificates by `headend certs`).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Snapshot (and compact the log) every `n` entries.
    pub fn snapshot_logs(mut self, n: u64) -> Self {
        self.snapshot_logs = Some(n);
        self
    }

    /// Lease of each node, ms.
    pub fn lease_ms(mut self, ms: u64) -> Self {
        self.lease_ms = ms;
        self
    }

    /// Raft heartbeat and election timeout range, ms (default 40, 100..200 as a node's).
    pub fn timing(mut self, heartbeat_ms: u64, election_min_ms: u64, election_max_ms: u64) -> Self {
        self.timing = (heartbeat_ms, election_min_ms, election_max_ms);
        self
    }

    /// Recorded segments of `secs` on every node (default 60 s).
    pub fn recorder_segment_secs(mut self, secs: u64) -> Self {
        self.recorder_segment_secs = Some(secs);
        self
    }

    /// Sets an environment variable of every node's process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A `[[channels]]` table node `index` plays from its config file.
    pub fn local_channel(mut self, index: usize, c: Channel) -> Self {
        self.channels.push((index, c));
        self
    }

    /// Writes the configs, starts node 0, waits until it leads, then starts the others
    /// and waits until every node is a voter.
    pub fn start(self) -> TestCluster {
        let work = tempfile::Builder::new().prefix("headend-raft-").tempdir().expect("temp dir");
        let names: Vec<String> = (0..self.nodes).map(|i| format!("n{}", i + 1)).collect();
        let certs = self.tls.then(|| make_certs(&work.path().join("certs"), &names, &["admin"]));
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let mut cluster = TestCluster { rt, nodes: Vec::new(), token: self.token.clone(), certs, work, builder: self };
        for i in 0..cluster.builder.nodes {
            cluster.add_node(i == 0, true);
        }
        cluster.start(0);
        cluster.wait_leader(&[0], Duration::from_secs(10));
        for i in 1..cluster.nodes.len() {
            cluster.start(i);
        }
        let n = cluster.nodes.len();
        cluster.wait_voters(n, Duration::from_secs(30));
        cluster
    }
}

/// The `[node]` and `[node.cluster]` tables of a test cluster's node (written by this
/// harness and by [`crate::netcluster`]).
#[derive(Debug, Clone)]
pub struct NodeToml<'a> {
    pub name: &'a str,
    pub data_dir: &'a Path,
    /// Its address: listeners and `[node.cluster] interfaces`.
    pub ip: Ipv4Addr,
    pub http: SocketAddr,
    pub rtsp: Option<SocketAddr>,
    pub raft: SocketAddr,
    pub admin: SocketAddr,
    /// `(heartbeat, election min, election max)`, ms.
    pub timing: (u64, u64, u64),
    pub lease_ms: u64,
    pub bootstrap: bool,
}

impl NodeToml<'_> {
    pub fn render(&self) -> String {
        let rtsp = self.rtsp.map(|a| format!("rtsp_listen = \"{a}\"\n")).unwrap_or_default();
        format!(
            "version = 1\n\n[node]\nid = \"{}\"\ndata_dir = {}\nhttp_listen = \"{}\"\n{rtsp}log_format = \"text\"\n\n\
             [node.cluster]\nraft_listen = \"{}\"\nadmin_listen = \"{}\"\nheartbeat_ms = {}\n\
             election_timeout_min_ms = {}\nelection_timeout_max_ms = {}\nlease_ms = {}\nbootstrap = {}\n\
             interfaces = [\"{}\"]\n",
            self.name,
            toml_str(&self.data_dir.display().to_string()),
            self.http,
            self.raft,
            self.admin,
            self.timing.0,
            self.timing.1,
            self.timing.2,
            self.lease_ms,
            self.bootstrap,
            self.ip,
        )
    }
}

/// kill -9 of a node's process, if it runs, and reaps it.
pub fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Sends `signal` (`STOP`, `CONT`, ...) to node `name`'s running process.
pub fn signal_child(child: Option<&Child>, name: &str, signal: &str) {
    let pid = child.map(|c| c.id()).unwrap_or_else(|| panic!("{name} is not running"));
    let ok = std::process::Command::new("kill").arg("-s").arg(signal).arg(pid.to_string()).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -s {signal} {pid}");
}

/// One node's process and addresses.
#[derive(Debug)]
pub struct NodeProc {
    pub name: String,
    pub ip: Ipv4Addr,
    pub raft: SocketAddr,
    pub admin: SocketAddr,
    pub http: SocketAddr,
    pub rtsp: SocketAddr,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
}

/// A running test cluster. Dropping it kills every node.
#[derive(Debug)]
pub struct TestCluster {
    rt: tokio::runtime::Runtime,
    pub nodes: Vec<NodeProc>,
    token: Option<String>,
    certs: Option<CertDir>,
    work: tempfile::TempDir,
    builder: ClusterBuilder,
}

/// `N` distinct free TCP ports on `ip` (all held open while they are chosen: ports taken
/// one after the other can come back the same).
fn free_ports_on<const N: usize>(ip: Ipv4Addr) -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))).collect();
    std::array::from_fn(|i| held[i].local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("local address on {ip}: {e}")))
}

impl TestCluster {
    /// Runs a future on the harness's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The certificates, when the cluster runs TLS.
    pub fn certs(&self) -> Option<&CertDir> {
        self.certs.as_ref()
    }

    /// Writes the config of a new node (not started). `seeded`: it joins node 0;
    /// otherwise `bootstrap` decides whether it initializes a cluster of its own or waits
    /// to be added. Returns its index.
    pub fn add_node(&mut self, bootstrap: bool, seeded: bool) -> usize {
        let i = self.nodes.len();
        let name = format!("n{}", i + 1);
        let ip = Ipv4Addr::new(127, 0, 0, (i + 1) as u8);
        let [raft, admin, http, rtsp] = free_ports_on(ip).map(|p| SocketAddr::from((ip, p)));
        let dir = self.work.path().join(&name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let data_dir = dir.join("data");
        let mut toml = NodeToml {
            name: &name,
            data_dir: &data_dir,
            ip,
            http,
            rtsp: Some(rtsp),
            raft,
            admin,
            timing: self.builder.timing,
            lease_ms: self.builder.lease_ms,
            bootstrap,
        }
        .render();
        if seeded && i > 0 {
            toml.push_str(&format!("seeds = [\"{}\"]\n", self.nodes[0].raft));
        }
        if let Some(n) = self.builder.snapshot_logs {
            toml.push_str(&format!("snapshot_logs = {n}\n"));
        }
        if let Some(token) = &self.token {
            let path = dir.join("admin.token");
            std::fs::write(&path, format!("{token}\n")).expect("token file");
            toml.push_str(&format!("admin_token_file = {}\n", toml_str(&path.display().to_string())));
        }
        if let Some(certs) = &self.certs {
            if !certs.dir.join(format!("{name}.pem")).is_file() {
                make_certs(&certs.dir, std::slice::from_ref(&name), &[]);
            }
            let (cert, key) = certs.identity(&name);
            toml.push_str(&format!(
                "\n[node.cluster.tls]\nca = {}\ncert = {}\nkey = {}\n",
                toml_str(&certs.ca().display().to_string()),
                toml_str(&cert.display().to_string()),
                toml_str(&key.display().to_string())
            ));
        }
        if let Some(secs) = self.builder.recorder_segment_secs {
            toml.push_str(&format!("\n[node.recorder]\nsegment_secs = {secs}\n"));
        }
        toml.push('\n');
        for (_, c) in self.builder.channels.iter().filter(|(n, _)| *n == i) {
            toml.push_str(&c.to_toml());
        }
        let config = dir.join("headend.toml");
        std::fs::write(&config, toml).expect("write config");
        self.nodes.push(NodeProc { name, ip, raft, admin, http, rtsp, data_dir, config, stderr: dir.join("stderr.log"), child: None });
        i
    }

    /// Starts node `i` (again) and waits until its admin API answers.
    pub fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is running", node.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.stderr).expect("stderr log");
        let mut cmd = headend_command();
        cmd.envs(self.builder.env.iter().map(|(k, v)| (k, v)));
        cmd.env("RUST_LOG", "info,openraft=warn").arg("run").arg("--config").arg(&node.config).stdout(Stdio::null()).stderr(log);
        die_with_parent(&mut cmd);
        node.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", headend_bin().display())));
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

    /// Index of the node named `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Whether node `i` runs.
    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Everything node `i` logged.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].stderr).unwrap_or_default()
    }

    /// How to reach node `i`'s admin API as an operator (token, TLS with the `admin`
    /// client certificate).
    pub fn connection(&self, i: usize) -> Connection {
        Connection {
            addr: self.nodes[i].admin.to_string(),
            token: self.token.clone(),
            ca: self.certs.as_ref().map(CertDir::ca),
            identity: self.certs.as_ref().map(|c| c.identity("admin")),
        }
    }

    /// An admin client of node `i`.
    pub fn admin(&self, i: usize) -> Admin {
        let _guard = self.rt.enter();
        self.connection(i).admin().expect("admin client")
    }

    /// `ClusterStatus` of node `i`.
    pub fn status(&self, i: usize) -> Result<pb::ClusterStatusReply, tonic::Status> {
        let mut a = self.admin(i);
        self.block_on(async move {
            tokio::time::timeout(Duration::from_secs(2), a.cluster_status(pb::ClusterStatusRequest {}))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("no answer in 2 s"))?
        })
        .map(|r| r.into_inner())
    }

    /// Waits until every node in `among` names the same leader, which is one of them, in
    /// the same term; returns the leader's index.
    pub fn wait_leader(&self, among: &[usize], timeout: Duration) -> usize {
        wait_for(timeout, &format!("nodes {among:?} to agree on a leader among them"), || {
            let statuses: Vec<_> = among.iter().map(|i| self.status(*i).ok()).collect::<Option<Vec<_>>>()?;
            let first = &statuses[0];
            let agree = statuses.iter().all(|s| s.leader == first.leader && s.term == first.term && !s.leader.is_empty());
            let leader = among.iter().copied().find(|i| self.nodes[*i].name == first.leader)?;
            (agree && statuses.iter().any(|s| s.state == "leader")).then_some(leader)
        })
    }

    /// Waits until node 0's (or any running node's) membership has `n` voters, all known.
    pub fn wait_voters(&self, n: usize, timeout: Duration) {
        wait_for(timeout, &format!("{n} voters"), || {
            let i = (0..self.nodes.len()).find(|i| self.running(*i))?;
            let s = self.status(i).ok()?;
            let voters = s.members.iter().filter(|m| m.role != "learner").count();
            (voters == n).then_some(())
        });
    }

    /// Requests a stream for channel `name` on `239.255.211.octet:5000` through node `i`.
    pub fn request_stream(&self, i: usize, name: &str, octet: u8) -> Result<pb::StreamDelivery, tonic::Status> {
        let mut a = self.admin(i);
        let req = stream_request(name, &format!("239.255.211.{octet}"), 5000);
        self.block_on(async move { a.request_stream(req).await }).map(|r| r.into_inner())
    }

    /// Channel ids node `i` holds.
    pub fn channel_ids(&self, i: usize) -> Result<Vec<String>, tonic::Status> {
        let mut a = self.admin(i);
        let list = self.block_on(async move { a.list_channels(pb::ListChannelsRequest {}).await })?.into_inner();
        Ok(list.channels.into_iter().map(|c| c.id).collect())
    }

    /// Channels node `i` holds.
    pub fn channels(&self, i: usize) -> Result<Vec<pb::Channel>, tonic::Status> {
        let mut a = self.admin(i);
        Ok(self.block_on(async move { a.list_channels(pb::ListChannelsRequest {}).await })?.into_inner().channels)
    }

    /// Waits until every running node holds exactly `ids` (sorted), the same on all.
    pub fn wait_channels(&self, ids: &[String], timeout: Duration) {
        let mut want = ids.to_vec();
        want.sort();
        wait_for(timeout, &format!("every running node to hold channels {want:?}"), || {
            (0..self.nodes.len()).filter(|i| self.running(*i)).all(|i| self.channel_ids(i).ok().as_ref() == Some(&want)).then_some(())
        });
    }

    /// Time from `start` until `among` agree on a leader (for measurements).
    pub fn time_to_leader(&self, among: &[usize], start: Instant, timeout: Duration) -> (usize, Duration) {
        let leader = self.wait_leader(among, timeout);
        (leader, start.elapsed())
    }
}

/// A `RequestStream` for an H.264/AAC channel `name` on `group:port`.
pub fn stream_request(name: &str, group: &str, port: u32) -> pb::RequestStreamRequest {
    pb::RequestStreamRequest {
        channel: Some(pb::request_stream_request::Channel::Name(name.into())),
        format: Some(pb::StreamFormat {
            video_codec: pb::VideoCodec::H264 as i32,
            width: 1280,
            height: 720,
            video_bitrate: 2_000_000,
            audio_codec: pb::AudioCodec::Aac as i32,
            audio_bitrate: 128_000,
        }),
        protocol: pb::Protocol::Multicast as i32,
        destination: Some(pb::Destination { group: group.into(), port }),
        template: String::new(),
        media_folder: String::new(),
        render: false,
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            for (i, n) in self.nodes.iter().enumerate() {
                let log = self.log(i);
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("---- {} (raft {}, admin {}) stderr, last {} lines ----\n{}\n----", n.name, n.raft, n.admin, tail.len(), tail.join("\n"));
            }
        }
    }
}
