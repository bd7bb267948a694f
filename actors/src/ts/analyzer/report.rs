//! What the analyzer found: the serialisable [`Report`], the TR 101 290 error kinds and
//! the bounded error log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ts::parser::{Id3Tag, ReaderStats, SdtService};

/// The TR 101 290 checks this analyzer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// 1.1: two or more consecutive corrupted sync bytes.
    TsSyncLoss,
    /// 1.2: one corrupted sync byte.
    SyncByteError,
    /// 1.3: PAT missing for more than 0.5 s, wrong table_id on PID 0, or scrambled.
    PatError,
    /// 1.4: packet lost, out of order or duplicated more than once.
    ContinuityCountError,
    /// 1.5: a PMT missing for more than 0.5 s, or scrambled.
    PmtError,
    /// 1.6: a PID referred to by a PMT absent for longer than the configured period.
    PidError,
    /// 2.1: transport_error_indicator set.
    TransportError,
    /// 2.2: a section whose CRC_32 is wrong.
    CrcError,
    /// 2.3a: more than 40 ms between consecutive PCRs.
    PcrRepetitionError,
    /// 2.3b: PCR jump (negative or over 100 ms) without discontinuity_indicator.
    PcrDiscontinuityIndicatorError,
    /// 2.4: PCR off its byte-position prediction by more than 500 ns.
    PcrAccuracyError,
    /// 2.5: more than 700 ms between PTSs on a PID.
    PtsError,
    /// 2.6: scrambled packets without a CAT, or a wrong table_id on PID 1.
    CatError,
}

impl ErrorKind {
    /// TR 101 290 priority: 1 or 2.
    pub fn priority(self) -> u8 {
        match self {
            ErrorKind::TsSyncLoss
            | ErrorKind::SyncByteError
            | ErrorKind::PatError
            | ErrorKind::ContinuityCountError
            | ErrorKind::PmtError
            | ErrorKind::PidError => 1,
            _ => 2,
        }
    }

    /// The indicator's number in TR 101 290 ("1.1" ... "2.6").
    pub fn tr101290_id(self) -> &'static str {
        match self {
            ErrorKind::TsSyncLoss => "1.1",
            ErrorKind::SyncByteError => "1.2",
            ErrorKind::PatError => "1.3",
            ErrorKind::ContinuityCountError => "1.4",
            ErrorKind::PmtError => "1.5",
            ErrorKind::PidError => "1.6",
            ErrorKind::TransportError => "2.1",
            ErrorKind::CrcError => "2.2",
            ErrorKind::PcrRepetitionError => "2.3a",
            ErrorKind::PcrDiscontinuityIndicatorError => "2.3b",
            ErrorKind::PcrAccuracyError => "2.4",
            ErrorKind::PtsError => "2.5",
            ErrorKind::CatError => "2.6",
        }
    }
}

/// One error occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub kind: ErrorKind,
    pub pid: Option<u16>,
    /// Index of the packet at which the error was detected (0-based, counting the
    /// packets the reader returned).
    pub packet_index: u64,
    pub message: String,
}

/// Error occurrences: exact counts per kind, the first `cap` events of each priority.
#[derive(Debug, Clone, Default)]
pub(super) struct ErrorLog {
    cap: usize,
    p1: Vec<ErrorEvent>,
    p2: Vec<ErrorEvent>,
    counts: BTreeMap<ErrorKind, u64>,
}

impl ErrorLog {
    pub(super) fn new(cap: usize) -> Self {
        ErrorLog {
            cap,
            ..Default::default()
        }
    }

    /// Records one occurrence; the message is built only when the event is stored.
    pub(super) fn record(
        &mut self,
        kind: ErrorKind,
        pid: Option<u16>,
        packet_index: u64,
        message: impl FnOnce() -> String,
    ) {
        *self.counts.entry(kind).or_insert(0) += 1;
        let list = if kind.priority() == 1 {
            &mut self.p1
        } else {
            &mut self.p2
        };
        if list.len() < self.cap {
            list.push(ErrorEvent {
                kind,
                pid,
                packet_index,
                message: message(),
            });
        }
    }

    pub(super) fn fill(&self, report: &mut Report) {
        report.p1_errors = self.p1.clone();
        report.p2_errors = self.p2.clone();
        report.error_counts = self.counts.clone();
    }
}

/// Counts and timing facts about one PID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidReport {
    pub packets: u64,
    /// From the current PMT, when the PID is listed there.
    pub stream_type: Option<u8>,
    pub cc_errors: u64,
    pub transport_errors: u64,
    pub scrambled_packets: u64,
    pub discontinuity_indicators: u64,
    /// PES packets started (PUSI with a PES start code).
    pub pes_count: u64,
    pub pts_count: u64,
    pub pts_first: Option<u64>,
    pub pts_last: Option<u64>,
    /// Raw 90 kHz values (not unwrapped).
    pub pts_min: Option<u64>,
    pub pts_max: Option<u64>,
    /// PES whose PTS is earlier than the previous PES's PTS (33-bit wrap handled).
    pub pts_backwards: u64,
    /// Largest forward step between consecutive PTSs, in 90 kHz ticks.
    pub max_pts_forward_gap: u64,
    /// Largest stream time between PES packets carrying a PTS.
    pub max_pts_interval_ms: Option<f64>,
    /// Present when the PID carries PCRs.
    pub pcr: Option<PcrPidReport>,
}

/// PCR facts for one PID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PcrPidReport {
    pub count: u64,
    /// Largest time between consecutive PCRs (by PCR value when they are continuous).
    pub max_interval_ms: Option<f64>,
    /// Largest |PCR - prediction from byte position| in nanoseconds.
    pub max_accuracy_error_ns: Option<f64>,
    pub accuracy_violations: u64,
    pub discontinuities: u64,
    pub bitrate: BitrateReport,
}

