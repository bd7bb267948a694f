//! One broken stream per TR 101 290 check.

use super::stream::*;
use super::*;
use crate::ts::packet::{Pid, TsPacket};
use crate::ts::parser::testkit::{
    long_section, pat_section, pmt_section, raw_packet, stream_bytes,
};
use crate::ts::time::Pcr;
use ErrorKind::*;

/// Is the stream time of `s` inside [from, to) ms?
fn within(s: &CbrStream, from: f64, to: f64) -> bool {
    (from..to).contains(&s.ms())
}

// ---- 1.1 / 1.2 ----

#[test]
fn sync_loss_after_garbage() {
    let s = generate(3.0, |_, _| true);
    let half = s.packets.len() / 2;
    let mut bytes = stream_bytes(&s.packets[..half]);
    bytes.extend_from_slice(&[0u8; 100]);
    bytes.extend(stream_bytes(&s.packets[half..]));
    let r = analyze(&bytes);
    assert_eq!(r.error_count(TsSyncLoss), 1);
    assert_eq!(r.error_count(SyncByteError), 0);
    assert_eq!(r.error_count(ContinuityCountError), 0, "no packet was lost");
    assert_eq!(r.reader.bytes_skipped, 100);
    assert_eq!(r.packets as usize, s.packets.len());
    let e = r.errors_of(TsSyncLoss).next().unwrap();
    assert_eq!(e.packet_index as usize, half);
    assert!(e.message.contains("100 bytes skipped"), "{}", e.message);
}

#[test]
fn one_corrupted_sync_byte() {
    let s = generate(2.0, |_, _| true);
    let mut bytes = s.bytes();
    let k = s
        .packets
        .iter()
        .enumerate()
        .skip(100)
        .find(|(_, p)| p.is_null())
        .unwrap()
        .0;
    bytes[k * 188] = 0x07;
    let r = analyze(&bytes);
    assert_errors(&r, &[(SyncByteError, 1)]);
    assert_eq!(r.p1_error_count(), 1);
    assert_eq!(
        r.packets as usize,
        s.packets.len() - 1,
        "the packet is dropped"
    );
}

// ---- 1.3 PAT ----

#[test]
fn pat_missing_for_600_ms() {
    // PATs every 100 ms; none from 1.05 s to 1.6 s: one gap of about 600 ms.
    let r = analyze(
        &generate(3.0, |s, item| {
            !(item == Item::Pat && within(s, 1050.0, 1600.0))
        })
        .bytes(),
    );
    assert_errors(&r, &[(PatError, 1)]);
    let gap = r.max_pat_interval_ms.unwrap();
    assert!((599.0..602.0).contains(&gap), "{gap}");
    assert!(r
        .errors_of(PatError)
        .next()
        .unwrap()
        .message
        .contains("PAT"));
}

#[test]
fn pat_missing_at_the_end_is_overdue() {
    // The PAT stops at 1 s: reported once while the stream goes on, not per PCR.
    let r = analyze(&generate(4.0, |s, item| !(item == Item::Pat && s.ms() > 1000.0)).bytes());
    assert_errors(&r, &[(PatError, 1)]);
    assert!(r
        .errors_of(PatError)
        .next()
        .unwrap()
        .message
        .starts_with("no PAT for"));
}

#[test]
fn pat_with_wrong_table_id_or_scrambled() {
    let r = analyze(
        &generate(1.0, |s, item| {
            if item == Item::Pat && within(s, 500.0, 600.0) {
                s.section(
                    0,
                    &long_section(0x02, 1, 0, 0, 0, &[0xE1, 0x00, 0xF0, 0x00]),
                );
                return false;
            }
            true
        })
        .bytes(),
    );
    assert_errors(&r, &[(PatError, 1)]);
    assert!(r
        .errors_of(PatError)
        .next()
        .unwrap()
        .message
        .contains("table_id 0x02"));

    let mut s = generate(1.0, |_, _| true);
    let k = s
        .packets
        .iter()
        .rposition(|p| p.pid().value() == 0)
        .unwrap();
    s.packets[k].0[3] |= 0x80; // transport_scrambling_control '10'
    let r = analyze(&s.bytes());
    // A scrambled PAT is a PAT error and, with no CAT, a CAT error.
    assert_errors(&r, &[(PatError, 1), (CatError, 1)]);
}

// ---- 1.4 CC ----

fn cc_run(ccs: &[u8]) -> Report {
    let packets: Vec<TsPacket> = ccs
        .iter()
        .map(|&cc| raw_packet(0x300, false, cc, &[0]))
        .collect();
    analyze(&stream_bytes(&packets))
}

