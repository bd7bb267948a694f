//! Test items made with the FFmpeg libraries, checked with the ffprobe / ffmpeg CLIs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use headend_actors::encode::testcard::{
    generate_test_item, AudioCodec, AudioSpec, EncodeError, TestItemSpec, VideoCodec, VideoSpec,
};
use serde_json::Value;

const TRICKY: &str = "Rock: 'n' roll, 100% \\ live — Ünïcode";

fn video(codec: VideoCodec, width: u32, height: u32) -> VideoSpec {
    VideoSpec {
        codec,
        width,
        height,
        fps: 25,
        bitrate: 2_000_000,
        gop: 25,
    }
}

fn audio(codec: AudioCodec) -> AudioSpec {
    AudioSpec {
        codec,
        sample_rate: 48_000,
        channels: 2,
        bitrate: 192_000,
        tone_hz: 1_000,
    }
}

fn spec(secs: f64, video: Option<VideoSpec>, audio: Option<AudioSpec>) -> TestItemSpec {
    TestItemSpec {
        title: "Test Pattern".into(),
        artist: "headend".into(),
        duration: Duration::from_secs_f64(secs),
        video,
        audio,
    }
}

fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Streams (with counted frames), format and programs.
fn probe(path: &Path) -> Value {
    ffprobe(
        path,
        &[
            "-show_streams",
            "-show_format",
            "-show_programs",
            "-count_frames",
        ],
    )
}

fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {probe:#}"))
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Indexes of video key frames, and that only they are I frames.
fn key_frames(path: &Path) -> (Vec<usize>, usize) {
    let p = ffprobe(
        path,
        &[
            "-show_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pict_type",
        ],
    );
    let frames = p["frames"].as_array().unwrap();
    let keys: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f["key_frame"] == 1)
        .map(|(i, _)| i)
        .collect();
    let intra: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f["pict_type"] == "I")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keys, intra, "every I frame is a key frame and vice versa");
    (keys, frames.len())
}

fn assert_decodes_clean(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "decode errors");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn h264_aac_720p25() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("item.ts");
    let info = generate_test_item(
        &spec(
            2.0,
            Some(video(VideoCodec::H264, 1280, 720)),
            Some(audio(AudioCodec::Aac)),
        ),
        &out,
    )
    .unwrap();
    assert_eq!(info.video_frames, 50);
    assert_eq!(info.duration, Duration::from_secs(2));
    assert!(info.audio_frames >= 94, "{info:?}"); // 2 s / 1024 samples
    assert_eq!(info.bytes, std::fs::metadata(&out).unwrap().len());
    assert_eq!(files_in(dir.path()), ["item.ts"]);

    let p = probe(&out);
    let v = stream(&p, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(v["r_frame_rate"], "25/1");
    assert_eq!(v["nb_read_frames"], "50");
    let a = stream(&p, "audio");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["sample_rate"], "48000");
    assert_eq!(a["channels"], 2);
    for s in [v, a] {
        let d = num(&s["duration"]);
        assert!((d - 2.0).abs() <= 0.04, "{} duration {d}", s["codec_name"]);
    }
    let tags = &p["programs"][0]["tags"];
    assert_eq!(tags["service_name"], "Test Pattern");
    assert_eq!(tags["service_provider"], "headend");

    let (keys, n) = key_frames(&out);
    assert_eq!((keys, n), (vec![0, 25], 50));
    assert_decodes_clean(&out);
}

#[test]
fn mpeg2_mp2_576p25() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sd.ts");
    let mut v = video(VideoCodec::Mpeg2, 720, 576);
    v.bitrate = 4_000_000;
    let info = generate_test_item(&spec(2.0, Some(v), Some(audio(AudioCodec::Mp2))), &out).unwrap();
    assert_eq!(info.video_frames, 50);

    let p = probe(&out);
    let v = stream(&p, "video");
    assert_eq!(v["codec_name"], "mpeg2video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(720), Some(576))
    );
    assert_eq!(v["nb_read_frames"], "50");
    let a = stream(&p, "audio");
    assert_eq!(a["codec_name"], "mp2");
    for s in [v, a] {
        let d = num(&s["duration"]);
        assert!((d - 2.0).abs() <= 0.04, "{} duration {d}", s["codec_name"]);
    }
    assert_eq!(key_frames(&out), (vec![0, 25], 50));
    assert_decodes_clean(&out);
}

fn audio_only(codec: AudioCodec, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tone.ts");
    let info = generate_test_item(&spec(1.0, None, Some(audio(codec))), &out).unwrap();
    assert_eq!(
        (info.video_frames, info.duration),
        (0, Duration::from_secs(1))
    );
    let p = probe(&out);
    assert_eq!(p["streams"].as_array().unwrap().len(), 1);
    let a = stream(&p, "audio");
    assert_eq!(a["codec_name"], name);
    let d = num(&a["duration"]);
    assert!((d - 1.0).abs() <= 0.04, "duration {d}");
    assert_decodes_clean(&out);
}

