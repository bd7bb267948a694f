//! Probes an item once before it is scheduled: checks it can be played cleanly and
//! measures what the schedule needs (time origin, lead, end, span at the channel's mux
//! rate, packet counts). Bad items are refused here, with a reason, before they air.

use super::mux::Cadence;
use super::reader::{ItemError, ItemReader};
use super::schedule::{ItemFacts, ItemMeta, StreamRole};
use crate::ts::pes::{find_timestamps, read_timestamp};
use crate::ts::MuxRate;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// CRC-64 of a file's bytes: the item's content identity.
pub fn content_id(path: &Path) -> Result<u64, ItemError> {
    let io = |source| ItemError::Io { path: path.into(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut digest = CRC64.digest();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    Ok(digest.finalize())
}

/// An item's now-playing metadata: its sidecar JSON (`<item>.json` or `<stem>.json`, the
/// same file and format sync reads for media), each missing field defaulting to the
/// file stem (media id, title) or empty.
pub fn item_meta(path: &Path) -> ItemMeta {
    let mut warnings = Vec::new();
    let s = crate::sync::metadata::read_sidecar(path, &mut warnings);
    for w in warnings {
        tracing::warn!(item = %path.display(), "{w}");
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    ItemMeta {
        media_id: s.media_id.unwrap_or_else(|| stem.clone()),
        title: s.title.unwrap_or(stem),
        artist: s.artist.unwrap_or_default(),
        album: s.album.unwrap_or_default(),
        genre: s.genre.unwrap_or_default(),
    }
}

/// Slack added to the measured queueing delay (10 ms).
const DELAY_MARGIN_90K: u64 = 900;
/// Time from an item's origin (first PCR) to its first presentation on the output,
/// unless the item needs more (400 ms).
pub const PRESENTATION_DELAY_90K: u64 = 36_000;
/// The most presentation delay headend adds to absorb an item's bursts (1 s); an item
/// needing more is faster than the channel and is refused.
pub const MAX_ADDED_DELAY_90K: u64 = 90_000;

/// Share of the output the channel's own tables and PCRs take.
pub fn table_overhead(rate: MuxRate) -> f64 {
    let c = Cadence::for_rate(rate);
    1.0 / c.pcr_every as f64 + 2.0 / c.psi_every as f64 + 4.0 / c.si_every as f64 + 2.0 / c.id3_every as f64
}

#[derive(Default)]
struct StreamTimes {
    pts: Vec<i64>,
    /// Declared length and bytes seen of the PES being read (0 = unbounded).
    pes_declared: usize,
    pes_seen: usize,
    next_cc: Option<u8>,
}

/// Probes `path` for a channel at `rate`.
pub fn probe(path: &Path, rate: MuxRate) -> Result<ItemFacts, ItemError> {
    let mut reader = ItemReader::open_path(path)?;
    let origin = reader.origin();
    let selection = reader.selection().clone();
    let mut times: BTreeMap<StreamRole, StreamTimes> = BTreeMap::new();
    let mut payload_packets = [0u64; 2];
    let capacity = 1.0 - table_overhead(rate);
    let slot_cost = 1.0 / capacity;
    let (mut free, mut max_delay) = (0.0f64, 0.0f64);
    let mut per_second: BTreeMap<u64, u64> = BTreeMap::new();

    while let Some(p) = reader.next_packet()? {
        let st = times.entry(p.role).or_default();
        let pkt = &p.packet;
        if pkt.has_payload() {
            payload_packets[p.role.index()] += 1;
            if let Some(expected) = st.next_cc {
                if pkt.cc() != expected && !pkt.discontinuity_indicator() {
                    return Err(ItemError::Corrupt {
                        path: path.into(),
                        packet: p.index,
                        detail: format!("continuity counter {} where {} was expected on PID {}: packets are missing", pkt.cc(), expected, pkt.pid()),
                    });
                }
            }
            st.next_cc = Some((pkt.cc() + 1) & 0x0F);
            if pkt.pusi() {
                if st.pes_declared != 0 && st.pes_seen < st.pes_declared {
                    return Err(ItemError::Corrupt {
                        path: path.into(),
                        packet: p.index,
                        detail: format!("PES on PID {} cut short ({} of {} bytes)", pkt.pid(), st.pes_seen, st.pes_declared),
                    });
                }
                let payload = pkt.payload();
                if payload.len() >= 6 && payload[..3] == [0, 0, 1] {
                    st.pes_declared = u16::from_be_bytes([payload[4], payload[5]]) as usize;
                    st.pes_declared += if st.pes_declared > 0 { 6 } else { 0 };
                    st.pes_seen = 0;
                }
                if let Some(at) = find_timestamps(payload).and_then(|t| t.pts_at) {
                    let pts = read_timestamp(&payload[at..at + 5]);
                    st.pts.push(pts.since(origin.to_pts()));
                }
            }
            st.pes_seen += pkt.payload().len();
        }
        let due_slot = rate.packets_for_27m(p.due_27m) as f64;
        let slot = free.max(due_slot);
        max_delay = max_delay.max(slot - due_slot);
        free = slot + slot_cost;
        *per_second.entry(p.due_27m / 27_000_000).or_default() += 1;
    }
    for (role, st) in &times {
        if st.pes_declared != 0 && st.pes_seen < st.pes_declared {
            return Err(ItemError::Truncated {
                path: path.into(),
                detail: format!("last {:?} PES has {} of its {} bytes", role, st.pes_seen, st.pes_declared),
            });
        }
    }

    let mut lead = i64::MAX;
    let mut end = i64::MIN;
    for st in times.values_mut() {
        if st.pts.is_empty() {
            continue;
        }
        st.pts.sort_unstable();
        st.pts.dedup();
        let mut steps: Vec<i64> = st.pts.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0).collect();
        steps.sort_unstable();
        let frame = steps.get(steps.len() / 2).copied().unwrap_or(0);
        lead = lead.min(st.pts[0]);
        end = end.max(st.pts[st.pts.len() - 1] + frame);
    }
    if lead == i64::MAX {
        return Err(ItemError::Corrupt { path: path.into(), packet: 0, detail: "no PES packet with a PTS".into() });
    }
    if lead < 0 {
        return Err(ItemError::Corrupt {
            path: path.into(),
            packet: 0,
            detail: format!("first PTS is {:.3} s before the first PCR", -lead as f64 / 90_000.0),
        });
    }

    // Packets queue behind bursts (an I-frame sent faster than the channel's rate by
    // the item's own muxer). Every item is presented PRESENTATION_DELAY after its time
    // origin on the output (more when its bursts need it), so packets still reach the
    // decoder in time and consecutive items join without a gap, whatever delay their own
    // muxers used.
    let lead_in = lead as u64;
    let queueing_90k = (max_delay * 188.0 * 8.0 * 90_000.0 / rate.bits_per_second() as f64).ceil() as u64;
    let needed_90k = lead_in + queueing_90k + queueing_90k / 4 + DELAY_MARGIN_90K;
    let lead_90k = needed_90k.max(PRESENTATION_DELAY_90K);
    let added_delay_90k = lead_90k - lead_in;
    if added_delay_90k > MAX_ADDED_DELAY_90K {
        let peak_packets = per_second.values().copied().max().unwrap_or(0);
        return Err(ItemError::PeakRateTooHigh {
            path: path.into(),
            peak_bps: peak_packets * 188 * 8,
            capacity_bps: (rate.bits_per_second() as f64 * capacity) as u64,
            mux_rate_bps: rate.bits_per_second(),
        });
    }

    Ok(ItemFacts {
        path: path.into(),
        content_id: content_id(path)?,
        meta: item_meta(path),
        streams: selection.streams.into_iter().map(|(_, s)| s).collect(),
        lead_90k,
        end_90k: end.max(0) as u64 + added_delay_90k,
        added_delay_90k,
        span_packets: free.ceil() as u64 + 1,
        payload_packets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_meta_takes_what_the_sidecar_has_and_defaults_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let item = dir.path().join("song.ts");
        assert_eq!(item_meta(&item), ItemMeta { media_id: "song".into(), title: "song".into(), ..Default::default() });
        // A title alone is enough (sync accepts the same file).
        std::fs::write(dir.path().join("song.ts.json"), r#"{"title":"Blue in Green"}"#).unwrap();
        let m = item_meta(&item);
        assert_eq!((m.title.as_str(), m.media_id.as_str(), m.artist.as_str()), ("Blue in Green", "song", ""));
        // <stem>.json is read when <item>.json is absent.
        std::fs::remove_file(dir.path().join("song.ts.json")).unwrap();
        std::fs::write(dir.path().join("song.json"), r#"{"artist":"Bill Evans","media_id":"kob-3"}"#).unwrap();
        let m = item_meta(&item);
        assert_eq!((m.title.as_str(), m.media_id.as_str(), m.artist.as_str()), ("song", "kob-3", "Bill Evans"));
    }
}