#[test]
fn continuity_counter_rules() {
    assert_errors(&cc_run(&[14, 15, 0, 1, 2]), &[]);
    // One packet lost.
    let r = cc_run(&[1, 2, 4, 5]);
    assert_errors(&r, &[(ContinuityCountError, 1)]);
    assert_eq!(r.p1_errors[0].packet_index, 2);
    // Out of order.
    assert_errors(&cc_run(&[1, 2, 4, 3, 4, 5]), &[(ContinuityCountError, 2)]);
    // One duplicate is allowed; a second one is not.
    assert_errors(&cc_run(&[1, 2, 2, 3]), &[]);
    let r = cc_run(&[1, 2, 2, 2, 3]);
    assert_errors(&r, &[(ContinuityCountError, 1)]);
    assert!(
        r.p1_errors[0].message.contains("3 times"),
        "{}",
        r.p1_errors[0].message
    );
    // Null packets are not checked.
    let nulls: Vec<TsPacket> = (0..10)
        .map(|i| raw_packet(0x1FFF, false, i * 3, &[]))
        .collect();
    assert_errors(&analyze(&stream_bytes(&nulls)), &[]);
}

#[test]
fn discontinuity_indicator_excuses_a_jump() {
    let mut packets: Vec<TsPacket> = [1u8, 2, 9, 10]
        .iter()
        .map(|&cc| raw_packet(0x300, false, cc, &[0]))
        .collect();
    // Give packet 2 an adaptation field with the discontinuity_indicator.
    let b = &mut packets[2].0;
    b[3] = 0x30 | 9;
    b[4] = 1;
    b[5] = 0x80;
    let r = analyze(&stream_bytes(&packets));
    assert_errors(&r, &[]);
    assert_eq!(r.pid(0x300).unwrap().discontinuity_indicators, 1);
}

#[test]
fn packets_without_payload_must_repeat_the_cc() {
    let pcr_only = |cc| TsPacket::pcr_only(Pid::new(0x300), Pcr::new(0), cc, false);
    let packets = vec![
        raw_packet(0x300, false, 4, &[0]),
        pcr_only(4),
        raw_packet(0x300, false, 5, &[0]),
        pcr_only(6),
    ];
    let r = analyze(&stream_bytes(&packets));
    assert_eq!(r.error_count(ContinuityCountError), 1);
    assert!(r
        .errors_of(ContinuityCountError)
        .next()
        .unwrap()
        .message
        .contains("without payload"));
}

// ---- 1.5 PMT ----

#[test]
fn pmt_interval_over_500_ms() {
    let r = analyze(
        &generate(3.0, |s, item| {
            !(item == Item::Pmt && within(s, 1050.0, 1800.0))
        })
        .bytes(),
    );
    assert_errors(&r, &[(PmtError, 1)]);
    let e = r.errors_of(PmtError).next().unwrap();
    assert_eq!(e.pid, Some(PMT_PID));
    assert!((799.0..802.0).contains(&r.programs[0].max_pmt_interval_ms.unwrap()));
}

#[test]
fn scrambled_pmt() {
    let mut s = generate(1.0, |_, _| true);
    let k = s
        .packets
        .iter()
        .rposition(|p| p.pid().value() == PMT_PID)
        .unwrap();
    s.packets[k].0[3] |= 0xC0;
    let r = analyze(&s.bytes());
    assert_eq!(r.error_count(PmtError), 1);
}

// ---- 1.6 PID ----

#[test]
fn pid_referenced_but_absent() {
    let mut s = CbrStream::new();
    s.pmt_streams.push((0x1B, 0x103)); // video that never comes
    let r = analyze(&generate_with(s, &standard_schedule(), 7.0, |_, _| true).bytes());
    assert_errors(&r, &[(PidError, 1)]);
    let e = r.errors_of(PidError).next().unwrap();
    assert_eq!(e.pid, Some(0x103));
    assert!(e.message.contains("0x0103"), "{}", e.message);
}

#[test]
fn pid_dropped_from_the_pmt_is_not_missed() {
    // At 1 s the PMT (version 1) stops listing the audio, which stops at the same time.
    let r = analyze(
        &generate(8.0, |s, item| {
            if s.ms() >= 1000.0 && s.pmt_version == 0 {
                s.pmt_version = 1;
                s.pmt_streams = vec![(0x15, ID3_PID)];
            }
            !(item == Item::Audio && s.ms() >= 1000.0)
        })
        .bytes(),
    );
    assert_errors(&r, &[]);
    assert_eq!(r.programs[0].pmt_versions, vec![0, 1]);
    assert_eq!(r.programs[0].streams, vec![(ID3_PID, 0x15)]);
}

