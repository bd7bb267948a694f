//! Capturing the streams of a run on loopback (headend's own [`Capture`]) and judging
//! each one: departure jitter ([`crate::jitter`]), RFC 4445 delay factor and TR 101 290
//! errors (headend's analyzer, fed every datagram with its arrival time).

use crate::jitter::{self, Deviation};
use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
use headend_actors::ts::analyzer::{Analyzer, AnalyzerConfig, ErrorKind};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

/// Running captures, one per stream. What they receive is moved out every second or so
/// ([`Captures::collect`]) into storage reserved in advance: left in the captures, the
/// buffers of all streams would grow (and be copied, and page-faulted in) at the same
/// moments, a host-wide receiver stall that shows up as jitter of every stream.
#[derive(Debug)]
pub struct Captures {
    streams: Vec<(SocketAddrV4, Capture)>,
    kept: Vec<Vec<Datagram>>,
}

impl Captures {
    pub fn start(addrs: &[SocketAddrV4]) -> anyhow::Result<Self> {
        let streams: Vec<_> = addrs
            .iter()
            .map(|a| Ok((*a, Capture::start(*a.ip(), a.port(), Ipv4Addr::LOCALHOST)?)))
            .collect::<std::io::Result<_>>()?;
        let kept = streams.iter().map(|_| Vec::new()).collect();
        Ok(Captures { streams, kept })
    }

    /// Streams that have received nothing yet.
    pub fn silent(&self) -> usize {
        self.streams.iter().filter(|(_, c)| c.count() == 0).count()
    }

    /// Drops what has arrived so far (start-up and warm-up) and reserves room for
    /// `expect` datagrams per stream.
    pub fn discard(&mut self, expect: usize) {
        for ((_, c), kept) in self.streams.iter().zip(&mut self.kept) {
            c.take();
            *kept = Vec::with_capacity(expect);
        }
    }

    /// Moves what has arrived into the reserved storage.
    pub fn collect(&mut self) {
        for ((_, c), kept) in self.streams.iter().zip(&mut self.kept) {
            kept.append(&mut c.take());
        }
    }

    /// Stops capturing; what arrived since the last [`Captures::discard`], per stream.
    pub fn finish(self) -> Vec<(SocketAddrV4, Vec<Datagram>)> {
        self.streams
            .into_iter()
            .zip(self.kept)
            .map(|((a, c), mut kept)| {
                kept.append(&mut c.finish());
                (a, kept)
            })
            .collect()
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

/// Writes `arrival_s,bytes` of every datagram, one CSV file per stream, named
/// `<prefix>-<group>-<port>.csv`.
pub fn dump(dir: &Path, prefix: &str, captured: &[(SocketAddrV4, Vec<Datagram>)]) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    for (addr, datagrams) in captured {
        let path = dir.join(format!("{prefix}-{}-{}.csv", addr.ip(), addr.port()));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(out, "arrival_s,bytes")?;
        for d in datagrams {
            writeln!(out, "{:.9},{}", d.arrival.as_secs_f64(), d.bytes.len())?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Analyzes every capture, on two threads.
pub fn analyze_all(captured: Vec<(SocketAddrV4, Vec<Datagram>)>) -> Vec<StreamResult> {
    let half = captured.len().div_ceil(2);
    let (a, b) = captured.split_at(half);
    let run =
        |part: &[(SocketAddrV4, Vec<Datagram>)]| part.iter().map(|(addr, d)| analyze(*addr, d)).collect::<Vec<_>>();
    std::thread::scope(|s| {
        let second = s.spawn(|| run(b));
        let mut out = run(a);
        out.extend(second.join().expect("analysis thread"));
        out
    })
}
