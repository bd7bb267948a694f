//! Reads a TS item for splicing: finds its program, keeps the video and audio streams the
//! channel carries, and gives each packet its due time in the item (interpolated from the
//! item's own PCRs by byte position, as the item's multiplexer sent it).

use super::schedule::{StreamFacts, StreamRole};
use crate::ts::packet::{PacketError, Pid, PAT_PID};
use crate::ts::{Pcr, TsPacket, TS_PACKET_SIZE};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why an item cannot be played. Each says what is wrong and with which file.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: empty file")]
    Empty { path: PathBuf },
    #[error("{path}: not an MPEG transport stream ({0}); items must be .ts files (re-mux with `ffmpeg -i IN -c copy -f mpegts OUT.ts`)", .source)]
    NotTransportStream { path: PathBuf, source: PacketError },
    #[error("{path}: truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path}: corrupt at packet {packet}: {detail}")]
    Corrupt { path: PathBuf, packet: u64, detail: String },
    #[error("{path}: no PAT/PMT in the first {packets} packets")]
    NoProgram { path: PathBuf, packets: u64 },
    #[error("{path}: unsupported codec(s): {detail}; headend plays H.264, HEVC or MPEG-2 video with AAC, MPEG audio or AC-3")]
    UnsupportedCodec { path: PathBuf, detail: String },
    #[error("{path}: no PCR on PID {pcr_pid}")]
    NoPcr { path: PathBuf, pcr_pid: Pid },
    #[error("{path}: peak rate {peak_bps} bit/s over one second exceeds what the channel can carry ({capacity_bps} bit/s of content at mux rate {mux_rate_bps}); re-encode at a lower bitrate or raise mux_rate")]
    PeakRateTooHigh { path: PathBuf, peak_bps: u64, capacity_bps: u64, mux_rate_bps: u64 },
    #[error("{path}: content changed since it was scheduled (expected id {expected:016x}, found {found:016x})")]
    Changed { path: PathBuf, expected: u64, found: u64 },
}

impl ItemError {
    /// A short machine-friendly reason, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "missing",
            ItemError::Io { .. } => "io",
            ItemError::Empty { .. } => "empty",
            ItemError::NotTransportStream { .. } => "not_ts",
            ItemError::Truncated { .. } => "truncated",
            ItemError::Corrupt { .. } => "corrupt",
            ItemError::NoProgram { .. } => "no_program",
            ItemError::UnsupportedCodec { .. } => "unsupported_codec",
            ItemError::NoPcr { .. } => "no_pcr",
            ItemError::PeakRateTooHigh { .. } => "peak_rate",
            ItemError::Changed { .. } => "changed",
        }
    }
}

/// The streams taken from an item and the PID its PCR is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSelection {
    pub pcr_pid: Pid,
    /// (input PID, what it becomes).
    pub streams: Vec<(Pid, StreamFacts)>,
}

impl StreamSelection {
    /// The stream an input PID carries, if it is kept.
    pub fn stream_of(&self, pid: Pid) -> Option<&StreamFacts> {
        self.streams.iter().find(|(p, _)| *p == pid).map(|(_, s)| s)
    }
}

/// How many packets from the start of an item may pass before its PAT and PMT.
pub const PROGRAM_SEARCH_PACKETS: u64 = 20_000;

use crate::ts::parser::{Pat, Pmt, SectionAssembler};

fn has_descriptor(descriptors: &[(u8, Vec<u8>)], tag: u8) -> bool {
    descriptors.iter().any(|(t, _)| *t == tag)
}

/// The role of a PMT stream type headend can carry; `None` for everything else.
pub fn role_of_stream_type(stream_type: u8, descriptors: &[(u8, Vec<u8>)]) -> Option<StreamRole> {
    match stream_type {
        0x01 | 0x02 | 0x1B | 0x24 => Some(StreamRole::Video),
        0x03 | 0x04 | 0x0F | 0x11 | 0x81 | 0x87 => Some(StreamRole::Audio),
        // DVB AC-3 / E-AC-3 as private PES with their descriptor.
        0x06 if has_descriptor(descriptors, 0x6A) || has_descriptor(descriptors, 0x7A) => Some(StreamRole::Audio),
        _ => None,
    }
}

