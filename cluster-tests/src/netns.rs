//! A virtual network of Linux network namespaces for chaos tests (root, iproute2 and
//! nftables needed): one namespace holding a bridge, one namespace per node and one
//! receiver namespace, each joined to the bridge by a veth pair. Node `i` is
//! `10.77.0.{i+1}/24`, the receiver `10.77.0.200/24`; every member has `lo` up and the
//! route `224.0.0.0/4 dev eth0`, and the bridge floods multicast (snooping off), so a
//! group sent by one node reaches the receiver and every other node through the bridge.
//!
//! Nothing is created in the host's own namespace: veth pairs are made inside the bridge
//! namespace with their other end moved straight into the member's namespace, so the
//! same addresses can be used by several [`Net`]s at once. Namespace names are
//! `hdc<pid>-<n>-<role>` (role `br`, `n1`.., `rx`); dropping the [`Net`] kills what still
//! runs in them and deletes them (bridge first `ip link del`, then `ip netns del`), and
//! [`NetBuilder::build`] first deletes those a crashed earlier run left (its pid is gone).
//!
//! Faults: [`Net::link_down`] (the node's port on the bridge goes down);
//! [`Net::partition_tcp`] / [`Net::block_tcp_port`] / [`Net::block_tcp_to`] (nft rules
//! inside a node's namespace: TCP cut, multicast untouched); [`Net::tcp_loss`] (nft
//! random drop); delay with [`Net::netem`] / [`Net::netem_tcp`] (`tc netem`, where the
//! kernel has sch_netem: [`Net::netem_supported`]) or without netem with
//! [`Net::relay_tcp`] + [`Net::set_tcp_delay`] (nft redirects a node's connections to a
//! port through in-process relays that hold each chunk). Every failing `ip`/`tc`/`nft`
//! command panics or errs with the command line and its stderr.
//!
//! The test process itself stays in the host namespace; [`in_netns`] runs a closure on a
//! thread that has entered a namespace with `setns(2)`, so sockets it creates (a capture,
//! an HTTP or gRPC client) live there; [`Net::capture`] is a
//! `headend_actors::playout::capture::Capture` made that way in the receiver namespace.

use anyhow::{anyhow, bail, Context as _, Result};
use headend_actors::playout::capture::Capture;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// First three octets of the test subnet.
pub const SUBNET: [u8; 3] = [10, 77, 0];
/// Last octet of the receiver's address.
pub const RECEIVER_OCTET: u8 = 200;
/// Prefix of every namespace a [`Net`] creates.
pub const NS_PREFIX: &str = "hdc";
/// The member's end of its veth pair, in its own namespace.
pub const MEMBER_IF: &str = "eth0";
/// The bridge, in the bridge namespace.
pub const BRIDGE_IF: &str = "br0";

/// First local port of the delay relays ([`Net::tcp_delay`]).
pub const DELAY_PORT_BASE: u16 = 17000;
/// SO_MARK of the relays' own connections, which the redirection skips.
const RELAY_MARK: u32 = 0x77;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command and returns its output; an error names the command line, its exit
/// status and its stderr (and says what is likely missing).
pub fn run_cmd(cmd: &mut Command) -> Result<Output> {
    let line = command_line(cmd);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!("`{line}`: {e}; is iproute2 (ip, tc) / nftables (nft) installed? (deploy/install-deps.sh)")
        } else {
            anyhow!("`{line}`: cannot run: {e}")
        }
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
            " (network namespaces need root: run the chaos tests as root)"
        } else {
            ""
        };
        bail!("`{line}` failed ({}){hint}: {}", out.status, stderr.trim());
    }
    Ok(out)
}

/// The program and arguments of `cmd`, for messages.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// `ip <args>`.
fn ip(args: &[&str]) -> Result<Output> {
    run_cmd(Command::new("ip").args(args))
}

/// Whether a process with this pid exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Names in `ip netns list` (first word of each line).
fn list_netns() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

/// SIGKILLs what still runs in namespace `ns` (processes our tests started there), then
/// deletes its bridge, if any, and the namespace. Errors are returned, not raised.
fn delete_netns(ns: &str) -> Result<()> {
    if let Ok(out) = ip(&["netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            kill_pid(pid);
        }
    }
    if ns.ends_with("-br") {
        let _ = ip(&["-n", ns, "link", "del", BRIDGE_IF]);
    }
    ip(&["netns", "del", ns]).map(|_| ())
}