/// Transport rate measured from PCRs and byte counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BitrateReport {
    /// From the first to the last PCR.
    pub overall_bps: Option<f64>,
    /// Extremes over consecutive windows of at least one second (PCR to PCR).
    pub window_min_bps: Option<f64>,
    pub window_max_bps: Option<f64>,
    pub windows: u64,
}

/// One program as the PAT lists it, with what its PMT says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgramReport {
    pub program_number: u16,
    pub pmt_pid: u16,
    /// From the PMT, once seen.
    pub pcr_pid: Option<u16>,
    /// (PID, stream_type) from the current PMT.
    pub streams: Vec<(u16, u8)>,
    /// PMT versions in order of appearance (consecutive repeats folded).
    pub pmt_versions: Vec<u8>,
    pub max_pmt_interval_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SdtReport {
    /// Services of the last SDT actual seen.
    pub services: Vec<SdtService>,
    pub versions: Vec<u8>,
    pub max_interval_ms: Option<f64>,
}

/// An EIT present or following event seen (each distinct one once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSeen {
    pub service_id: u16,
    pub event_id: u16,
    pub start_time_utc: Option<u64>,
    pub duration_secs: u32,
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EitReport {
    pub present: Vec<EventSeen>,
    pub following: Vec<EventSeen>,
    /// Largest interval between EIT p/f actual sections of one service.
    pub max_pf_interval_ms: Option<f64>,
}

/// An ID3 tag on a timed-metadata PID, recorded when it differs from the previous one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Id3Seen {
    pub pid: u16,
    pub pts: Option<u64>,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub tag: Id3Tag,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Id3Report {
    pub tags: Vec<Id3Seen>,
    /// ID3 PES packets read (repeats included).
    pub pes_count: u64,
    /// Largest stream time between ID3 PES packets on one PID.
    pub max_interval_ms: Option<f64>,
}

/// Statistics from capture timestamps (only when `push` was given arrival times).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrivalReport {
    /// Number of timestamped chunks (datagrams).
    pub arrivals: u64,
    pub duration_ms: f64,
    pub bitrate_bps: Option<f64>,
    pub min_gap_us: Option<f64>,
    pub max_gap_us: Option<f64>,
    pub mean_gap_us: Option<f64>,
    /// RFC 3550-style smoothed jitter of gaps against the bytes' duration at the
    /// measured transport rate.
    pub jitter_us: Option<f64>,
    /// Largest |gap - expected gap|.
    pub max_jitter_us: Option<f64>,
    /// RFC 4445 delay factor, max over 1 s intervals.
    pub mdi_df_max_ms: Option<f64>,
    /// RFC 4445 media loss rate (packets lost per second, from CC gaps), max over 1 s.
    pub mdi_mlr_max: Option<u64>,
    pub mdi_intervals: u64,
}

/// Everything the analyzer found; a snapshot taken by [`super::Analyzer::report`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub packets: u64,
    pub bytes: u64,
    pub null_packets: u64,
    /// null_packets / packets.
    pub null_share: f64,
    pub reader: ReaderStats,
    /// The PCR PID that gives the stream its time (first program's PCR PID).
    pub timebase_pid: Option<u16>,
    /// Stream time covered since the first PCR of the timebase.
    pub duration_ms: Option<f64>,
    /// Measured on the timebase PID.
    pub bitrate: BitrateReport,
    pub transport_stream_id: Option<u16>,
    /// PAT versions in order of appearance (consecutive repeats folded).
    pub pat_versions: Vec<u8>,
    pub max_pat_interval_ms: Option<f64>,
    pub programs: Vec<ProgramReport>,
    pub cat_seen: bool,
    pub pids: BTreeMap<u16, PidReport>,
    /// Over all PCR PIDs.
    pub max_pcr_interval_ms: Option<f64>,
    pub max_pcr_accuracy_error_ns: Option<f64>,
    pub sdt: SdtReport,
    pub eit: EitReport,
    pub id3: Id3Report,
    pub arrival: Option<ArrivalReport>,
    /// Sections with a good CRC whose table could not be read.
    pub malformed_sections: u64,
    /// Sections lost to continuity gaps, cut short, or with impossible lengths.
    pub broken_sections: u64,
    pub p1_errors: Vec<ErrorEvent>,
    pub p2_errors: Vec<ErrorEvent>,
    /// Exact number of occurrences per kind (the lists above are capped).
    pub error_counts: BTreeMap<ErrorKind, u64>,
}

impl Report {
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.error_counts.get(&kind).copied().unwrap_or(0)
    }
    pub fn p1_error_count(&self) -> u64 {
        self.error_counts
            .iter()
            .filter(|(k, _)| k.priority() == 1)
            .map(|(_, n)| n)
            .sum()
    }
    pub fn p2_error_count(&self) -> u64 {
        self.error_counts
            .iter()
            .filter(|(k, _)| k.priority() == 2)
            .map(|(_, n)| n)
            .sum()
    }
    /// No priority 1 or 2 error at all.
    pub fn is_clean(&self) -> bool {
        self.p1_error_count() == 0 && self.p2_error_count() == 0
    }
    /// Stored events of one kind.
    pub fn errors_of(&self, kind: ErrorKind) -> impl Iterator<Item = &ErrorEvent> {
        self.p1_errors
            .iter()
            .chain(&self.p2_errors)
            .filter(move |e| e.kind == kind)
    }
    pub fn pid(&self, pid: u16) -> Option<&PidReport> {
        self.pids.get(&pid)
    }
}
