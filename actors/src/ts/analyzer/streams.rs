//! PES on elementary stream PIDs: PTS statistics and the 2.5 cadence, and ID3 tags on
//! timed-metadata PIDs (stream_type 0x15).

use super::timeline::{Occurrence, Watch};
use super::{Analyzer, Id3Seen, MAX_METADATA_PES};
use crate::ts::packet::{Pid, TsPacket};
use crate::ts::parser::{Id3Tag, ParseError, PesAssembler, PesHeader};

/// Longest PES header (9 + 255 bytes of header data).
const MAX_PES_HEADER: usize = 264;
const STREAM_TYPE_METADATA: u8 = 0x15;

impl Analyzer {
    pub(super) fn on_pes_payload(&mut self, packet: &TsPacket, pos: u64, index: u64) {
        let pid = packet.pid();
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        let payload = packet.payload();
        let header = if packet.pusi() {
            state.partial_pes_header = None;
            match PesHeader::parse(payload) {
                Ok(h) => Some((h, pos, index)),
                Err(ParseError::Truncated { .. })
                    if payload.len() < 3 || payload[..3] == [0, 0, 1] =>
                {
                    state.partial_pes_header = Some((payload.to_vec(), pos, index));
                    None
                }
                Err(_) => None, // not PES
            }
        } else if let Some((mut bytes, at, at_index)) = state.partial_pes_header.take() {
            bytes.extend_from_slice(payload);
            match PesHeader::parse(&bytes) {
                Ok(h) => Some((h, at, at_index)),
                Err(ParseError::Truncated { .. }) if bytes.len() < MAX_PES_HEADER => {
                    state.partial_pes_header = Some((bytes, at, at_index));
                    None
                }
                Err(_) => None,
            }
        } else {
            None
        };
        if let Some((h, at, at_index)) = header {
            self.on_pes_header(pid, &h, at, at_index);
        }
        if self.referenced.get(&pid).copied().flatten() == Some(STREAM_TYPE_METADATA) {
            if let Some(state) = self.pids.get_mut(&pid) {
                state
                    .metadata
                    .get_or_insert_with(|| PesAssembler::new(pid, MAX_METADATA_PES))
                    .push(packet);
            }
            self.drain_metadata(pid);
        }
    }

    fn on_pes_header(&mut self, pid: Pid, header: &PesHeader, pos: u64, index: u64) {
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        let r = &mut state.report;
        r.pes_count += 1;
        let Some(pts) = header.pts else {
            return;
        };
        r.pts_count += 1;
        let v = pts.ticks();
        r.pts_first.get_or_insert(v);
        r.pts_last = Some(v);
        r.pts_min = Some(r.pts_min.map_or(v, |m| m.min(v)));
        r.pts_max = Some(r.pts_max.map_or(v, |m| m.max(v)));
        if let Some(previous) = state.last_pts.replace(pts) {
            let step = pts.since(previous);
            if step < 0 {
                r.pts_backwards += 1;
            } else {
                r.max_pts_forward_gap = r.max_pts_forward_gap.max(step as u64);
            }
        }
        self.observe(pos, index, Occurrence::Seen(Watch::Pts(pid)));
    }

    /// Reads the finished metadata PES packets of `pid` as ID3 tags.
    pub(super) fn drain_metadata(&mut self, pid: Pid) {
        let cap = self.config.max_stored_items;
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        let Some(assembler) = state.metadata.as_mut() else {
            return;
        };
        loop {
            let pes = match assembler.next_pes() {
                Ok(Some(pes)) => pes,
                Ok(None) => break,
                Err(_) => continue,
            };
            let Ok(tag) = Id3Tag::parse(pes.payload()) else {
                continue;
            };
            self.id3_pes += 1;
            if state.last_id3.as_ref() == Some(&tag) {
                continue;
            }
            if self.id3_tags.len() < cap {
                self.id3_tags.push(Id3Seen {
                    pid: pid.value(),
                    pts: pes.header.pts.map(|p| p.ticks()),
                    title: tag.title().map(str::to_owned),
                    artist: tag.artist().map(str::to_owned),
                    tag: tag.clone(),
                });
            }
            state.last_id3 = Some(tag);
        }
    }
}