#[allow(unsafe_code)]
fn kill_pid(pid: i32) {
    // SAFETY: kill(2) with a pid read from `ip netns pids` of a namespace this harness
    // created; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Deletes the namespaces of [`Net`]s whose process is gone (a crashed or killed earlier
/// run); returns their names.
pub fn clean_leftovers() -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for ns in list_netns()? {
        let Some(rest) = ns.strip_prefix(NS_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !alive(pid) {
            delete_netns(&ns)?;
            deleted.push(ns);
        }
    }
    Ok(deleted)
}

/// Enters network namespace `ns` (`/var/run/netns/<ns>`) on the calling thread only.
#[allow(unsafe_code)]
pub fn enter_netns(ns: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{ns}");
    let file = std::fs::File::open(&path).map_err(|e| std::io::Error::new(e.kind(), format!("open {path}: {e}")))?;
    // SAFETY: setns(2) on a valid open descriptor of a network namespace; it changes the
    // calling thread's namespace and touches no memory of ours.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("setns({path}): {e} (needs root)")));
    }
    Ok(())
}

/// Runs `f` on a new thread that has entered namespace `ns`, and returns its result (a
/// panic in `f` is resumed on the caller).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            enter_netns(ns).unwrap_or_else(|e| panic!("{e}"));
            f()
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// Builds a [`Net`].
#[derive(Debug, Clone)]
pub struct NetBuilder {
    nodes: usize,
}

/// The virtual network; dropping it deletes every namespace (and kills what still runs
/// in them).
#[derive(Debug)]
pub struct Net {
    prefix: String,
    nodes: usize,
    created: Vec<String>,
    /// Stops the delay relays' accept loops.
    stop: Arc<AtomicBool>,
    /// What the delay relays add each way, µs.
    delay_us: Arc<AtomicU64>,
}

impl NetBuilder {
    /// Creates the namespaces, links and routes (after deleting leftovers of dead runs).
    pub fn build(self) -> Result<Net> {
        assert!((1..RECEIVER_OCTET as usize).contains(&self.nodes), "1..200 nodes");
        clean_leftovers().context("cleaning namespaces left by earlier runs")?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut net = Net { prefix: format!("{NS_PREFIX}{}-{n}", std::process::id()), nodes: self.nodes, created: Vec::new(), stop: Arc::new(AtomicBool::new(false)), delay_us: Arc::new(AtomicU64::new(0)) };
        net.create().context("setting up the chaos network (ip netns, veth, bridge)")?;
        Ok(net)
    }
}

impl Net {
    pub fn builder(nodes: usize) -> NetBuilder {
        NetBuilder { nodes }
    }

