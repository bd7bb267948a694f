//! ETSI TR 101 290 priority 1 and 2 checks over a transport stream, plus the stream
//! facts headend's own tests check (bitrate, table cadences, service names, ID3 titles).
//!
//! Feed bytes with [`Analyzer::push`] (optionally with their capture time), call
//! [`Analyzer::finish`] at the end of the input, and read a [`Report`] with
//! [`Analyzer::report`] at any time.
//!
//! Time: intervals (PAT, PMT, PTS, PID presence) are measured in the stream's own time,
//! interpolated between the PCRs of the first program's PCR PID by byte position (the
//! transport rate between those PCRs). Packets before that PID's first PCR have no time
//! and their intervals are not judged. Capture times, when given, feed the arrival
//! statistics (MDI, jitter) only.
//!
//! Scope and simplifications are listed on [`Analyzer`].

mod arrival;
mod cadences;
mod continuity;
mod pcr;
mod report;
mod streams;
mod tables;
mod timeline;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

pub use report::{
    ArrivalReport, BitrateReport, EitReport, ErrorEvent, ErrorKind, EventSeen, Id3Report, Id3Seen,
    PcrPidReport, PidReport, ProgramReport, Report, SdtReport,
};

use self::arrival::ArrivalStats;
use self::continuity::{CcVerdict, ContinuityCounter};
use self::pcr::{ticks_to_ms, PcrFinding, PcrLimits, PcrTracker};
use self::report::ErrorLog;
use self::timeline::{Cadence, Ticks, Timeline, Watch};
use crate::ts::packet::{Pid, TsPacket, NULL_PID, PAT_PID};
use crate::ts::parser::{
    Id3Tag, PacketReader, ParseError, PesAssembler, Pmt, SdtService, SectionAssembler,
};
use crate::ts::time::{Pts, PCR_HZ};

/// Thresholds of the checks. The defaults are TR 101 290's.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerConfig {
    /// 1.3: longest gap between PAT sections.
    pub pat_max_interval: Duration,
    /// 1.5: longest gap between PMT sections on each PMT PID.
    pub pmt_max_interval: Duration,
    /// 1.6: how long a PID referred to by a PMT may be absent ("user specified").
    pub pid_timeout: Duration,
    /// 2.3a: longest gap between PCRs on a PCR PID.
    pub pcr_max_interval: Duration,
    /// 2.3b: largest PCR step without a discontinuity_indicator.
    pub pcr_max_jump: Duration,
    /// 2.4: largest |PCR error| in nanoseconds.
    pub pcr_accuracy_ns: f64,
    /// 2.5: longest gap between PTSs on a PID.
    pub pts_max_interval: Duration,
    /// Stream types whose PTS cadence is not judged by 2.5. Default: 0x15 (timed ID3
    /// metadata, sent every few seconds by design).
    pub pts_exempt_stream_types: Vec<u8>,
    /// Error events stored per priority (counts stay exact).
    pub max_stored_errors: usize,
    /// ID3 tags and EIT events stored.
    pub max_stored_items: usize,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            pat_max_interval: Duration::from_millis(500),
            pmt_max_interval: Duration::from_millis(500),
            pid_timeout: Duration::from_secs(5),
            pcr_max_interval: Duration::from_millis(40),
            pcr_max_jump: Duration::from_millis(100),
            pcr_accuracy_ns: 500.0,
            pts_max_interval: Duration::from_millis(700),
            pts_exempt_stream_types: vec![0x15],
            max_stored_errors: 1000,
            max_stored_items: 1000,
        }
    }
}

fn ticks(d: Duration) -> Ticks {
    (d.as_nanos() * PCR_HZ as u128 / 1_000_000_000) as Ticks
}

/// Time is extrapolated when the timebase PID has had no PCR for this long.
const EXTRAPOLATE_AFTER: Duration = Duration::from_millis(100);
/// ID3 PES packets longer than this are cut (and not parsed).
const MAX_METADATA_PES: usize = 64 * 1024;
/// Private-section stream types (ISO/IEC 13818-1 0x05, SCTE-35 0x86): their PIDs carry
/// sections whose CRC is checked.
const SECTION_STREAM_TYPES: [u8; 2] = [0x05, 0x86];

