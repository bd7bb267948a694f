//! The analyzer against a stream made by the ffmpeg CLI: an independent muxer, so this
//! checks the parser and the TR 101 290 checks on a stream headend did not write, and
//! cross-checks the video PES count with ffprobe.
//!
//! What ffmpeg's `-muxrate` output is like (ffmpeg 5.1, Debian 12), and so what is
//! asserted:
//! - PAT and PMT every ~100 ms, SDT every ~500 ms ("Service01" by "FFmpeg"), no CAT,
//!   no EIT: priority 1 must be clean.
//! - PCRs on the video PID every ~20 ms, computed by ffmpeg from the byte position at the
//!   mux rate, so the measured rate is exactly 2 Mbit/s and the PCR accuracy error is
//!   (close to) zero. Older ffmpeg releases had PCR quirks with `-muxrate` (PCRs from
//!   the packet's DTS, gaps at the start); the PCR assertions below would catch such a
//!   regression rather than hide it.
//! - AAC audio is packed several frames per PES (~360 ms apart), within the 700 ms of
//!   2.5; H.264 with B-frames makes video PTS go backwards between PES packets, which
//!   the report counts but does not treat as an error.
//!
//! Skipped (with a message) when the ffmpeg CLI is not installed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use headend_actors::ts::analyzer::{analyze_file, Analyzer, ErrorKind, Report};

const MUX_RATE: f64 = 2_000_000.0;

fn tool_available(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn make_ts(out: &Path) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine"])
        .args([
            "-t", "3", "-c:v", "libx264", "-c:a", "aac", "-f", "mpegts", "-muxrate", "2000000",
        ])
        .arg(out)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg failed: {status}");
    Ok(())
}

/// Video packets as ffprobe counts them (one per PES in ffmpeg's muxing).
fn ffprobe_video_packets(path: &Path) -> anyhow::Result<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()?;
    anyhow::ensure!(out.status.success(), "ffprobe failed");
    // The stream is printed once per program and once on its own: take the first.
    let text = String::from_utf8(out.stdout)?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    Ok(first.parse()?)
}

fn describe(r: &Report) -> String {
    r.p1_errors
        .iter()
        .chain(&r.p2_errors)
        .map(|e| format!("{:?} {:?}: {}\n", e.kind, e.pid, e.message))
        .collect()
}

#[test]
fn ffmpeg_cbr_stream_parses_cleanly() -> anyhow::Result<()> {
    if !tool_available("ffmpeg") || !tool_available("ffprobe") {
        eprintln!("ffmpeg/ffprobe not installed: skipping");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out.ts");
    make_ts(&path)?;
    let r = analyze_file(&path)?;

    // Structure: PAT -> program 1 on PMT PID 0x1000 -> H.264 on 0x100 (PCR), AAC on 0x101.
    assert_eq!(r.reader.bytes_skipped, 0);
    assert_eq!(r.bytes, r.packets * 188);
    assert_eq!(r.pat_versions, vec![0]);
    assert_eq!(r.programs.len(), 1);
    let program = &r.programs[0];
    assert_eq!(
        (program.program_number, program.pmt_pid, program.pcr_pid),
        (1, 0x1000, Some(0x100))
    );
    assert_eq!(program.streams, vec![(0x100, 0x1B), (0x101, 0x0F)]);
    assert_eq!(r.sdt.services.len(), 1);
    assert_eq!(r.sdt.services[0].service_name, "Service01");
    assert_eq!(r.sdt.services[0].provider_name, "FFmpeg");

    // Priority 1 clean; tables well inside 0.5 s.
    assert_eq!(r.p1_error_count(), 0, "{}", describe(&r));
    assert!(r.max_pat_interval_ms.is_some_and(|ms| ms < 500.0));
    assert!(program.max_pmt_interval_ms.is_some_and(|ms| ms < 500.0));

    // Priority 2: also clean with this ffmpeg (see the module docs).
    assert_eq!(r.p2_error_count(), 0, "{}", describe(&r));
    assert_eq!(r.error_count(ErrorKind::PcrAccuracyError), 0);
    assert!(r.max_pcr_interval_ms.is_some_and(|ms| ms <= 40.0));
    assert!(r.max_pcr_accuracy_error_ns.is_some_and(|ns| ns < 500.0));

    // CBR at the requested mux rate, over the whole file and each second of it.
    let rate = r.bitrate.overall_bps.unwrap();
    assert!((rate - MUX_RATE).abs() < MUX_RATE * 1e-3, "{rate}");
    assert!(r.bitrate.windows >= 2);
    for w in [r.bitrate.window_min_bps, r.bitrate.window_max_bps] {
        assert!(
            w.is_some_and(|w| (w - MUX_RATE).abs() < MUX_RATE * 1e-3),
            "{w:?}"
        );
    }
    assert!(
        r.null_share > 0.5,
        "low-bitrate content in a 2 Mbit/s mux is mostly padding"
    );

    // Elementary streams: every video frame is one PES with a PTS, as ffprobe counts.
    let video = r.pid(0x100).unwrap();
    assert_eq!(video.stream_type, Some(0x1B));
    assert_eq!(video.pts_count, ffprobe_video_packets(&path)?);
    assert_eq!(video.pes_count, 75, "3 s at 25 fps");
    let audio = r.pid(0x101).unwrap();
    assert_eq!(audio.stream_type, Some(0x0F));
    assert!(audio.pts_count > 0);
    assert_eq!(audio.pts_backwards, 0);
    assert!(audio.max_pts_interval_ms.is_some_and(|ms| ms < 700.0));
    Ok(())
}

#[test]
fn ffmpeg_stream_as_paced_udp_datagrams() -> anyhow::Result<()> {
    if !tool_available("ffmpeg") {
        eprintln!("ffmpeg not installed: skipping");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out.ts");
    make_ts(&path)?;
    let bytes = std::fs::read(&path)?;
    // 7 packets per datagram, sent exactly at the mux rate.
    let per_datagram = Duration::from_secs_f64(7.0 * 188.0 * 8.0 / MUX_RATE);
    let mut a = Analyzer::default();
    for (k, datagram) in bytes.chunks(7 * 188).enumerate() {
        a.push(datagram, Some(per_datagram * k as u32));
    }
    a.finish();
    let r = a.report();
    assert_eq!(r, {
        let mut whole = analyze_file(&path)?;
        whole.arrival = r.arrival.clone();
        whole
    });
    let arrival = r.arrival.unwrap();
    // Perfect pacing: the RFC 4445 virtual buffer swings by one datagram (5.264 ms).
    let df = arrival.mdi_df_max_ms.unwrap();
    assert!((5.2..5.4).contains(&df), "{df}");
    assert_eq!(arrival.mdi_mlr_max, Some(0));
    Ok(())
}
