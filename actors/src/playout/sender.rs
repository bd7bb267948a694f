//! Multicast output: a UDP socket set up for the channel's group (TTL, outgoing interface,
//! loopback), 7 packets per datagram, optional RTP (RFC 2250, payload type 33), and the
//! collision check that listens on the group before the first datagram.

use super::spec::MulticastOutput;
use crate::ts::TsPacket;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Transport packets per UDP datagram (7 x 188 = 1316 bytes, under a 1500-byte MTU).
pub const PACKETS_PER_DATAGRAM: usize = 7;
pub const RTP_PAYLOAD_TYPE_MP2T: u8 = 33;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("multicast output {group}:{port}: cannot {what}: {source}")]
    Socket { group: Ipv4Addr, port: u16, what: &'static str, source: std::io::Error },
    #[error("multicast group {group}:{port} already carries a stream from {source_addr}; another headend or encoder is sending there")]
    Collision { group: Ipv4Addr, port: u16, source_addr: String },
}

/// Sends a channel's datagrams.
#[derive(Debug)]
pub struct MulticastSender {
    socket: UdpSocket,
    dest: SockAddr,
    rtp: Option<RtpState>,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct RtpState {
    sequence: u16,
    ssrc: u32,
}

impl MulticastSender {
    pub fn open(out: &MulticastOutput, ssrc: u32) -> Result<Self, OutputError> {
        let err = |what| move |source| OutputError::Socket { group: out.group, port: out.port, what, source };
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("create a UDP socket"))?;
        s.set_multicast_ttl_v4(out.ttl).map_err(err("set the multicast TTL"))?;
        s.set_multicast_loop_v4(out.loopback).map_err(err("set multicast loopback"))?;
        if !out.interface.is_unspecified() {
            s.set_multicast_if_v4(&out.interface).map_err(err("set the outgoing interface (is the address on this host?)"))?;
        }
        let _ = s.set_send_buffer_size(1 << 20);
        let bind = SocketAddrV4::new(out.source.unwrap_or(Ipv4Addr::UNSPECIFIED), 0);
        s.bind(&bind.into()).map_err(err("bind the source address"))?;
        Ok(MulticastSender {
            socket: s.into(),
            dest: SocketAddrV4::new(out.group, out.port).into(),
            rtp: out.rtp.then_some(RtpState { sequence: 0, ssrc }),
            buf: Vec::with_capacity(12 + PACKETS_PER_DATAGRAM * 188),
        })
    }

    /// The local address datagrams leave from.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram of packets; `pcr_27m` is the PCR of its first packet, used as
    /// the RTP timestamp (90 kHz).
    pub fn send(&mut self, packets: &[TsPacket], pcr_27m: u64) -> std::io::Result<()> {
        self.buf.clear();
        if let Some(rtp) = &mut self.rtp {
            self.buf.extend_from_slice(&[0x80, RTP_PAYLOAD_TYPE_MP2T]);
            self.buf.extend_from_slice(&rtp.sequence.to_be_bytes());
            self.buf.extend_from_slice(&((pcr_27m / 300) as u32).to_be_bytes());
            self.buf.extend_from_slice(&rtp.ssrc.to_be_bytes());
            rtp.sequence = rtp.sequence.wrapping_add(1);
        }
        for p in packets {
            self.buf.extend_from_slice(p.as_bytes());
        }
        let dest = self.dest.as_socket().expect("IPv4 destination");
        self.socket.send_to(&self.buf, dest).map(|_| ())
    }
}

/// A socket joined to a group on an interface, for listening (the collision check, the
/// recorder, tests).
pub fn join_group(group: Ipv4Addr, port: u16, interface: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(8 << 20);
    s.bind(&SocketAddrV4::new(group, port).into())?;
    s.join_multicast_v4(&group, &interface)?;
    Ok(s.into())
}

/// Listens on the group for `window`; `Err(Collision)` when some other source is already
/// sending there. `own` is our own sender's address, ignored.
pub fn check_collision(
    out: &MulticastOutput,
    window: Duration,
    own: Option<std::net::SocketAddr>,
) -> Result<(), OutputError> {
    let err = |what| move |source| OutputError::Socket { group: out.group, port: out.port, what, source };
    let s = join_group(out.group, out.port, out.interface).map_err(err("join the group for the collision check"))?;
    let deadline = Instant::now() + window;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        s.set_read_timeout(Some(left)).map_err(err("set a read timeout"))?;
        match s.recv_from(&mut buf) {
            Ok((_, from)) if Some(from) == own => continue,
            Ok((_, from)) => {
                return Err(OutputError::Collision { group: out.group, port: out.port, source_addr: from.to_string() })
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Ok(()),
            Err(e) => return Err(err("listen on the group")(e)),
        }
    }
}