/// Per-PID state.
#[derive(Debug, Default)]
struct PidState {
    report: PidReport,
    cc: ContinuityCounter,
    pcr: Option<PcrTracker>,
    sections: Option<SectionAssembler>,
    metadata: Option<PesAssembler>,
    last_pts: Option<Pts>,
    /// A PES header cut short by its packet: bytes so far, position and index.
    partial_pes_header: Option<(Vec<u8>, u64, u64)>,
    last_seen_pos: u64,
    cat_error_reported: bool,
    last_id3: Option<Id3Tag>,
}

/// One program of the PAT and what its PMT says.
#[derive(Debug, Clone)]
struct ProgramState {
    number: u16,
    pmt_pid: Pid,
    pmt: Option<Pmt>,
    pmt_versions: Vec<u8>,
}

/// The TR 101 290 analyzer. See the module docs.
///
/// Simplifications: 188-byte packets only; packets with transport_error_indicator set
/// are counted (2.1) and otherwise ignored, since their header cannot be trusted; a
/// CAT_error for scrambling without CAT is raised once per scrambled PID; PCR checks
/// run on every PID that carries PCRs; PCR accuracy assumes a constant transport rate.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    pcr_limits: PcrLimits,
    reader: PacketReader,
    packet_index: u64,
    null_packets: u64,
    lost_packets: u64,
    finished: bool,
    pids: HashMap<Pid, PidState>,
    errors: ErrorLog,
    timeline: Timeline,
    cadences: BTreeMap<Watch, Cadence>,
    transport_stream_id: Option<u16>,
    pat_versions: Vec<u8>,
    /// PAT programs per section_number, for the current PAT version.
    pat_sections: BTreeMap<u8, Vec<(u16, Pid)>>,
    programs: Vec<ProgramState>,
    /// PIDs the current PMTs refer to, with their stream types (PCR-only PIDs: None).
    referenced: BTreeMap<Pid, Option<u8>>,
    cat_seen: bool,
    malformed_sections: u64,
    broken_sections: u64,
    sdt_services: Vec<SdtService>,
    sdt_versions: Vec<u8>,
    eit_present: Vec<EventSeen>,
    eit_following: Vec<EventSeen>,
    /// (service_id, event_id, section_number, name) of EIT events already listed.
    eit_seen: BTreeSet<(u16, u16, u8, String)>,
    id3_tags: Vec<Id3Seen>,
    id3_pes: u64,
    arrival: ArrivalStats,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new(AnalyzerConfig::default())
    }
}

impl Analyzer {
    pub fn new(config: AnalyzerConfig) -> Self {
        let pcr_limits = PcrLimits {
            repetition_ticks: ticks(config.pcr_max_interval),
            discontinuity_ticks: ticks(config.pcr_max_jump),
            accuracy_ns: config.pcr_accuracy_ns,
        };
        Analyzer {
            errors: ErrorLog::new(config.max_stored_errors),
            config,
            pcr_limits,
            reader: PacketReader::new(),
            packet_index: 0,
            null_packets: 0,
            lost_packets: 0,
            finished: false,
            pids: HashMap::new(),
            timeline: Timeline::default(),
            cadences: BTreeMap::new(),
            transport_stream_id: None,
            pat_versions: Vec::new(),
            pat_sections: BTreeMap::new(),
            programs: Vec::new(),
            referenced: BTreeMap::new(),
            cat_seen: false,
            malformed_sections: 0,
            broken_sections: 0,
            sdt_services: Vec::new(),
            sdt_versions: Vec::new(),
            eit_present: Vec::new(),
            eit_following: Vec::new(),
            eit_seen: BTreeSet::new(),
            id3_tags: Vec::new(),
            id3_pes: 0,
            arrival: ArrivalStats::default(),
        }
    }