// ---- 2.1 / 2.2 ----

#[test]
fn transport_error_indicator() {
    let mut s = generate(1.0, |_, _| true);
    let k = s.packets.iter().rposition(|p| p.is_null()).unwrap();
    s.packets[k].0[1] |= 0x80;
    let r = analyze(&s.bytes());
    assert_errors(&r, &[(TransportError, 1)]);
    assert_eq!(r.p1_error_count(), 0);
    assert_eq!(r.pid(0x1FFF).unwrap().transport_errors, 1);
}

#[test]
fn crc_error() {
    let r = analyze(
        &generate(3.0, |s, item| {
            if item == Item::Sdt && within(s, 900.0, 1100.0) {
                let mut sdt = crate::ts::parser::testkit::sdt_section(1, 2, 0, &[(1, 2, "x", "y")]);
                let n = sdt.len();
                sdt[n - 2] ^= 0x40;
                s.section(0x11, &sdt);
                return false;
            }
            true
        })
        .bytes(),
    );
    assert_errors(&r, &[(CrcError, 1)]);
    assert_eq!(r.errors_of(CrcError).next().unwrap().pid, Some(0x11));
    assert_eq!(
        r.sdt.services[0].service_name, SERVICE_NAME,
        "the corrupt SDT was not used"
    );
}

// ---- 2.3 PCR ----

#[test]
fn pcr_interval_of_50_ms() {
    // PCRs every 25 ms; the one due at 2 s is left out: one 50 ms gap.
    let mut schedule = standard_schedule();
    schedule[0] = (Item::Pcr, 25.0);
    let s = generate_with(CbrStream::new(), &schedule, 3.0, |s, item| {
        !(item == Item::Pcr && within(s, 1995.0, 2010.0))
    });
    let r = analyze(&s.bytes());
    assert_errors(&r, &[(PcrRepetitionError, 1)]);
    let max = r.max_pcr_interval_ms.unwrap();
    assert!((49.0..51.6).contains(&max), "{max}"); // give or take a packet slot
    let e = r.errors_of(PcrRepetitionError).next().unwrap();
    assert_eq!(e.pid, Some(PCR_PID));
    assert!(e.message.contains("ms between PCRs"), "{}", e.message);
}

#[test]
fn pcr_jump_without_discontinuity_indicator() {
    for jump in [27_000_000i64, -27_000_000] {
        let r = analyze(
            &generate(3.0, |s, _| {
                if s.ms() >= 1500.0 {
                    s.pcr_offset = jump;
                }
                true
            })
            .bytes(),
        );
        assert_errors(&r, &[(PcrDiscontinuityIndicatorError, 1)]);
        // Stream time stays continuous (estimated from bytes across the jump).
        assert!(
            (2975.0..3001.0).contains(&r.duration_ms.unwrap()),
            "{:?}",
            r.duration_ms
        );
        assert!((r.bitrate.overall_bps.unwrap() - RATE as f64).abs() < 1.0);
    }
}

#[test]
fn pcr_jump_with_discontinuity_indicator_is_fine() {
    let r = analyze(
        &generate(3.0, |s, item| {
            if item == Item::Pcr && s.ms() >= 1500.0 && s.pcr_offset == 0 {
                s.pcr_offset = 27_000_000;
                s.pcr(true);
                return false;
            }
            true
        })
        .bytes(),
    );
    assert_errors(&r, &[]);
    assert_eq!(r.pid(PCR_PID).unwrap().discontinuity_indicators, 1);
    assert_eq!(
        r.pid(PCR_PID)
            .unwrap()
            .pcr
            .as_ref()
            .unwrap()
            .discontinuities,
        1
    );
}

#[test]
fn pcr_off_by_2_us() {
    let r = analyze(
        &generate(4.0, |s, item| {
            if item == Item::Pcr && within(s, 2000.0, 2020.0) {
                let exact = s.ticks();
                s.pcr_value(Pcr::new(exact + 54), false); // 54 ticks = 2 us
                return false;
            }
            true
        })
        .bytes(),
    );
    assert_errors(&r, &[(PcrAccuracyError, 1)]);
    let max = r.max_pcr_accuracy_error_ns.unwrap();
    assert!((1999.0..2001.0).contains(&max), "{max}");
    assert_eq!(
        r.pid(PCR_PID)
            .unwrap()
            .pcr
            .as_ref()
            .unwrap()
            .accuracy_violations,
        1
    );
}