/// The streams headend keeps from a PMT (the first video and the first audio stream)
/// and the names of those it cannot carry.
fn select_streams(pmt: &Pmt) -> (StreamSelection, Vec<String>) {
    let mut streams: Vec<(Pid, StreamFacts)> = Vec::new();
    let mut unsupported = Vec::new();
    for es in &pmt.streams {
        let mut descriptors: Vec<(u8, Vec<u8>)> = es.descriptors.iter().map(|d| (d.tag, d.data.clone())).collect();
        match role_of_stream_type(es.stream_type, &descriptors) {
            Some(role) if !streams.iter().any(|(_, s)| s.role == role) => {
                // Keep descriptors that describe the stream itself (language, AC-3,
                // registration); drop ones that point at other PIDs or services.
                descriptors.retain(|(t, _)| matches!(t, 0x05 | 0x0A | 0x52 | 0x6A | 0x7A | 0x7C));
                streams.push((es.pid, StreamFacts { role, stream_type: es.stream_type, descriptors }));
            }
            Some(_) => {}
            // Metadata, private sections and private data without a known audio
            // descriptor are left out quietly.
            None if matches!(es.stream_type, 0x05 | 0x06 | 0x15) => {}
            None => unsupported.push(format!("stream type 0x{:02X} on PID {}", es.stream_type, es.pid)),
        }
    }
    streams.sort_by_key(|(_, s)| s.role);
    (StreamSelection { pcr_pid: pmt.pcr_pid, streams }, unsupported)
}

/// One content packet of an item with its due time.
#[derive(Debug, Clone)]
pub struct ItemPacket {
    /// The packet as in the item (input PID, input CC, input timestamps).
    pub packet: TsPacket,
    pub role: StreamRole,
    /// Output stream slot (see [`StreamFacts::slot`]).
    pub slot: usize,
    /// 27 MHz from the item's time origin (its first PCR) to when this packet was due.
    pub due_27m: u64,
    /// Index of the packet in the item file.
    pub index: u64,
}

/// Reads 188-byte packets from a file.
struct PacketFile {
    path: PathBuf,
    reader: BufReader<File>,
    index: u64,
}

impl PacketFile {
    fn open(path: &Path) -> Result<Self, ItemError> {
        let file = File::open(path).map_err(|source| ItemError::Io { path: path.into(), source })?;
        let len = file.metadata().map_err(|source| ItemError::Io { path: path.into(), source })?.len();
        if len == 0 {
            return Err(ItemError::Empty { path: path.into() });
        }
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut first = [0u8; 1];
        reader.read_exact(&mut first).map_err(|source| ItemError::Io { path: path.into(), source })?;
        if first[0] != crate::ts::packet::SYNC_BYTE {
            return Err(ItemError::NotTransportStream { path: path.into(), source: PacketError::LostSync(first[0]) });
        }
        reader.seek(SeekFrom::Start(0)).map_err(|source| ItemError::Io { path: path.into(), source })?;
        if len % TS_PACKET_SIZE as u64 != 0 {
            return Err(ItemError::Truncated {
                path: path.into(),
                detail: format!("{len} bytes is not a whole number of 188-byte packets (last packet has {} bytes)", len % 188),
            });
        }
        Ok(PacketFile { path: path.into(), reader, index: 0 })
    }

    fn rewind(&mut self) -> Result<(), ItemError> {
        self.reader.seek(SeekFrom::Start(0)).map_err(|source| ItemError::Io { path: self.path.clone(), source })?;
        self.index = 0;
        Ok(())
    }

    fn next(&mut self) -> Result<Option<TsPacket>, ItemError> {
        let mut b = [0u8; TS_PACKET_SIZE];
        match self.reader.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(source) => return Err(ItemError::Io { path: self.path.clone(), source }),
        }
        let p = TsPacket(b);
        if let Err(e) = p.validate() {
            return Err(if self.index == 0 {
                ItemError::NotTransportStream { path: self.path.clone(), source: e }
            } else {
                ItemError::Corrupt { path: self.path.clone(), packet: self.index, detail: e.to_string() }
            });
        }
        if p.transport_error() {
            return Err(ItemError::Corrupt {
                path: self.path.clone(),
                packet: self.index,
                detail: "transport_error_indicator set".into(),
            });
        }
        self.index += 1;
        Ok(Some(p))
    }
}

/// Finds the item's program (the first in its PAT) and the streams to keep.
fn find_program(file: &mut PacketFile) -> Result<StreamSelection, ItemError> {
    let mut pat = SectionAssembler::new(PAT_PID);
    let mut pmt: Option<SectionAssembler> = None;
    while let Some(p) = file.next()? {
        if file.index > PROGRAM_SEARCH_PACKETS {
            break;
        }
        match &mut pmt {
            None if p.pid() == PAT_PID => {
                pat.push(&p);
                while let Ok(Some(section)) = pat.next_section() {
                    let first = Pat::parse(&section).ok().and_then(|t| t.programs.first().map(|(_, pid)| *pid));
                    if let Some(pid) = first {
                        pmt = Some(SectionAssembler::new(pid));
                        break;
                    }
                }
            }
            Some(asm) if p.pid() == asm.pid() => {
                asm.push(&p);
                while let Ok(Some(section)) = asm.next_section() {
                    let Ok(table) = Pmt::parse(&section) else { continue };
                    let (sel, unsupported) = select_streams(&table);
                    if sel.streams.is_empty() {
                        let detail = if unsupported.is_empty() { "no audio or video stream".to_string() } else { unsupported.join(", ") };
                        return Err(ItemError::UnsupportedCodec { path: file.path.clone(), detail });
                    }
                    if !unsupported.is_empty() {
                        tracing::debug!(path = %file.path.display(), "dropping streams: {}", unsupported.join(", "));
                    }
                    return Ok(sel);
                }
            }
            _ => {}
        }
    }
    Err(ItemError::NoProgram { path: file.path.clone(), packets: file.index.min(PROGRAM_SEARCH_PACKETS) })
}

