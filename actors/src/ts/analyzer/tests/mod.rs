//! Analyzer tests on hand-made streams: one clean CBR channel, then one broken variant
//! per TR 101 290 check.

mod arrival;
mod checks;
mod fuzz;
mod stream;

use super::*;
use crate::ts::parser::testkit::raw_packet;
use stream::*;

fn analyze(bytes: &[u8]) -> Report {
    analyze_bytes(bytes, AnalyzerConfig::default())
}

/// All error kinds with a non-zero count, for readable assertion failures.
fn kinds(r: &Report) -> Vec<(ErrorKind, u64)> {
    r.error_counts.iter().map(|(k, n)| (*k, *n)).collect()
}

/// Asserts the report has exactly these error counts and nothing else.
#[track_caller]
fn assert_errors(r: &Report, expected: &[(ErrorKind, u64)]) {
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(
        kinds(r),
        expected,
        "errors: {:#?}",
        r.p1_errors.iter().chain(&r.p2_errors).collect::<Vec<_>>()
    );
}

#[test]
fn clean_cbr_channel_is_clean_with_exact_bitrate() {
    let r = analyze(&clean(6.0));
    assert_errors(&r, &[]);
    assert!(r.is_clean());
    assert_eq!((r.p1_error_count(), r.p2_error_count()), (0, 0));
    assert_eq!(r.bytes, r.packets * 188);
    assert_eq!(r.timebase_pid, Some(PCR_PID));
    let bitrate = r.bitrate.overall_bps.unwrap();
    assert!((bitrate - RATE as f64).abs() < 1e-6, "{bitrate}");
    assert_eq!(r.bitrate.windows, 5);
    assert!((r.bitrate.window_min_bps.unwrap() - RATE as f64).abs() < 1e-6);
    assert!((r.bitrate.window_max_bps.unwrap() - RATE as f64).abs() < 1e-6);
    assert!(
        r.max_pcr_accuracy_error_ns.unwrap() < 1.0,
        "exact PCRs: {:?}",
        r.max_pcr_accuracy_error_ns
    );
    assert!(r.max_pcr_interval_ms.unwrap() <= 20.0 + 0.752 * 3.0);
    // Time starts at the first PCR after the PMT named the PCR PID (20 ms in).
    assert!(
        (5975.0..6001.0).contains(&r.duration_ms.unwrap()),
        "{:?}",
        r.duration_ms
    );
    assert!(r.null_share > 0.5 && r.null_share < 1.0);
    assert_eq!(r.null_packets, r.pid(0x1FFF).unwrap().packets);

    // Tables.
    assert_eq!(r.transport_stream_id, Some(1));
    assert_eq!(r.pat_versions, vec![0]);
    assert!(
        (99.0..102.0).contains(&r.max_pat_interval_ms.unwrap()),
        "{:?}",
        r.max_pat_interval_ms
    );
    assert_eq!(r.programs.len(), 1);
    let p = &r.programs[0];
    assert_eq!(
        (p.program_number, p.pmt_pid, p.pcr_pid),
        (PROGRAM, PMT_PID, Some(PCR_PID))
    );
    assert_eq!(p.streams, vec![(AUDIO_PID, 0x0F), (ID3_PID, 0x15)]);
    assert_eq!(p.pmt_versions, vec![0]);
    assert!(p.max_pmt_interval_ms.unwrap() < 102.0);
    assert_eq!(r.sdt.services.len(), 1);
    assert_eq!(r.sdt.services[0].service_name, SERVICE_NAME);
    assert_eq!(r.sdt.services[0].provider_name, "headend");
    assert!((999.0..1003.0).contains(&r.sdt.max_interval_ms.unwrap()));
    let present: Vec<&str> = r.eit.present.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(present, vec!["Song 0", "Song 1"]);
    assert_eq!(
        r.eit
            .following
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Song 1", "Song 2"]
    );
    assert!(r.eit.max_pf_interval_ms.unwrap() < 1003.0);
    assert_eq!(r.eit.present[0].start_time_utc, Some(750_516_300));

    // PIDs.
    let audio = r.pid(AUDIO_PID).unwrap();
    assert_eq!(audio.stream_type, Some(0x0F));
    assert_eq!(audio.cc_errors, 0);
    assert!(audio.pes_count > 240 && audio.pes_count == audio.pts_count);
    assert_eq!(audio.pts_backwards, 0);
    // 24 ms = 2160 ticks, plus a few slots when SDT/EIT packets delay the audio.
    assert!(
        (2160..3000).contains(&audio.max_pts_forward_gap),
        "{}",
        audio.max_pts_forward_gap
    );
    assert!(
        (PTS_BASE..PTS_BASE + 2000).contains(&audio.pts_first.unwrap()),
        "first audio after the tables"
    );
    assert!(audio.max_pts_interval_ms.unwrap() < 33.0);
    let pcr = r.pid(PCR_PID).unwrap();
    assert_eq!(pcr.pcr.as_ref().unwrap().count, pcr.packets);

    // ID3 every 2 s: exempt from the 700 ms PTS rule, still measured.
    let id3 = r.pid(ID3_PID).unwrap();
    assert_eq!(id3.stream_type, Some(0x15));
    assert!(
        (1999.0..2004.0).contains(&r.id3.max_interval_ms.unwrap()),
        "{:?}",
        r.id3.max_interval_ms
    );
    assert_eq!(r.id3.pes_count, 3);
    let titles: Vec<(Option<&str>, Option<&str>)> = r
        .id3
        .tags
        .iter()
        .map(|t| (t.title.as_deref(), t.artist.as_deref()))
        .collect();
    assert_eq!(
        titles,
        vec![
            (Some("Song 0"), Some("Artist")),
            (Some("Song 1"), Some("Artist"))
        ]
    );
    assert_eq!(
        r.id3.tags[0].pts.map(|p| p.saturating_sub(PTS_BASE) < 9000),
        Some(true)
    );
    assert_eq!(
        r.id3.tags[1]
            .pts
            .map(|p| p - PTS_BASE)
            .map(|d| (360_000..369_000).contains(&d)),
        Some(true)
    );

    // The report serialises (headend's tests keep it as JSON).
    let json = serde_json::to_string(&r).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (back.packets, &back.pids, &back.id3.tags),
        (r.packets, &r.pids, &r.id3.tags)
    );
}