    /// A network with `nodes` node namespaces; panics with the failing command.
    pub fn new(nodes: usize) -> Net {
        Self::builder(nodes).build().unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn create(&mut self) -> Result<()> {
        let br = self.bridge_ns();
        self.add_ns(&br)?;
        ip(&["-n", &br, "link", "add", BRIDGE_IF, "type", "bridge", "mcast_snooping", "0", "stp_state", "0"])?;
        ip(&["-n", &br, "link", "set", BRIDGE_IF, "up"])?;
        for i in 0..self.nodes {
            self.add_member(&self.node_ns(i), &format!("p{}", i + 1), self.node_ip(i))?;
        }
        self.add_member(&self.receiver_ns(), "prx", self.receiver_ip())?;
        Ok(())
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn add_member(&mut self, ns: &str, port: &str, addr: Ipv4Addr) -> Result<()> {
        let br = self.bridge_ns();
        self.add_ns(ns)?;
        ip(&["-n", &br, "link", "add", port, "type", "veth", "peer", "name", MEMBER_IF, "netns", ns])?;
        ip(&["-n", &br, "link", "set", port, "master", BRIDGE_IF])?;
        ip(&["-n", &br, "link", "set", port, "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", MEMBER_IF])?;
        ip(&["-n", ns, "link", "set", MEMBER_IF, "up"])?;
        ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", MEMBER_IF])?;
        Ok(())
    }

    /// Number of node namespaces.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The namespace holding the bridge.
    pub fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// Node `i`'s namespace.
    pub fn node_ns(&self, i: usize) -> String {
        assert!(i < self.nodes, "no node {i}");
        format!("{}-n{}", self.prefix, i + 1)
    }

    /// The receiver's namespace.
    pub fn receiver_ns(&self) -> String {
        format!("{}-rx", self.prefix)
    }

    /// Node `i`'s address, `10.77.0.{i+1}`.
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], (i + 1) as u8)
    }

    /// The receiver's address, `10.77.0.200`.
    pub fn receiver_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], RECEIVER_OCTET)
    }

    /// Node `i`'s port on the bridge (in the bridge namespace).
    fn port(&self, i: usize) -> String {
        assert!(i < self.nodes, "no node {i}");
        format!("p{}", i + 1)
    }

    /// `ip netns exec <ns> <cmd...>`: `cmd`'s program, arguments, environment and
    /// working directory, run inside namespace `ns`.
    pub fn exec(ns: &str, cmd: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }

    /// Runs `program args` in namespace `ns` to completion (error: the command and its
    /// stderr).
    pub fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<Output> {
        let mut c = Command::new(program);
        c.args(args);
        run_cmd(&mut Self::exec(ns, &c))
    }

    /// Cuts node `i`'s cable at the switch: its bridge port goes down (the node's own
    /// `eth0` stays up but loses carrier; everything it sends is dropped).
    pub fn link_down(&self, i: usize) {
        ip(&["-n", &self.bridge_ns(), "link", "set", &self.port(i), "down"]).unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Plugs node `i`'s cable back in.
    pub fn link_up(&self, i: usize) {
        ip(&["-n", &self.bridge_ns(), "link", "set", &self.port(i), "up"]).unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// The two ends of node `i`'s link: `(namespace, interface)`.
    fn ends(&self, i: usize) -> [(String, String); 2] {
        [(self.node_ns(i), MEMBER_IF.to_owned()), (self.bridge_ns(), self.port(i))]
    }

    /// Whether the kernel has `tc netem` (sch_netem); some VM kernels are built without
    /// it, and then only [`Net::tcp_loss`] (nft) can degrade a link.
    pub fn netem_supported(&self) -> bool {
        let br = self.bridge_ns();
        let ok = run_cmd(Command::new("tc").args(["-n", &br, "qdisc", "add", "dev", BRIDGE_IF, "root", "netem", "delay", "0ms"])).is_ok();
        if ok {
            let _ = run_cmd(Command::new("tc").args(["-n", &br, "qdisc", "del", "dev", BRIDGE_IF, "root"]));
        }
        ok
    }

    fn tc(ns: &str, args: &[&str]) {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        run_cmd(Command::new("tc").args(&all)).unwrap_or_else(|e| {
            let hint = if format!("{e}").contains("qdisc kind is unknown") {
                "\n(this kernel lacks that qdisc, e.g. sch_netem; Net::tcp_loss makes loss with nft instead)"
            } else {
                ""
            };
            panic!("{e:#}{hint}")
        });
    }

    /// `tc netem <spec>` (e.g. `"loss 2% delay 50ms"`) on all traffic of node `i`'s link,
    /// both directions (the egress of its `eth0` and of its bridge port).
    pub fn netem(&self, i: usize, spec: &str) {
        for (ns, dev) in self.ends(i) {
            let mut args = vec!["qdisc", "replace", "dev", &dev, "root", "netem"];
            args.extend(spec.split_whitespace());
            Self::tc(&ns, &args);
        }
    }

    /// `tc netem <spec>` on the TCP traffic node `i` sends (Raft, admin, HTTP): an `htb`
    /// root on its `eth0` whose default class passes everything, and a second class with
    /// a netem leaf that a u32 filter feeds with IP protocol 6; multicast (UDP) goes
    /// through untouched. Call it on every node to degrade every direction once.
    pub fn netem_tcp(&self, i: usize, spec: &str) {
        {
            let (ns, dev) = (self.node_ns(i), MEMBER_IF.to_owned());
            let _ = run_cmd(Command::new("tc").args(["-n", &ns, "qdisc", "del", "dev", &dev, "root"]));
            Self::tc(&ns, &["qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb", "default", "1", "r2q", "100000"]);
            Self::tc(&ns, &["class", "add", "dev", &dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"]);
            Self::tc(&ns, &["class", "add", "dev", &dev, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit"]);
            let mut netem = vec!["qdisc", "add", "dev", &dev, "parent", "1:2", "handle", "20:", "netem"];
            netem.extend(spec.split_whitespace());
            Self::tc(&ns, &netem);
            Self::tc(&ns, &["filter", "add", "dev", &dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "protocol", "6", "0xff", "flowid", "1:2"]);
        }
    }

    /// Removes the qdiscs [`Net::netem`] / [`Net::netem_tcp`] added on node `i`'s link.
    pub fn clear_netem(&self, i: usize) {
        for (ns, dev) in self.ends(i) {
            let _ = run_cmd(Command::new("tc").args(["-n", &ns, "qdisc", "del", "dev", &dev, "root"]));
        }
    }

    /// Drops `percent` % of the TCP segments node `i` sends to the other nodes, at random
    /// (nft `numgen random` in node `i`'s namespace): loss without netem. Call it on
    /// every node to degrade every direction once. [`Net::clear_tcp_loss`] removes it.
    pub fn tcp_loss(&self, i: usize, percent: u32) {
        let set = self.peer_set(i);
        let chance = if percent >= 100 { String::new() } else { format!("numgen random mod 100 < {percent} ") };
        self.nft(
            i,
            "chaos_loss",
            &format!("  chain output {{ type filter hook output priority 0; policy accept; ip daddr {set} meta l4proto tcp {chance}drop; }}"),
        );
    }

    /// Removes [`Net::tcp_loss`].
    pub fn clear_tcp_loss(&self, i: usize) {
        self.nft(i, "chaos_loss", "");
    }

    /// The other nodes' addresses as an nft set.
    fn peer_set(&self, i: usize) -> String {
        let peers: Vec<String> = (0..self.nodes).filter(|j| *j != i).map(|j| self.node_ip(j).to_string()).collect();
        format!("{{ {} }}", peers.join(", "))
    }

    /// Loads an nft table `inet <table>` (replacing it; empty `rules`: deleted) into node
    /// `i`'s namespace.
    fn nft(&self, i: usize, table: &str, rules: &str) {
        self.nft_family(i, "inet", table, rules);
    }

    /// Loads an nft table `<family> <table>` into node `i`'s namespace (see [`Net::nft`]).
    fn nft_family(&self, i: usize, family: &str, table: &str, rules: &str) {
        let ns = self.node_ns(i);
        let _ = Self::run_in(&ns, "nft", &["delete", "table", family, table]);
        if rules.is_empty() {
            return;
        }
        let script = format!("table {family} {table} {{\n{rules}\n}}\n");
        let mut c = Command::new("nft");
        c.args(["-f", "-"]);
        let mut cmd = Self::exec(&ns, &c);
        let line = command_line(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("`{line}`: {e}; is iproute2 installed?"));
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write nft script");
        let out = child.wait_with_output().expect("nft output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("No such file") || stderr.contains("nft") && out.status.code() == Some(255) {
            " (is nftables installed? deploy/install-deps.sh)"
        } else {
            ""
        };
        assert!(out.status.success(), "`{line}` with\n{script}failed ({}){hint}: {}", out.status, stderr.trim());
    }

    /// Sends node `i`'s TCP connections to the other nodes' `port` (e.g. Raft's) through
    /// relays that hold every chunk [`Net::set_tcp_delay`] before passing it on (0 at
    /// first): delay without netem. nft (`nat output`, table `ip chaos_delay`) redirects
    /// them to one listener per peer on `10.77.0.{i+1}:17001+j`, in node `i`'s namespace;
    /// the relay's own connection to the peer is marked so it is not redirected again.
    /// Install it before the connections open (`NetClusterBuilder::raft_relays`): a
    /// connection already open when the redirection appears is reset (conntrack picks it
    /// up mid-stream and sends it to the relay). Installed on every node, every Raft link
    /// is delayed once each way.
    pub fn relay_tcp(&self, i: usize, port: u16) {
        let ns = self.node_ns(i);
        let me = self.node_ip(i);
        let mut rules = String::from("  chain out {\n    type nat hook output priority -100; policy accept;\n");
        for j in (0..self.nodes).filter(|j| *j != i) {
            let local = DELAY_PORT_BASE + j as u16 + 1;
            let listener = in_netns(&ns, || TcpListener::bind((me, local)))
                .unwrap_or_else(|e| panic!("delay relay: bind {me}:{local} in {ns}: {e}"));
            listener.set_nonblocking(true).expect("nonblocking listener");
            let target = SocketAddr::from((self.node_ip(j), port));
            let (stop, delay, ns2) = (self.stop.clone(), self.delay_us.clone(), ns.clone());
            std::thread::Builder::new()
                .name(format!("delay-{}-{}", i + 1, j + 1))
                .spawn(move || {
                    enter_netns(&ns2).unwrap_or_else(|e| panic!("delay relay: {e}"));
                    accept_and_delay(&listener, target, &delay, &stop);
                })
                .expect("spawn delay relay");
            rules.push_str(&format!("    ip daddr {} tcp dport {port} meta mark != {RELAY_MARK:#x} dnat to {me}:{local};\n", self.node_ip(j)));
        }
        rules.push_str("  }");
        self.nft_family(i, "ip", "chaos_delay", &rules);
    }

    /// The delay every relay of this network ([`Net::relay_tcp`]) adds each way, from now.
    pub fn set_tcp_delay(&self, delay: Duration) {
        self.delay_us.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// [`Net::relay_tcp`] and [`Net::set_tcp_delay`] at once (resets node `i`'s open
    /// connections to `port`).
    pub fn tcp_delay(&self, i: usize, port: u16, delay: Duration) {
        self.relay_tcp(i, port);
        self.set_tcp_delay(delay);
    }

    /// Removes [`Net::tcp_delay`]'s redirection (connections already relayed stay so).
    pub fn clear_tcp_delay(&self, i: usize) {
        self.nft_family(i, "ip", "chaos_delay", "");
    }

    /// Cuts node `i` off from the other nodes over TCP (Raft, forwarding, admin between
    /// nodes) in both directions, inside its namespace; UDP (multicast) and TCP with the
    /// receiver namespace (the test's admin calls) still pass.
    pub fn partition_tcp(&self, i: usize) {
        let set = self.peer_set(i);
        self.nft(
            i,
            "chaos",
            &format!(
                "  chain input {{ type filter hook input priority 0; policy accept; ip saddr {set} meta l4proto tcp drop; }}\n  \
                 chain output {{ type filter hook output priority 0; policy accept; ip daddr {set} meta l4proto tcp drop; }}"
            ),
        );
    }

    /// Refuses (TCP reset) node `i`'s connections to `addr` (e.g. a content store), in
    /// its namespace; [`Net::unblock_tcp_to`] removes it.
    pub fn block_tcp_to(&self, i: usize, addr: SocketAddr) {
        self.nft(
            i,
            "chaos_to",
            &format!("  chain output {{ type filter hook output priority 0; policy accept; ip daddr {} tcp dport {} reject with tcp reset; }}", addr.ip(), addr.port()),
        );
    }

    /// Removes [`Net::block_tcp_to`].
    pub fn unblock_tcp_to(&self, i: usize) {
        self.nft(i, "chaos_to", "");
    }

    /// Drops TCP to `port` arriving at node `i` (e.g. its Raft port).
    pub fn block_tcp_port(&self, i: usize, port: u16) {
        self.nft(i, "chaos", &format!("  chain input {{ type filter hook input priority 0; policy accept; tcp dport {port} drop; }}"));
    }

    /// Removes node `i`'s nft rules ([`Net::partition_tcp`], [`Net::block_tcp_port`]).
    pub fn heal_tcp(&self, i: usize) {
        self.nft(i, "chaos", "");
    }

    /// Joins `group:port` in the receiver namespace, on the receiver's address, and
    /// records datagrams with arrival time and source.
    pub fn capture(&self, group: Ipv4Addr, port: u16) -> Capture {
        self.capture_in(&self.receiver_ns(), self.receiver_ip(), group, port)
    }

    /// Joins `group:port` in namespace `ns` on `interface` (a capture thread whose socket
    /// belongs to that namespace).
    pub fn capture_in(&self, ns: &str, interface: Ipv4Addr, group: Ipv4Addr, port: u16) -> Capture {
        in_netns(ns, || Capture::start(group, port, interface))
            .unwrap_or_else(|e| panic!("cannot join {group}:{port} on {interface} in namespace {ns}: {e}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Members first, the bridge namespace last.
        for ns in self.created.iter().rev() {
            if let Err(e) = delete_netns(ns) {
                eprintln!("chaos net: cleanup: {e:#}");
            }
        }
    }
}

/// The accept loop of one delay relay: each connection accepted is relayed to `target`
/// with `delay_us` added each way, until `stop`.
fn accept_and_delay(listener: &TcpListener, target: SocketAddr, delay_us: &Arc<AtomicU64>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => continue,
        };
        let upstream = (|| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
            s.set_mark(RELAY_MARK)?;
            s.connect_timeout(&target.into(), Duration::from_secs(2))?;
            std::io::Result::Ok(TcpStream::from(s))
        })();
        let Ok(upstream) = upstream else { continue };
        let _ = client.set_nonblocking(false);
        let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
        for (from, to) in [(client.try_clone(), upstream.try_clone()), (upstream.try_clone(), client.try_clone())] {
            if let (Ok(from), Ok(to)) = (from, to) {
                delay_one_way(from, to, delay_us.clone());
            }
        }
    }
}

/// Copies `from` to `to`, each chunk `delay_us` after it was read (two threads: a reader
/// stamping chunks, a writer sleeping until each is due).
fn delay_one_way(mut from: TcpStream, mut to: TcpStream, delay_us: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let delay = Duration::from_micros(delay_us.load(Ordering::Relaxed));
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(std::net::Shutdown::Read);
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