#[test]
fn audio_only_mp2() {
    audio_only(AudioCodec::Mp2, "mp2");
}

#[test]
fn audio_only_aac() {
    audio_only(AudioCodec::Aac, "aac");
}

#[test]
fn h264_ac3_small() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ac3.ts");
    let mut v = video(VideoCodec::H264, 320, 180);
    v.bitrate = 500_000;
    let mut a = audio(AudioCodec::Ac3);
    a.bitrate = 384_000;
    a.channels = 6;
    generate_test_item(&spec(1.0, Some(v), Some(a)), &out).unwrap();
    let p = probe(&out);
    assert_eq!(stream(&p, "video")["codec_name"], "h264");
    let a = stream(&p, "audio");
    assert_eq!(a["codec_name"], "ac3");
    assert_eq!(a["channels"], 6);
    assert_decodes_clean(&out);
}

#[test]
fn tricky_title_and_path() {
    // Quotes, colons, commas, brackets, % and backslash in the text and in the directory
    // the drawtext text files are written to.
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("it's: [a], b; 100% \\ é");
    std::fs::create_dir(&sub).unwrap();
    let out = sub.join("tricky.ts");
    let mut s = spec(
        0.4,
        Some(video(VideoCodec::H264, 320, 180)),
        Some(audio(AudioCodec::Aac)),
    );
    s.title = TRICKY.into();
    s.artist = format!("{TRICKY}\nline two %{{pts}}");
    let info = generate_test_item(&s, &out).unwrap();
    assert_eq!(info.video_frames, 10);
    assert_eq!(files_in(&sub), ["tricky.ts"]);
    let p = probe(&out);
    assert_eq!(p["programs"][0]["tags"]["service_name"], TRICKY);
    assert_decodes_clean(&out);
}

#[test]
fn bad_specs_fail_clearly_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.ts");
    let v = || Some(video(VideoCodec::H264, 320, 180));
    let a = || Some(audio(AudioCodec::Aac));

    let err = generate_test_item(&spec(1.0, None, None), &out).unwrap_err();
    assert!(matches!(err, EncodeError::InvalidSpec(_)), "{err}");
    assert!(err.to_string().contains("neither video nor audio"), "{err}");

    let err = generate_test_item(&spec(0.0, v(), a()), &out).unwrap_err();
    assert!(err.to_string().contains("duration is zero"), "{err}");

    let mut odd = video(VideoCodec::H264, 321, 180);
    let err = generate_test_item(&spec(1.0, Some(odd.clone()), None), &out).unwrap_err();
    assert!(
        err.to_string().contains("321x180") && err.to_string().contains("even"),
        "{err}"
    );
    odd.width = 320;
    odd.gop = 0;
    assert!(generate_test_item(&spec(1.0, Some(odd), None), &out).is_err());

    // Encoder-level rejections come back named, after the temp file existed.
    let mut mono_ac3 = audio(AudioCodec::Mp2);
    mono_ac3.channels = 6;
    let err = generate_test_item(&spec(1.0, None, Some(mono_ac3)), &out).unwrap_err();
    assert!(
        matches!(err, EncodeError::Unsupported { codec: "mp2", .. }),
        "{err}"
    );
    let mut odd_rate = audio(AudioCodec::Mp2);
    odd_rate.bitrate = 123_456;
    let err = generate_test_item(&spec(1.0, None, Some(odd_rate)), &out).unwrap_err();
    assert!(
        matches!(err, EncodeError::EncoderOpen { codec: "mp2", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("123456 bit/s"), "{err}");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());

    // Unwritable output: a missing directory, and a "directory" that is a file.
    let err =
        generate_test_item(&spec(1.0, v(), a()), &dir.path().join("missing/x.ts")).unwrap_err();
    assert!(matches!(err, EncodeError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing/x.ts.tmp"), "{err}");
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = generate_test_item(&spec(1.0, v(), a()), &dir.path().join("file/x.ts")).unwrap_err();
    assert!(matches!(err, EncodeError::Io { .. }), "{err}");
    assert_eq!(files_in(dir.path()), ["file"]);
}

/// Manual: `HEADEND_TESTCARD_OUT=/tmp/item.ts cargo test -p headend-actors --release --test
/// testcard -- --ignored --nocapture` writes a 10 s 720p25 H.264/AAC item and prints the time.
#[test]
#[ignore]
fn sample_10s_720p_timed() {
    let out = std::env::var_os("HEADEND_TESTCARD_OUT").map_or_else(
        || std::env::temp_dir().join("headend-sample.ts"),
        Into::into,
    );
    let mut s = spec(
        10.0,
        Some(video(VideoCodec::H264, 1280, 720)),
        Some(audio(AudioCodec::Aac)),
    );
    s.video.as_mut().unwrap().bitrate = 5_000_000;
    s.title = TRICKY.into();
    s.artist = "The Test Card Band".into();
    let t = std::time::Instant::now();
    let info = generate_test_item(&s, &out).unwrap();
    println!("{info:?} in {:?}", t.elapsed());
}
