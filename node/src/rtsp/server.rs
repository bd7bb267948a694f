//! The RTSP server: one task per connection answering OPTIONS, DESCRIBE, SETUP, PLAY,
//! GET_PARAMETER and TEARDOWN; on PLAY a relay task joins the channel's group (the node's
//! own output) and forwards each datagram as one RTP packet (PT 33) to the client,
//! interleaved on the connection or by UDP. Only channels this node serves (the
//! reconciler fills [`RtspChannels`]) are described.

use super::message::{channel_of, parse_request, response, sdp, Request, Transport};
use headend_actors::playout::sender::join_group;
use headend_actors::recorder::ts_payload;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A channel the server may describe and play: its group on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedChannel {
    pub group: Ipv4Addr,
    pub port: u16,
    pub interface: Ipv4Addr,
}

/// The channels served over RTSP, by id (written by the reconciler, read per request).
pub type RtspChannels = Arc<RwLock<BTreeMap<String, ServedChannel>>>;

/// Accepts connections until `stop` turns true.
pub async fn serve(listener: TcpListener, channels: RtspChannels, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(session(stream, peer, channels.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "RTSP accept failed"),
            },
        }
    }
}

fn lookup(channels: &RtspChannels, id: &str) -> Option<ServedChannel> {
    channels.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
}

struct Setup {
    channel: ServedChannel,
    transport: Transport,
    udp: Option<Arc<UdpSocket>>,
}

async fn session(stream: TcpStream, peer: SocketAddr, channels: RtspChannels) {
    let host = stream.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(512);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let id = format!("{:016x}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) ^ (peer.port() as u64) << 48);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut setup: Option<Setup> = None;
    let mut relay: Option<JoinHandle<()>> = None;
    'conn: loop {
        // Interleaved frames from the client (RTCP receiver reports) are skipped.
        while buf.first() == Some(&b'$') {
            if buf.len() < 4 {
                break;
            }
            let len = 4 + u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < len {
                break;
            }
            buf.drain(..len);
        }
        match parse_request(&buf) {
            Ok(Some((req, used))) => {
                buf.drain(..used);
                let answer = handle(&req, &host, peer, &channels, &id, &mut setup, &mut relay, &tx).await;
                if tx.send(answer).await.is_err() {
                    break 'conn;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(response(400, "Bad Request", "0", &[], "")).await;
                tracing::debug!(peer = %peer, error = %e, "bad RTSP request; closing");
                break 'conn;
            }
        }
        let mut chunk = [0u8; 4096];
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if let Some(r) = relay {
        r.abort();
    }
    drop(tx);
    let _ = writer.await;
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    req: &Request,
    host: &str,
    peer: SocketAddr,
    channels: &RtspChannels,
    id: &str,
    setup: &mut Option<Setup>,
    relay: &mut Option<JoinHandle<()>>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Vec<u8> {
    let cseq = req.cseq.as_str();
    let session = [("Session", format!("{id};timeout=60"))];
    let channel = || channel_of(&req.uri).and_then(|c| lookup(channels, &c).map(|s| (c, s)));
    match req.method.as_str() {
        "OPTIONS" => response(200, "OK", cseq, &[("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN".into())], ""),
        "DESCRIBE" => match channel() {
            Some((c, _)) => {
                let base = format!("{}/", req.uri.trim_end_matches('/'));
                response(200, "OK", cseq, &[("Content-Type", "application/sdp".into()), ("Content-Base", base)], &sdp(&c, host))
            }
            None => response(404, "Not Found", cseq, &[], ""),
        },
        "SETUP" => {
            let Some((_, served)) = channel() else { return response(404, "Not Found", cseq, &[], "") };
            let Some(transport) = req.header("transport").and_then(Transport::parse) else {
                return response(461, "Unsupported Transport", cseq, &[], "");
            };
            let udp = match transport {
                Transport::Udp { .. } => match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await {
                    Ok(s) => Some(Arc::new(s)),
                    Err(_) => return response(500, "Internal Server Error", cseq, &[], ""),
                },
                Transport::Interleaved { .. } => None,
            };
            let server_port = udp.as_ref().and_then(|s| s.local_addr().ok()).map_or(0, |a| a.port());
            *setup = Some(Setup { channel: served, transport, udp });
            response(200, "OK", cseq, &[("Transport", transport.answer(server_port)), session[0].clone()], "")
        }
        "PLAY" => {
            let Some(s) = setup.as_ref() else { return response(455, "Method Not Valid in This State", cseq, &[], "") };
            if relay.is_none() {
                let target = match (s.transport, &s.udp) {
                    (Transport::Udp { client_rtp }, Some(sock)) => Target::Udp(sock.clone(), SocketAddr::new(peer.ip(), client_rtp)),
                    (Transport::Interleaved { rtp }, _) => Target::Interleaved(rtp, tx.clone()),
                    _ => return response(500, "Internal Server Error", cseq, &[], ""),
                };
                *relay = Some(tokio::spawn(relay_group(s.channel.clone(), target)));
            }
            response(200, "OK", cseq, &[session[0].clone(), ("Range", "npt=now-".into())], "")
        }
        "GET_PARAMETER" => response(200, "OK", cseq, &session, ""),
        "TEARDOWN" => {
            if let Some(r) = relay.take() {
                r.abort();
            }
            *setup = None;
            response(200, "OK", cseq, &session, "")
        }
        _ => response(501, "Not Implemented", cseq, &[], ""),
    }
}

enum Target {
    Interleaved(u8, mpsc::Sender<Vec<u8>>),
    Udp(Arc<UdpSocket>, SocketAddr),
}

/// Forwards the group's datagrams as RTP (PT 33, RFC 2250) until the client goes.
async fn relay_group(ch: ServedChannel, target: Target) {
    let socket = match join_group(ch.group, ch.port, ch.interface).and_then(|s| {
        s.set_nonblocking(true)?;
        UdpSocket::from_std(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(group = %ch.group, port = ch.port, error = %e, "RTSP relay cannot join the channel's group");
            return;
        }
    };
    let start = Instant::now();
    let ssrc = (start.elapsed().as_nanos() as u32) ^ u32::from(ch.group) ^ ch.port as u32;
    let mut sequence: u16 = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else { return };
        let Ok(ts) = ts_payload(&buf[..n]) else { continue };
        let stamp = (start.elapsed().as_micros() as u64 * 9 / 100) as u32;
        let mut rtp = Vec::with_capacity(16 + ts.len());
        if let Target::Interleaved(channel, _) = &target {
            rtp.extend_from_slice(&[b'$', *channel]);
            rtp.extend_from_slice(&((12 + ts.len()) as u16).to_be_bytes());
        }
        rtp.extend_from_slice(&[0x80, 33]);
        rtp.extend_from_slice(&sequence.to_be_bytes());
        rtp.extend_from_slice(&stamp.to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(ts);
        sequence = sequence.wrapping_add(1);
        let sent = match &target {
            Target::Interleaved(_, tx) => tx.send(rtp).await.is_ok(),
            Target::Udp(sock, to) => sock.send_to(&rtp, to).await.is_ok(),
        };
        if !sent {
            return;
        }
    }
}