#[test]
fn report_is_the_same_for_any_chunking() {
    let bytes = clean(2.0);
    let whole = analyze(&bytes);
    let mut rng = crate::ts::parser::testkit::TestRng::new(3);
    let mut a = Analyzer::default();
    let mut at = 0;
    while at < bytes.len() {
        let n = (1 + rng.below(3000)).min(bytes.len() - at);
        a.push(&bytes[at..at + n], None);
        at += n;
    }
    a.finish();
    assert_eq!(a.report(), whole);
}

#[test]
fn error_list_is_capped_but_counts_are_exact() {
    // 200 packets on one PID, each skipping a CC value.
    let packets: Vec<_> = (0..200u32)
        .map(|i| raw_packet(0x200, false, (i * 2) as u8, &[1]))
        .collect();
    let config = AnalyzerConfig {
        max_stored_errors: 5,
        ..AnalyzerConfig::default()
    };
    let r = analyze_bytes(&crate::ts::parser::testkit::stream_bytes(&packets), config);
    assert_eq!(r.error_count(ErrorKind::ContinuityCountError), 199);
    assert_eq!(r.p1_error_count(), 199);
    assert_eq!(r.p1_errors.len(), 5);
    assert_eq!(r.p1_errors[0].packet_index, 1);
    assert_eq!(r.p1_errors[0].pid, Some(0x200));
    assert!(
        r.p1_errors[0].message.contains("1 packets lost"),
        "{}",
        r.p1_errors[0].message
    );
    assert_eq!(r.pid(0x200).unwrap().cc_errors, 199);
}