/// Longest PCR step inside an item accepted as continuous.
const MAX_PCR_STEP_27M: i64 = 27_000_000;

/// Streams an item's content packets with due times.
pub struct ItemReader {
    file: PacketFile,
    selection: StreamSelection,
    origin: Pcr,
    /// (byte index, PCR) of the last PCR seen.
    last_pcr: Option<(u64, Pcr)>,
    /// 27 MHz per byte measured between the last two PCRs (for extrapolation at the end).
    ticks_per_byte: f64,
    /// Content packets waiting for the next PCR to be timed: (byte index, packet).
    pending: VecDeque<(u64, ItemPacket)>,
    ready: VecDeque<ItemPacket>,
    last_due: u64,
    eof: bool,
}

impl std::fmt::Debug for ItemReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemReader").field("path", &self.file.path).field("origin", &self.origin).finish()
    }
}

impl ItemReader {
    /// Opens an item by path (the probe uses this; playout uses [`ItemReader::open`]).
    pub fn open_path(path: &Path) -> Result<Self, ItemError> {
        let mut file = PacketFile::open(path)?;
        let selection = find_program(&mut file)?;
        file.rewind()?;
        // The time origin is the item's first PCR.
        let mut origin = None;
        while let Some(p) = file.next()? {
            if p.pid() == selection.pcr_pid {
                if let Some(pcr) = p.pcr() {
                    origin = Some(pcr);
                    break;
                }
            }
        }
        let origin = origin.ok_or(ItemError::NoPcr { path: path.into(), pcr_pid: selection.pcr_pid })?;
        file.rewind()?;
        Ok(ItemReader {
            file,
            selection,
            origin,
            last_pcr: None,
            ticks_per_byte: 0.0,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            last_due: 0,
            eof: false,
        })
    }

    /// Opens a scheduled item.
    pub fn open(facts: &super::schedule::ItemFacts) -> Result<Self, ItemError> {
        Self::open_path(&facts.path)
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
    pub fn origin(&self) -> Pcr {
        self.origin
    }
    pub fn selection(&self) -> &StreamSelection {
        &self.selection
    }

    fn time_pending(&mut self, upto: Option<(u64, Pcr)>) -> Result<(), ItemError> {
        while let Some((byte, mut p)) = self.pending.pop_front() {
            let due = match (self.last_pcr, upto) {
                (None, _) => 0,
                (Some((b0, p0)), Some((b1, p1))) => {
                    let span = p1.since(p0) as f64;
                    let at = p0.since(self.origin) as f64 + span * (byte - b0) as f64 / (b1 - b0).max(1) as f64;
                    at.max(0.0) as u64
                }
                (Some((b0, p0)), None) => {
                    (p0.since(self.origin) as f64 + self.ticks_per_byte * (byte - b0) as f64).max(0.0) as u64
                }
            };
            // Due times never go backwards.
            self.last_due = self.last_due.max(due);
            p.due_27m = self.last_due;
            self.ready.push_back(p);
        }
        Ok(())
    }

    /// The next content packet, or `None` at the end of the item.
    pub fn next_packet(&mut self) -> Result<Option<ItemPacket>, ItemError> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            if self.eof {
                return Ok(None);
            }
            let Some(p) = self.file.next()? else {
                self.eof = true;
                self.time_pending(None)?;
                continue;
            };
            let index = self.file.index - 1;
            let byte = index * TS_PACKET_SIZE as u64;
            let pcr = if p.pid() == self.selection.pcr_pid { p.pcr() } else { None };
            if let Some(st) = self.selection.stream_of(p.pid()) {
                let (role, slot) = (st.role, st.slot());
                self.pending.push_back((byte, ItemPacket { packet: p, role, slot, due_27m: 0, index }));
            }
            if let Some(pcr) = pcr {
                if let Some((b0, p0)) = self.last_pcr {
                    let step = pcr.since(p0);
                    if !(0..=MAX_PCR_STEP_27M).contains(&step) {
                        return Err(ItemError::Corrupt {
                            path: self.file.path.clone(),
                            packet: index,
                            detail: format!("PCR jumps by {:.3} s inside the item; re-encode it as one continuous stream", step as f64 / 27e6),
                        });
                    }
                    self.ticks_per_byte = step as f64 / (byte - b0).max(1) as f64;
                }
                self.time_pending(Some((byte, pcr)))?;
                self.last_pcr = Some((byte, pcr));
            }
        }
    }
}
