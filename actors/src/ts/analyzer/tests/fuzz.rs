//! Hostile input: random bytes, mutated valid streams and well-formed sections with
//! random contents must never panic.

use std::time::Duration;

use super::stream::*;
use super::*;
use crate::ts::crc::crc32_mpeg2;
use crate::ts::parser::testkit::{stream_bytes, TestRng};

/// Feeds `bytes` in random chunks (some with arrival times) and builds the report.
fn feed(rng: &mut TestRng, bytes: &[u8]) -> Report {
    let mut a = Analyzer::default();
    let mut at = 0;
    let mut clock = Duration::ZERO;
    while at < bytes.len() {
        let n = (1 + rng.below(4000)).min(bytes.len() - at);
        clock += Duration::from_micros(rng.below(20_000) as u64);
        let arrival = (rng.below(2) == 0).then_some(clock);
        a.push(&bytes[at..at + n], arrival);
        at += n;
        if rng.below(50) == 0 {
            let _ = a.report();
        }
    }
    a.finish();
    let r = a.report();
    serde_json::to_string(&r).unwrap();
    r
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = TestRng::new(0xF00D);
    for round in 0..100 {
        let n = rng.below(30_000);
        let mut bytes = rng.bytes(n);
        if round % 2 == 0 {
            // Sprinkle sync bytes at packet spacing so the reader locks onto garbage.
            for i in (0..bytes.len()).step_by(188) {
                bytes[i] = 0x47;
            }
        }
        feed(&mut rng, &bytes);
    }
}

#[test]
fn mutated_streams_never_panic() {
    let base = clean(1.5);
    let mut rng = TestRng::new(0xBEEF);
    let mut broken = 0;
    for _ in 0..300 {
        let mut bytes = base.clone();
        for _ in 0..1 + rng.below(40) {
            let len = bytes.len().max(1);
            let at = rng.below(len);
            match rng.below(8) {
                0 => bytes[at.min(len - 1)] ^= 1 << rng.below(8),
                1 => bytes[at.min(len - 1)] = rng.next_u64() as u8,
                2 => {
                    // Header bits of a packet: TEI, PUSI, scrambling, AFC, CC.
                    let p = (at / 188) * 188;
                    if p + 4 < bytes.len() {
                        bytes[p + 1 + rng.below(3)] = rng.next_u64() as u8;
                    }
                }
                3 => {
                    // Adaptation field length.
                    let p = (at / 188) * 188;
                    if p + 5 < bytes.len() {
                        bytes[p + 3] |= 0x20;
                        bytes[p + 4] = rng.next_u64() as u8;
                    }
                }
                4 => {
                    let end = (at + rng.below(400)).min(bytes.len());
                    bytes.drain(at..end);
                }
                5 => {
                    let end = (at + rng.below(400)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
                6 => {
                    let junk = rng.some_bytes(300);
                    bytes.splice(at..at, junk);
                }
                // Truncation is rare: most rounds should keep most of the stream.
                _ if rng.below(8) == 0 => bytes.truncate(at),
                _ => bytes[at.min(len - 1)] = 0x47,
            }
        }
        if !feed(&mut rng, &bytes).is_clean() {
            broken += 1;
        }
    }
    assert!(
        broken > 200,
        "the mutations should mostly be noticed: {broken}"
    );
}

/// A long-form section of `table_id` with a random body and a correct CRC.
fn random_section(rng: &mut TestRng, table_id: u8) -> Vec<u8> {
    let body = rng.some_bytes(200);
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xB0 | (len >> 8) as u8,
        len as u8,
        0,
        1,
        0xC1,
        0,
        0,
    ];
    s.extend_from_slice(&body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

#[test]
fn well_formed_sections_and_tags_with_random_contents_never_panic() {
    let mut rng = TestRng::new(0xCAFE);
    for _ in 0..40 {
        let s = generate(1.0, |s, item| {
            if rng.below(3) != 0 {
                return true;
            }
            match item {
                Item::Pat => s.section(0, &random_section(&mut rng, 0x00)),
                Item::Pmt => s.section(PMT_PID, &random_section(&mut rng, 0x02)),
                Item::Sdt => s.section(0x11, &random_section(&mut rng, 0x42)),
                Item::Eit => s.section(0x12, &random_section(&mut rng, 0x4E)),
                Item::Id3 => {
                    let mut tag = b"ID3".to_vec();
                    tag.push([3u8, 4][rng.below(2)]);
                    tag.extend(rng.some_bytes(300));
                    let pes = crate::ts::parser::testkit::pes_packet(
                        0xBD,
                        Some(rng.next_u64() >> 31),
                        None,
                        &tag,
                    );
                    s.pes(ID3_PID, &pes);
                }
                Item::Audio => {
                    let mut pes = rng.some_bytes(400);
                    if pes.len() > 3 {
                        pes[..3].copy_from_slice(&[0, 0, 1]);
                    }
                    s.pes(AUDIO_PID, &pes);
                }
                Item::Pcr => {
                    s.pcr_value(crate::ts::time::Pcr::new(rng.next_u64()), rng.below(2) == 0)
                }
            }
            false
        });
        feed(&mut rng, &stream_bytes(&s.packets));
    }
}
