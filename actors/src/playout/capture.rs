//! Receives a multicast group on its own thread and keeps what arrived, with arrival
//! times and sources: for tests, benchmarks and (later) the recorder.

use super::sender::join_group;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One received datagram.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Since the capture started.
    pub arrival: Duration,
    pub source: SocketAddr,
    pub bytes: Vec<u8>,
}

/// A running capture. Lock order: only `datagrams`, held briefly.
#[derive(Debug)]
pub struct Capture {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    datagrams: Arc<Mutex<Vec<Datagram>>>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Joins `group:port` on `interface` and starts receiving.
    pub fn start(group: Ipv4Addr, port: u16, interface: Ipv4Addr) -> std::io::Result<Self> {
        let socket = join_group(group, port, interface)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let (s, c, d) = (stop.clone(), count.clone(), datagrams.clone());
        let thread = std::thread::Builder::new().name(format!("capture-{group}:{port}")).spawn(move || {
            let start = Instant::now();
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, source)) = socket.recv_from(&mut buf) {
                    let dg = Datagram { arrival: start.elapsed(), source, bytes: buf[..n].to_vec() };
                    d.lock().expect("capture lock").push(dg);
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        })?;
        Ok(Capture { stop, count, datagrams, thread: Some(thread) })
    }

    /// Datagrams received so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes what has arrived so far, leaving the capture running.
    pub fn take(&self) -> Vec<Datagram> {
        std::mem::take(&mut *self.datagrams.lock().expect("capture lock"))
    }

    /// Stops receiving and returns everything not yet taken.
    pub fn finish(mut self) -> Vec<Datagram> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.take()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The TS bytes of datagrams, with a 12-byte RTP header removed when present.
pub fn ts_bytes(datagrams: &[Datagram]) -> Vec<u8> {
    let mut out = Vec::with_capacity(datagrams.iter().map(|d| d.bytes.len()).sum());
    for d in datagrams {
        let b = &d.bytes;
        let skip = if b.first() == Some(&0x47) { 0 } else if b.len() > 12 && b[0] >> 6 == 2 { 12 } else { 0 };
        out.extend_from_slice(&b[skip..]);
    }
    out
}