// ---- 2.5 PTS ----

#[test]
fn pts_repetition_over_700_ms() {
    let r = analyze(
        &generate(3.0, |s, item| {
            !(item == Item::Audio && within(s, 1000.0, 1800.0))
        })
        .bytes(),
    );
    assert_errors(&r, &[(PtsError, 1)]);
    assert_eq!(r.errors_of(PtsError).next().unwrap().pid, Some(AUDIO_PID));
    assert!(r.pid(AUDIO_PID).unwrap().max_pts_interval_ms.unwrap() > 800.0);
}

#[test]
fn metadata_pts_exemption_is_configurable() {
    let bytes = clean(5.0);
    assert_errors(&analyze(&bytes), &[]);
    let strict = AnalyzerConfig {
        pts_exempt_stream_types: vec![],
        ..AnalyzerConfig::default()
    };
    let r = analyze_bytes(&bytes, strict);
    // ID3 every 2 s: each gap breaks 700 ms once the PID is judged.
    assert!(r.error_count(PtsError) >= 2, "{:?}", kinds(&r));
    assert!(r.errors_of(PtsError).all(|e| e.pid == Some(ID3_PID)));
}

#[test]
fn pts_statistics_handle_wrap_and_count_backwards_steps() {
    let mut s = CbrStream::new();
    s.pts_base = (1u64 << 33) - 90_000; // wraps after one second
    let r = analyze(&generate_with(s, &standard_schedule(), 2.0, |_, _| true).bytes());
    let audio = r.pid(AUDIO_PID).unwrap();
    assert_eq!(audio.pts_backwards, 0);
    assert!(audio.max_pts_forward_gap < 3000);
    assert!(audio.pts_min.unwrap() < 200_000 && audio.pts_max.unwrap() > (1 << 33) - 100_000);

    let r = analyze(
        &generate(2.0, |s, item| {
            if item == Item::Audio && within(s, 1000.0, 1024.0) {
                s.pts_base -= 9_000; // 100 ms back, once
            }
            true
        })
        .bytes(),
    );
    assert_eq!(r.pid(AUDIO_PID).unwrap().pts_backwards, 1);
    assert_errors(&r, &[]);
}

// ---- 2.6 CAT ----

#[test]
fn scrambled_without_cat() {
    let scramble = |s: &mut CbrStream| {
        for p in s
            .packets
            .iter_mut()
            .filter(|p| p.pid().value() == AUDIO_PID)
        {
            p.0[3] |= 0x80;
        }
    };
    let mut s = generate(1.0, |_, _| true);
    scramble(&mut s);
    let r = analyze(&s.bytes());
    assert_errors(&r, &[(CatError, 1)]);
    assert!(r.pid(AUDIO_PID).unwrap().scrambled_packets > 10);
    assert!(!r.cat_seen);

    // With a CAT first, scrambling is fine.
    let mut s = CbrStream::new();
    s.section(1, &long_section(0x01, 0xFFFF, 0, 0, 0, &[]));
    let mut s = generate_with(s, &standard_schedule(), 1.0, |_, _| true);
    scramble(&mut s);
    let r = analyze(&s.bytes());
    assert_errors(&r, &[]);
    assert!(r.cat_seen);
}

#[test]
fn wrong_table_on_the_cat_pid() {
    let mut s = CbrStream::new();
    s.section(1, &pat_section(1, 0, &[]));
    let r = analyze(&generate_with(s, &standard_schedule(), 1.0, |_, _| true).bytes());
    assert_errors(&r, &[(CatError, 1)]);
}

// ---- versions ----

#[test]
fn pat_and_pmt_versions_are_recorded() {
    let r = analyze(
        &generate(2.0, |s, item| {
            if item == Item::Pat && s.ms() >= 1000.0 {
                s.section(0, &pat_section(1, 3, &[(PROGRAM, PMT_PID)]));
                return false;
            }
            if item == Item::Pmt && s.ms() >= 500.0 {
                s.section(
                    PMT_PID,
                    &pmt_section(PROGRAM, 7, PCR_PID, &[(0x0F, AUDIO_PID), (0x15, ID3_PID)]),
                );
                return false;
            }
            true
        })
        .bytes(),
    );
    assert_errors(&r, &[]);
    assert_eq!(r.pat_versions, vec![0, 3]);
    assert_eq!(r.programs[0].pmt_versions, vec![0, 7]);
}