    /// Analyzes a byte chunk. `arrival` is the capture time of these bytes (e.g. the
    /// receive time of a UDP datagram), used for the arrival statistics only.
    pub fn push(&mut self, bytes: &[u8], arrival: Option<Duration>) {
        if let Some(at) = arrival {
            let rate = self.transport_rate();
            self.arrival
                .on_arrival(at, bytes.len(), rate, self.lost_packets);
        }
        self.reader.push(bytes);
        self.drain_reader();
    }

    /// Ends the input: reads what is left, times the last occurrences by extrapolation
    /// and checks for things that stopped arriving before the end. Call once.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.reader.finish();
        self.drain_reader();
        let index = self.packet_index;
        let mut pids: Vec<Pid> = self.pids.keys().copied().collect();
        pids.sort();
        for pid in pids {
            if let Some(asm) = self.pids.get_mut(&pid).and_then(|s| s.metadata.as_mut()) {
                asm.flush();
                self.drain_metadata(pid);
            }
        }
        let end = self.reader.position();
        if let Some((segment, pending)) = self.timeline.extrapolate(end) {
            self.resolve(segment, pending, index);
        }
        self.check_pcr_tails(end, index);
    }

    /// A snapshot of everything found so far.
    pub fn report(&self) -> Report {
        let mut r = Report {
            packets: self.packet_index,
            bytes: self.reader.stats().bytes_in,
            null_packets: self.null_packets,
            null_share: if self.packet_index > 0 {
                self.null_packets as f64 / self.packet_index as f64
            } else {
                0.0
            },
            reader: self.reader.stats(),
            timebase_pid: self.timeline.source().map(Pid::value),
            duration_ms: self.timeline.now().map(ticks_to_ms),
            transport_stream_id: self.transport_stream_id,
            pat_versions: self.pat_versions.clone(),
            max_pat_interval_ms: self.max_interval_ms(Watch::Pat),
            cat_seen: self.cat_seen,
            malformed_sections: self.malformed_sections,
            broken_sections: self.broken_sections,
            arrival: self.arrival.report(),
            ..Report::default()
        };
        if let Some(tracker) = self
            .timeline
            .source()
            .and_then(|p| self.pids.get(&p))
            .and_then(|s| s.pcr.as_ref())
        {
            r.bitrate = tracker.report().bitrate;
        }
        r.programs = self
            .programs
            .iter()
            .map(|p| ProgramReport {
                program_number: p.number,
                pmt_pid: p.pmt_pid.value(),
                pcr_pid: p.pmt.as_ref().map(|m| m.pcr_pid.value()),
                streams: p
                    .pmt
                    .iter()
                    .flat_map(|m| &m.streams)
                    .map(|s| (s.pid.value(), s.stream_type))
                    .collect(),
                pmt_versions: p.pmt_versions.clone(),
                max_pmt_interval_ms: self.max_interval_ms(Watch::Pmt(p.pmt_pid)),
            })
            .collect();
        for (pid, state) in &self.pids {
            let mut p = state.report.clone();
            p.stream_type = self.referenced.get(pid).copied().flatten();
            p.max_pts_interval_ms = self.max_interval_ms(Watch::Pts(*pid));
            p.pcr = state.pcr.as_ref().map(PcrTracker::report);
            if let Some(pcr) = &p.pcr {
                r.max_pcr_interval_ms = max_opt(r.max_pcr_interval_ms, pcr.max_interval_ms);
                r.max_pcr_accuracy_error_ns =
                    max_opt(r.max_pcr_accuracy_error_ns, pcr.max_accuracy_error_ns);
            }
            if p.stream_type == Some(0x15) {
                r.id3.max_interval_ms = max_opt(r.id3.max_interval_ms, p.max_pts_interval_ms);
            }
            r.pids.insert(pid.value(), p);
        }
        r.sdt = SdtReport {
            services: self.sdt_services.clone(),
            versions: self.sdt_versions.clone(),
            max_interval_ms: self.max_interval_ms(Watch::Sdt),
        };
        r.eit = EitReport {
            present: self.eit_present.clone(),
            following: self.eit_following.clone(),
            max_pf_interval_ms: None,
        };
        for (watch, cadence) in &self.cadences {
            if let Watch::EitPf(_) = watch {
                r.eit.max_pf_interval_ms = max_opt(
                    r.eit.max_pf_interval_ms,
                    cadence.max_interval().map(ticks_to_ms),
                );
            }
        }
        r.id3.tags = self.id3_tags.clone();
        r.id3.pes_count = self.id3_pes;
        self.errors.fill(&mut r);
        r
    }

    /// Transport rate measured on the timebase PID (first to latest PCR), in bit/s.
    pub fn transport_rate(&self) -> Option<f64> {
        let tracker = self.pids.get(&self.timeline.source()?)?.pcr.as_ref()?;
        tracker
            .report()
            .bitrate
            .overall_bps
            .or_else(|| tracker.current_bitrate())
    }

    fn max_interval_ms(&self, watch: Watch) -> Option<f64> {
        self.cadences
            .get(&watch)
            .and_then(Cadence::max_interval)
            .map(ticks_to_ms)
    }

    fn drain_reader(&mut self) {
        loop {
            match self.reader.next_packet() {
                Ok(Some(packet)) => {
                    let pos = self.reader.last_packet_offset();
                    self.on_packet(&packet, pos);
                    self.packet_index += 1;
                }
                Ok(None) => break,
                Err(e) => self.on_reader_error(e),
            }
        }
    }

    fn on_reader_error(&mut self, e: ParseError) {
        let kind = match e {
            ParseError::SyncByte { .. } => ErrorKind::SyncByteError,
            ParseError::SyncLost { .. } => ErrorKind::TsSyncLoss,
            _ => return, // leading or trailing bytes: counted in the reader stats
        };
        self.errors
            .record(kind, None, self.packet_index, || e.to_string());
    }

    fn record(&mut self, kind: ErrorKind, pid: Pid, index: u64, message: impl FnOnce() -> String) {
        self.errors.record(kind, Some(pid.value()), index, message);
    }

    fn is_pmt_pid(&self, pid: Pid) -> bool {
        self.programs.iter().any(|p| p.pmt_pid == pid)
    }

    /// PIDs whose payload is sections: PSI/SI PIDs, PMT PIDs, private-section streams.
    fn carries_sections(&self, pid: Pid) -> bool {
        matches!(pid.value(), 0x00 | 0x01 | 0x10..=0x14)
            || self.is_pmt_pid(pid)
            || self
                .referenced
                .get(&pid)
                .copied()
                .flatten()
                .is_some_and(|t| SECTION_STREAM_TYPES.contains(&t))
    }

    fn on_packet(&mut self, packet: &TsPacket, pos: u64) {
        let index = self.packet_index;
        let pid = packet.pid();
        let state = self.pids.entry(pid).or_default();
        state.report.packets += 1;
        state.last_seen_pos = pos;
        if pid == NULL_PID {
            self.null_packets += 1;
        }
        if packet.transport_error() {
            state.report.transport_errors += 1;
            self.record(ErrorKind::TransportError, pid, index, || {
                "transport_error_indicator set".into()
            });
            return;
        }
        if pid == NULL_PID {
            return;
        }
        let scrambled = packet.scrambling() != 0;
        if scrambled {
            self.on_scrambled(packet, index);
        }
        self.check_continuity(packet, index);
        self.check_pcr(packet, pos, index);
        if packet.has_payload() && !scrambled {
            if self.carries_sections(pid) {
                self.on_section_payload(packet, pos, index);
            } else {
                self.on_pes_payload(packet, pos, index);
            }
        }
        if self.timeline.overdue(pos, ticks(EXTRAPOLATE_AFTER)) {
            if let Some((segment, pending)) = self.timeline.extrapolate(pos) {
                self.resolve(segment, pending, index);
            }
        }
    }

    fn on_scrambled(&mut self, packet: &TsPacket, index: u64) {
        let pid = packet.pid();
        let control = packet.scrambling();
        if let Some(state) = self.pids.get_mut(&pid) {
            state.report.scrambled_packets += 1;
        }
        if pid == PAT_PID {
            self.record(ErrorKind::PatError, pid, index, || {
                format!("PAT packet scrambled (control {control:02b})")
            });
        } else if self.is_pmt_pid(pid) {
            self.record(ErrorKind::PmtError, pid, index, || {
                format!("PMT packet scrambled (control {control:02b})")
            });
        }
        if !self.cat_seen {
            if let Some(state) = self.pids.get_mut(&pid).filter(|s| !s.cat_error_reported) {
                state.cat_error_reported = true;
                self.record(ErrorKind::CatError, pid, index, || {
                    "scrambled packets but no CAT".into()
                });
            }
        }
    }

    fn check_continuity(&mut self, packet: &TsPacket, index: u64) {
        let pid = packet.pid();
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        if packet.discontinuity_indicator() {
            state.report.discontinuity_indicators += 1;
        }
        let verdict = state.cc.check(packet);
        if verdict == CcVerdict::Ok {
            return;
        }
        state.report.cc_errors += 1;
        if let CcVerdict::Jump { lost, .. } = verdict {
            self.lost_packets += lost as u64;
        }
        self.record(ErrorKind::ContinuityCountError, pid, index, || match verdict {
            CcVerdict::Jump { expected, found, lost } => {
                format!("CC {found} where {expected} was expected ({lost} packets lost, or out of order)")
            }
            CcVerdict::Duplicated { cc, times } => format!("packet with CC {cc} sent {times} times"),
            CcVerdict::ChangedWithoutPayload { previous, found } => {
                format!("CC changed from {previous} to {found} on a packet without payload")
            }
            CcVerdict::Ok => String::new(),
        });
    }

    fn check_pcr(&mut self, packet: &TsPacket, pos: u64, index: u64) {
        let pid = packet.pid();
        let limits = self.pcr_limits;
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        let Some(pcr) = packet.pcr() else {
            if packet.discontinuity_indicator() {
                if let Some(tracker) = state.pcr.as_mut() {
                    tracker.note_discontinuity();
                }
            }
            return;
        };
        let step = state
            .pcr
            .get_or_insert_with(|| PcrTracker::new(limits))
            .on_pcr(pos, pcr, packet.discontinuity_indicator());
        for finding in &step.findings {
            let (kind, message) = match *finding {
                PcrFinding::Repetition { interval_ticks } => (
                    ErrorKind::PcrRepetitionError,
                    format!(
                        "{:.1} ms between PCRs (limit {} ms)",
                        ticks_to_ms(interval_ticks),
                        self.config.pcr_max_interval.as_millis()
                    ),
                ),
                PcrFinding::Jump { delta_ticks } => (
                    ErrorKind::PcrDiscontinuityIndicatorError,
                    format!(
                        "PCR moved by {:.1} ms without discontinuity_indicator",
                        delta_ticks as f64 / 27_000.0
                    ),
                ),
                PcrFinding::Accuracy { error_ns } => (
                    ErrorKind::PcrAccuracyError,
                    format!(
                        "PCR off by {error_ns:.0} ns from its byte position (limit {} ns)",
                        self.config.pcr_accuracy_ns
                    ),
                ),
            };
            self.record(kind, pid, index, || message);
        }
        if self.timeline.source() == Some(pid) {
            let started = self.timeline.now().is_none();
            let (segment, pending) = self.timeline.on_pcr(pos, step.elapsed_ticks);
            if started {
                self.on_timeline_start(segment.to.1);
            }
            self.resolve(segment, pending, index);
        }
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Appends `v` unless it repeats the last element.
fn push_folded(list: &mut Vec<u8>, v: u8) {
    if list.last() != Some(&v) {
        list.push(v);
    }
}

/// Reads a whole file and reports on it.
pub fn analyze_file(path: impl AsRef<Path>) -> std::io::Result<Report> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut analyzer = Analyzer::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        analyzer.push(&buf[..n], None);
    }
    analyzer.finish();
    Ok(analyzer.report())
}

/// Reports on an in-memory stream.
pub fn analyze_bytes(bytes: &[u8], config: AnalyzerConfig) -> Report {
    let mut analyzer = Analyzer::new(config);
    analyzer.push(bytes, None);
    analyzer.finish();
    analyzer.report()
}
