//! Capturing the streams of a run on loopback (headend's own [`Capture`]) and judging
//! each one: departure jitter ([`crate::jitter`]), RFC 4445 delay factor and TR 101 290
//! errors (headend's analyzer, fed every datagram with its arrival time).

use crate::jitter::{self, Deviation};
use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
use headend_actors::ts::analyzer::{Analyzer, AnalyzerConfig, ErrorKind};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Running captures, one per stream.
#[derive(Debug)]
pub struct Captures {
    streams: Vec<(SocketAddrV4, Capture)>,
}

impl Captures {
    pub fn start(addrs: &[SocketAddrV4]) -> anyhow::Result<Self> {
        let streams = addrs
            .iter()
            .map(|a| Ok((*a, Capture::start(*a.ip(), a.port(), Ipv4Addr::LOCALHOST)?)))
            .collect::<std::io::Result<_>>()?;
        Ok(Captures { streams })
    }

    /// Streams that have received nothing yet.
    pub fn silent(&self) -> usize {
        self.streams.iter().filter(|(_, c)| c.count() == 0).count()
    }

    /// Drops what has arrived so far (start-up and warm-up).
    pub fn discard(&self) {
        for (_, c) in &self.streams {
            c.take();
        }
    }

    /// Stops capturing; what arrived since the last [`Captures::discard`], per stream.
    pub fn finish(self) -> Vec<(SocketAddrV4, Vec<Datagram>)> {
        self.streams.into_iter().map(|(a, c)| (a, c.finish())).collect()
    }
}

/// What one captured stream looked like.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub addr: SocketAddrV4,
    pub datagrams: usize,
    pub deviation: Deviation,
    /// RFC 4445 delay factor, max over 1 s intervals (analyzer), ms.
    pub mdi_df_max_ms: Option<f64>,
    pub p1_errors: u64,
    pub p2_errors: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
}

pub fn analyze(addr: SocketAddrV4, datagrams: &[Datagram]) -> StreamResult {
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    for d in datagrams {
        analyzer.push(&ts_bytes(std::slice::from_ref(d)), Some(d.arrival));
    }
    analyzer.finish();
    let report = analyzer.report();
    StreamResult {
        addr,
        datagrams: datagrams.len(),
        deviation: jitter::deviation(datagrams.iter().map(|d| (d.arrival, d.bytes.len()))).unwrap_or_default(),
        mdi_df_max_ms: report.arrival.as_ref().and_then(|a| a.mdi_df_max_ms),
        p1_errors: report.p1_error_count(),
        p2_errors: report.p2_error_count(),
        errors: report.error_counts,
    }
}

/// Analyzes every capture, on two threads.
pub fn analyze_all(captured: Vec<(SocketAddrV4, Vec<Datagram>)>) -> Vec<StreamResult> {
    let half = captured.len().div_ceil(2);
    let (a, b) = captured.split_at(half);
    let run = |part: &[(SocketAddrV4, Vec<Datagram>)]| part.iter().map(|(addr, d)| analyze(*addr, d)).collect::<Vec<_>>();
    std::thread::scope(|s| {
        let second = s.spawn(|| run(b));
        let mut out = run(a);
        out.extend(second.join().expect("analysis thread"));
        out
    })
}
