//! The item encoder (`encode::encode_item`) on real FFmpeg libraries: sources are made with
//! the ffmpeg CLI, page frames come from a feeder thread (synthetic pictures, no
//! Chromium), results are checked with ffprobe, ffmpeg's `ebur128`, the project's TS
//! analyzer and the playout's item probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use headend_actors::encode::{
    encode_item, max_item_rate, measure_audio, AudioCodec, AudioProfile, EncodeError,
    EncodeProfile, EncodedItem, ItemEncodeJob, LoudnessTarget, TsLayout, VideoCodec, VideoInput,
    VideoProfile,
};
use headend_actors::frame::{PageFrame, RgbaFrame};
use headend_actors::playout::probe::{probe, table_overhead};
use headend_actors::ts::analyzer::analyze_file;
use headend_actors::ts::MuxRate;
use serde_json::Value;
use tokio::sync::mpsc;

// ---------------------------------------------------------------- sources

/// Runs `tool` (ffmpeg or ffprobe) with `args` and `path` (if any); returns stdout and
/// stderr after checking it succeeded.
fn tool(tool: &str, args: &[&str], path: Option<&Path>) -> (Vec<u8>, String) {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    if let Some(p) = path {
        cmd.arg(p);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{tool} {args:?} {path:?}: {stderr}");
    (out.stdout, stderr)
}

fn ffmpeg(args: &[&str]) {
    let quiet = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    tool("ffmpeg", &[&quiet[..], args].concat(), None);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Source media made once per test binary.
struct Sources {
    _dir: tempfile::TempDir,
    /// 6 s stereo 48 kHz MP3 at about -35 LUFS.
    quiet_mp3: PathBuf,
    /// 5 s stereo 44.1 kHz FLAC at about -10 LUFS.
    loud_flac: PathBuf,
    /// 4 s stereo 48 kHz WAV at about -30 LUFS with clicks near 0 dBFS (needs the limiter).
    clicks_wav: PathBuf,
    /// 3 s 320x240 30 fps H.264 video (4:3) with AAC sound, in MP4.
    video_mp4: PathBuf,
    /// 640x480 PNG.
    cover_png: PathBuf,
}

fn sources() -> &'static Sources {
    static S: OnceLock<Sources> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let quiet_mp3 = d.join("quiet.mp3");
        ffmpeg(&[
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
            "-af", "volume=-16dB", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k", s(&quiet_mp3),
        ]);
        let loud_flac = d.join("loud.flac");
        ffmpeg(&[
            "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100:duration=5",
            "-af", "volume=8.5dB", "-ac", "2", "-c:a", "flac", s(&loud_flac),
        ]);
        let clicks_wav = d.join("clicks.wav");
        ffmpeg(&[
            "-f", "lavfi", "-i",
            "aevalsrc=0.02*sin(2*PI*440*t)+if(lt(mod(t\\,1)\\,0.0002)\\,0.9\\,0):s=48000:d=4:c=stereo",
            "-c:a", "pcm_s16le", s(&clicks_wav),
        ]);
        let video_mp4 = d.join("clip.mp4");
        ffmpeg(&[
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=3",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            s(&video_mp4),
        ]);
        let cover_png = d.join("cover.png");
        ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=640x480:rate=1", "-frames:v", "1", s(&cover_png)]);
        Sources { _dir: dir, quiet_mp3, loud_flac, clicks_wav, video_mp4, cover_png }
    })
}

// ---------------------------------------------------------------- profiles

fn audio(codec: AudioCodec, bitrate: u64) -> AudioProfile {
    AudioProfile {
        codec,
        sample_rate: 48_000,
        channels: 2,
        bitrate,
    }
}

fn hd_profile() -> EncodeProfile {
    EncodeProfile {
        video: Some(VideoProfile::new(
            VideoCodec::H264,
            1280,
            720,
            25,
            2_500_000,
        )),
        audio: audio(AudioCodec::Aac, 128_000),
        loudness: Some(LoudnessTarget::AtscA85),
        ts: TsLayout::default(),
    }
}

fn sd_profile() -> EncodeProfile {
    let mut v = VideoProfile::new(VideoCodec::Mpeg2, 720, 576, 25, 3_000_000);
    v.gop = 12;
    EncodeProfile {
        video: Some(v),
        audio: audio(AudioCodec::Mp2, 192_000),
        loudness: Some(LoudnessTarget::EbuR128),
        ts: TsLayout {
            service_name: "SD Test".into(),
            ..TsLayout::default()
        },
    }
}

fn small_profile() -> EncodeProfile {
    EncodeProfile {
        video: Some(VideoProfile::new(VideoCodec::H264, 640, 360, 25, 1_000_000)),
        ..hd_profile()
    }
}

// ---------------------------------------------------------------- page frames

/// A page picture: dark background, a bright bar whose position depends on `n`.
fn page(w: u32, h: u32, n: u64) -> RgbaFrame {
    let mut f = RgbaFrame::filled(w, h, [20, 30, 60, 255]);
    let bar_w = w / 8;
    let x0 = (n as u32 * bar_w / 2) % (w - bar_w);
    for y in h / 3..h / 3 + h / 6 {
        let row = (y * w) as usize * 4;
        for x in x0..x0 + bar_w {
            f.data[row + x as usize * 4..row + x as usize * 4 + 4]
                .copy_from_slice(&[240, 200, 40, 255]);
        }
    }
    f
}

/// How the feeder behaves.
#[derive(Clone, Copy)]
enum Feed {
    /// A new picture once a second, `Repeat` otherwise.
    OncePerSecond { fps: u64 },
    /// Stop after this many frames (the renderer died).
    StopAfter(u64),
    /// Frame 0 is a `Repeat`.
    RepeatFirst,
    /// All frames of this size.
    Size(u32, u32),
}

/// Feeds `frames` page frames from a thread, as the renderer does.
fn feed(
    w: u32,
    h: u32,
    frames: u64,
    how: Feed,
) -> (mpsc::Receiver<PageFrame>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(8);
    let t = std::thread::spawn(move || {
        let mut last = None;
        for i in 0..frames {
            let msg = match how {
                Feed::StopAfter(n) if i >= n => return,
                Feed::RepeatFirst if i == 0 => PageFrame::Repeat,
                Feed::Size(fw, fh) => {
                    PageFrame::New(Arc::new(RgbaFrame::filled(fw, fh, [0, 0, 0, 255])))
                }
                Feed::OncePerSecond { fps } if i % fps != 0 => PageFrame::Repeat,
                Feed::OncePerSecond { fps } => {
                    let f = Arc::new(page(w, h, i / fps));
                    last = Some(f.clone());
                    PageFrame::New(f)
                }
                _ => PageFrame::New(last.clone().unwrap_or_else(|| Arc::new(page(w, h, 0)))),
            };
            if tx.blocking_send(msg).is_err() {
                return; // the encoder stopped
            }
        }
    });
    (rx, t)
}

fn frames_job(
    profile: EncodeProfile,
    media: &Path,
    out: &Path,
    how: Feed,
) -> (ItemEncodeJob, std::thread::JoinHandle<()>) {
    let v = profile.video.clone().unwrap();
    let m = measure_audio(media, &profile.audio).unwrap();
    let frames = m.video_frames(v.fps);
    let (rx, feeder) = feed(v.width, v.height, frames, how);
    let job = ItemEncodeJob::new(
        profile,
        media.to_path_buf(),
        VideoInput::Frames { rx, frames },
        out.to_path_buf(),
        Some(out.with_extension("png")),
        "Song: 'Title' 100%",
        "Artist",
    )
    .with_measure(m);
    (job, feeder)
}

fn run(job: ItemEncodeJob) -> Result<EncodedItem, EncodeError> {
    encode_item(job, &mut |_| {}, &AtomicBool::new(false))
}

// ---------------------------------------------------------------- checks

fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let json = ["-v", "error", "-of", "json"];
    serde_json::from_slice(&tool("ffprobe", &[&json[..], args].concat(), Some(path)).0).unwrap()
}

fn stream<'a>(p: &'a Value, kind: &str) -> Option<&'a Value> {
    p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// A PID as ffprobe prints it ("0x100").
fn pid(v: &Value) -> u16 {
    u16::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Duration of a source's sound: each was made with an exact duration.
fn source_seconds(path: &Path) -> f64 {
    let s = sources();
    [
        (&s.quiet_mp3, 6.0),
        (&s.loud_flac, 5.0),
        (&s.clicks_wav, 4.0),
        (&s.video_mp4, 3.0),
    ]
    .into_iter()
    .find(|(p, _)| p.as_path() == path)
    .map(|(_, d)| d)
    .unwrap_or_else(|| panic!("not a source: {}", path.display()))
}

/// Integrated loudness (LUFS) and true peak (dBTP) as the ffmpeg CLI measures them.
fn loudness(path: &Path) -> (f64, f64) {
    let input = path.to_str().unwrap();
    let args = [
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-i",
        input,
        "-map",
        "0:a:0",
    ];
    let (_, text) = tool(
        "ffmpeg",
        &[&args[..], &["-af", "ebur128=peak=true", "-f", "null", "-"]].concat(),
        None,
    );
    let summary = &text[text.rfind("Summary:").expect("ebur128 summary")..];
    let value = |label: &str| -> f64 {
        let at = summary
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {summary}"))
            + label.len();
        summary[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (value("I:"), value("Peak:"))
}

/// Video frame flags in decode order: (key, picture type).
fn video_frames(path: &Path) -> Vec<(bool, String)> {
    let p = ffprobe(
        path,
        &[
            "-select_streams",
            "v",
            "-show_frames",
            "-show_entries",
            "frame=key_frame,pict_type",
        ],
    );
    p["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key_frame"] == 1,
                f["pict_type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Seconds from the first packet's pts to the end of the last packet of a stream kind
/// ("v" or "a"). (ffprobe's stream duration of a constant-rate TS is an estimate.)
fn span(path: &Path, kind: &str) -> f64 {
    let p = ffprobe(
        path,
        &[
            "-select_streams",
            kind,
            "-show_entries",
            "packet=pts_time,duration_time",
            "-show_packets",
        ],
    );
    let packets = p["packets"].as_array().unwrap();
    let first = packets
        .iter()
        .map(|p| num(&p["pts_time"]))
        .fold(f64::MAX, f64::min);
    let end = packets
        .iter()
        .map(|p| num(&p["pts_time"]) + num(&p["duration_time"]))
        .fold(f64::MIN, f64::max);
    end - first
}

fn assert_ts_clean(path: &Path) {
    let r = analyze_file(path).unwrap();
    let errors: Vec<String> = r
        .p1_errors
        .iter()
        .chain(&r.p2_errors)
        .take(10)
        .map(|e| format!("{:?} {:?}: {}", e.kind, e.pid, e.message))
        .collect();
    assert!(
        r.is_clean(),
        "{}: TR 101 290 errors {:?}: {errors:#?}",
        path.display(),
        r.error_counts
    );
}

/// The playout accepts the item at a channel whose capacity after its own tables is
/// `max_item_rate` of the profile (plus 1 %).
fn assert_playout_accepts(path: &Path, profile: &EncodeProfile) {
    let need = max_item_rate(profile) as f64;
    let mut rate = need * 1.01;
    for _ in 0..4 {
        rate = need * 1.01 / (1.0 - table_overhead(MuxRate::new(rate as u64)));
    }
    let facts = probe(path, MuxRate::new(rate as u64))
        .unwrap_or_else(|e| panic!("playout refuses {} at {rate:.0} bit/s: {e}", path.display()));
    assert!(facts.added_delay_90k < 90_000, "{facts:?}");
}

/// Checks shared by the items with pictures.
fn check_av_item(
    item: &EncodedItem,
    source: &Path,
    profile: &EncodeProfile,
    vcodec: &str,
    acodec: &str,
) {
    let v = profile.video.as_ref().unwrap();
    let src = source_seconds(source);
    let frame = 1.0 / f64::from(v.fps);
    assert!(
        (item.duration.as_secs_f64() - src).abs() <= frame,
        "{item:?} vs source {src}"
    );
    assert_eq!(item.video_frames, (src * f64::from(v.fps)).round() as u64);

    let p = ffprobe(
        &item.path,
        &["-show_streams", "-show_programs", "-count_frames"],
    );
    let vs = stream(&p, "video").unwrap();
    assert_eq!(vs["codec_name"], vcodec);
    assert_eq!(
        (vs["width"].as_u64(), vs["height"].as_u64()),
        (Some(u64::from(v.width)), Some(u64::from(v.height)))
    );
    assert_eq!(vs["r_frame_rate"], format!("{}/1", v.fps));
    assert_eq!(vs["pix_fmt"], "yuv420p");
    assert_eq!(num(&vs["nb_read_frames"]) as u64, item.video_frames);
    let want_matrix = if v.height > 576 { "bt709" } else { "bt470bg" };
    assert_eq!(vs["color_space"], want_matrix, "{vs:#}");
    let as_ = stream(&p, "audio").unwrap();
    assert_eq!(as_["codec_name"], acodec);
    assert_eq!(as_["sample_rate"], "48000");
    assert_eq!(as_["channels"], 2);
    for kind in ["v", "a"] {
        let d = span(&item.path, kind);
        assert!(
            (d - src).abs() <= frame + 1e-3,
            "{kind} lasts {d} s, the source {src} s"
        );
    }
    // PIDs and service as far as the muxer's options reach.
    assert_eq!(pid(&vs["id"]), profile.ts.video_pid, "{vs:#}");
    let prog = &p["programs"][0];
    assert_eq!(
        prog["program_id"].as_u64(),
        Some(u64::from(profile.ts.service_id))
    );
    assert_eq!(
        prog["pmt_pid"].as_u64(),
        Some(u64::from(profile.ts.pmt_pid))
    );
    assert_eq!(
        prog["tags"]["service_name"],
        profile.ts.service_name.as_str()
    );

    // Closed GOPs: a key frame (I) exactly every `gop` frames, starting with the first.
    let frames = video_frames(&item.path);
    assert_eq!(frames.len() as u64, item.video_frames);
    let keys: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.0)
        .map(|(i, _)| i)
        .collect();
    let want: Vec<usize> = (0..frames.len()).step_by(v.gop as usize).collect();
    assert_eq!(keys, want);
    assert!(frames.iter().filter(|f| f.0).all(|f| f.1 == "I"));

    assert_ts_clean(&item.path);
    assert_playout_accepts(&item.path, profile);
}

fn assert_loudness(path: &Path, target: f64) {
    let (i, tp) = loudness(path);
    assert!(
        (i - target).abs() <= 1.0,
        "{}: integrated {i} LUFS, target {target}",
        path.display()
    );
    assert!(tp <= -1.0 + 0.5, "{}: true peak {tp} dBTP", path.display());
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- tests

#[test]
fn measure_reports_exact_length_and_loudness() {
    let src = sources();
    let a = audio(AudioCodec::Aac, 128_000);
    // 44.1 kHz flac resampled to 48 kHz: 5 s = 240000 samples.
    let m = measure_audio(&src.loud_flac, &a).unwrap();
    assert_eq!((m.samples, m.sample_rate), (240_000, 48_000));
    assert_eq!(m.duration, Duration::from_secs(5));
    assert_eq!(m.video_frames(25), 125);
    let (cli_i, cli_tp) = loudness(&src.loud_flac);
    assert!(
        (m.integrated_lufs - cli_i).abs() < 0.3,
        "{m:?} vs ffmpeg {cli_i}"
    );
    assert!(
        (m.true_peak_dbtp - cli_tp).abs() < 0.3,
        "{m:?} vs ffmpeg {cli_tp}"
    );
    assert!(m.integrated_lufs > -14.0, "{m:?}");

    let q = measure_audio(&src.quiet_mp3, &a).unwrap();
    assert!((q.duration.as_secs_f64() - 6.0).abs() < 0.03, "{q:?}");
    assert!(q.integrated_lufs < -32.0, "{q:?}");
}

#[test]
fn h264_aac_720p_from_page_frames_at_atsc_a85() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("song.ts");
    let profile = hd_profile();
    let (job, feeder) = frames_job(
        profile.clone(),
        &src.quiet_mp3,
        &out,
        Feed::OncePerSecond { fps: 25 },
    );
    let mut seen = Vec::new();
    let item = encode_item(job, &mut |p| seen.push(p), &AtomicBool::new(false)).unwrap();
    feeder.join().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&1.0),
        "{seen:?}"
    );
    assert!(item.gain_db > 8.0 && !item.limited, "{item:?}");
    check_av_item(&item, &src.quiet_mp3, &profile, "h264", "aac");
    assert_loudness(&out, -24.0);

    // The thumbnail: a PNG 320 pixels wide with the picture's aspect.
    let thumb = item.thumbnail.clone().unwrap();
    let p = ffprobe(&thumb, &["-show_streams"]);
    assert_eq!(p["streams"][0]["codec_name"], "png");
    assert_eq!(
        (
            p["streams"][0]["width"].as_u64(),
            p["streams"][0]["height"].as_u64()
        ),
        (Some(320), Some(180))
    );
    assert_eq!(files_in(dir.path()), ["song.png", "song.ts"]);
}

#[test]
fn mpeg2_mp2_576_at_ebu_r128() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sd.ts");
    let profile = sd_profile();
    let (job, feeder) = frames_job(
        profile.clone(),
        &src.loud_flac,
        &out,
        Feed::OncePerSecond { fps: 25 },
    );
    let item = run(job).unwrap();
    feeder.join().unwrap();
    assert!(item.gain_db < -10.0, "{item:?}");
    check_av_item(&item, &src.loud_flac, &profile, "mpeg2video", "mp2");
    assert_loudness(&out, -23.0);
}

#[test]
fn ac3_audio_only_with_the_limiter() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("radio.ts");
    let profile = EncodeProfile {
        video: None,
        audio: audio(AudioCodec::Ac3, 192_000),
        ..hd_profile()
    };
    let job = ItemEncodeJob::new(
        profile.clone(),
        src.clicks_wav.clone(),
        VideoInput::None,
        out.clone(),
        Some(dir.path().join("radio.png")),
        "Radio",
        "",
    );
    let item = run(job).unwrap();
    assert!(item.limited && item.gain_db > 4.0, "{item:?}");
    assert_eq!((item.video_frames, item.thumbnail.clone()), (0, None));
    assert!((item.duration.as_secs_f64() - 4.0).abs() < 1e-6, "{item:?}");

    let p = ffprobe(&out, &["-show_streams"]);
    assert!(stream(&p, "video").is_none());
    let a = stream(&p, "audio").unwrap();
    assert_eq!(a["codec_name"], "ac3");
    assert_eq!(pid(&a["id"]), profile.ts.audio_pid);
    assert!((span(&out, "a") - 4.0).abs() <= 0.04);
    assert_loudness(&out, -24.0);
    assert_ts_clean(&out);
    assert_playout_accepts(&out, &profile);
    assert_eq!(files_in(dir.path()), ["radio.ts"]);
}

#[test]
fn video_is_transcoded_to_the_profile_with_an_overlay() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile();
    let v = profile.video.clone().unwrap();

    // Plain transcode: 320x240 30 fps 4:3 into 640x360 25 fps, pillarboxed.
    let plain = dir.path().join("plain.ts");
    let job = ItemEncodeJob::new(
        profile.clone(),
        src.video_mp4.clone(),
        VideoInput::Transcode {
            path: src.video_mp4.clone(),
            overlay: None,
        },
        plain.clone(),
        None,
        "Clip",
        "",
    );
    let item = run(job).unwrap();
    check_av_item(&item, &src.video_mp4, &profile, "h264", "aac");
    let left_bar = pixel(&plain, 10, 0, 180);
    assert!(
        left_bar.iter().all(|&c| c < 30),
        "pillarbox is black: {left_bar:?}"
    );

    // With a page overlay: an opaque red box on a transparent page.
    let over = dir.path().join("overlay.ts");
    let frames = measure_audio(&src.video_mp4, &profile.audio)
        .unwrap()
        .video_frames(v.fps);
    let (tx, rx) = mpsc::channel(8);
    let feeder = std::thread::spawn(move || {
        let mut f = RgbaFrame::filled(640, 360, [0, 0, 0, 0]);
        for y in 20..120 {
            for x in 20..220 {
                let i = (y * 640 + x) * 4;
                f.data[i..i + 4].copy_from_slice(&[230, 20, 20, 255]);
            }
        }
        let f = Arc::new(f);
        for i in 0..frames {
            let m = if i == 0 {
                PageFrame::New(f.clone())
            } else {
                PageFrame::Repeat
            };
            if tx.blocking_send(m).is_err() {
                return;
            }
        }
    });
    let job = ItemEncodeJob::new(
        profile.clone(),
        src.video_mp4.clone(),
        VideoInput::Transcode {
            path: src.video_mp4.clone(),
            overlay: Some(rx),
        },
        over.clone(),
        None,
        "Clip",
        "",
    );
    let item = run(job).unwrap();
    feeder.join().unwrap();
    check_av_item(&item, &src.video_mp4, &profile, "h264", "aac");
    let red = pixel(&over, 10, 100, 60);
    assert!(
        red[0] > 180 && red[1] < 70 && red[2] < 70,
        "overlay box is red: {red:?}"
    );
    let outside = pixel(&over, 10, 400, 250);
    assert_eq!(
        outside,
        pixel(&plain, 10, 400, 250),
        "outside the box the video shows"
    );
}

/// RGB of pixel (x, y) of frame `n` of `path`.
fn pixel(path: &Path, n: u32, x: usize, y: usize) -> [u8; 3] {
    let select = format!("select=eq(n\\,{n})");
    let args = [
        "-nostdin",
        "-v",
        "error",
        "-i",
        path.to_str().unwrap(),
        "-vf",
        &select,
    ];
    let raw = ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"];
    let (stdout, _) = tool("ffmpeg", &[&args[..], &raw[..]].concat(), None);
    let p = ffprobe(path, &["-show_streams", "-select_streams", "v:0"]);
    let w = p["streams"][0]["width"].as_u64().unwrap() as usize;
    let i = (y * w + x) * 3;
    [stdout[i], stdout[i + 1], stdout[i + 2]]
}

#[test]
fn still_image_item_and_giant_images_refused() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile();
    let out = dir.path().join("still.ts");
    let job = ItemEncodeJob::new(
        profile.clone(),
        src.quiet_mp3.clone(),
        VideoInput::Still(src.cover_png.clone()),
        out.clone(),
        Some(dir.path().join("still.png")),
        "Cover",
        "",
    );
    let item = run(job).unwrap();
    check_av_item(&item, &src.quiet_mp3, &profile, "h264", "aac");
    assert!(item.thumbnail.is_some());

    let wide = dir.path().join("wide.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=size=9000x16",
        "-frames:v",
        "1",
        s(&wide),
    ]);
    let heavy = dir.path().join("heavy.png");
    let f = std::fs::File::create(&heavy).unwrap();
    f.set_len(51 * 1024 * 1024).unwrap();
    for (img, says) in [(&wide, "9000x16"), (&heavy, "bytes")] {
        let job = ItemEncodeJob::new(
            profile.clone(),
            src.quiet_mp3.clone(),
            VideoInput::Still(img.clone()),
            dir.path().join("x.ts"),
            None,
            "",
            "",
        );
        let e = run(job).unwrap_err();
        assert_eq!(e.kind(), "image_too_large", "{e}");
        assert!(
            e.to_string().contains(says) && e.to_string().contains(s(img)),
            "{e}"
        );
    }
    assert!(!dir.path().join("x.ts").exists() && !dir.path().join("x.ts.tmp").exists());
}

#[test]
fn repeated_page_frames_encode_fast() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("static.ts");
    let (job, feeder) = frames_job(
        hd_profile(),
        &src.quiet_mp3,
        &out,
        Feed::OncePerSecond { fps: 1_000_000 },
    );
    let t = Instant::now();
    let item = run(job).unwrap();
    let took = t.elapsed();
    feeder.join().unwrap();
    assert_eq!(item.video_frames, 150);
    // One picture held for 6 s of 720p25: all frames after the first are cheap to encode.
    assert!(
        took < Duration::from_secs(6),
        "6 s of static 720p took {took:?}"
    );
    // The constant-rate item is mostly null packets: the held picture costs next to nothing.
    let report = analyze_file(&out).unwrap();
    assert!(report.null_share > 0.6, "null share {}", report.null_share);
}

#[test]
fn bad_media_is_refused_with_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let garbage = d.join("garbage.mp3");
    std::fs::write(
        &garbage,
        (0..20_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let empty = d.join("empty.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=stereo",
        "-t",
        "0",
        s(&empty),
    ]);
    let silent_video = d.join("novideo.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=25:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        s(&silent_video),
    ]);
    // A WAV whose format tag (0x7777) no decoder knows.
    let unknown = d.join("unknown.wav");
    let mut wav = Vec::new();
    let data = vec![0u8; 48_000];
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&0x7777u16.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&48_000u32.to_le_bytes());
    wav.extend_from_slice(&192_000u32.to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(&unknown, wav).unwrap();
    // A FLAC with its frames overwritten by noise after the header.
    let src = sources();
    let damaged = d.join("damaged.flac");
    let mut bytes = std::fs::read(&src.loud_flac).unwrap();
    let len = bytes.len();
    for (i, b) in bytes[len / 10..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2654435761).rotate_left(7) as u8;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let missing = d.join("missing.mp3");

    let a = audio(AudioCodec::Aac, 128_000);
    let cases: [(&PathBuf, &str, &str); 6] = [
        (&garbage, "media_open", "complete audio/video file"),
        (&empty, "empty_audio", "zero length"),
        (&silent_video, "no_stream", "no audio stream"),
        (&unknown, "unsupported_codec", "cannot decode"),
        (&damaged, "corrupt_media", "intact copy"),
        (&missing, "io", "No such file"),
    ];
    for (path, kind, says) in cases {
        let e = measure_audio(path, &a).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind(), kind, "{}: {msg}", path.display());
        assert!(msg.contains(s(path)) && msg.contains(says), "{msg}");
        // encode_item says the same, and leaves nothing behind.
        let out = d.join("out.ts");
        let job = ItemEncodeJob::new(
            EncodeProfile {
                video: None,
                ..hd_profile()
            },
            path.to_path_buf(),
            VideoInput::None,
            out.clone(),
            None,
            "",
            "",
        );
        assert_eq!(run(job).unwrap_err().kind(), kind);
        assert!(!out.exists() && !d.join("out.ts.tmp").exists());
    }
}

#[test]
fn bad_page_frames_are_refused() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.ts");
    let profile = small_profile();
    let cases = [
        (Feed::Size(320, 180), "frame_size", "640x360"),
        (Feed::StopAfter(10), "frames_ended", "after 10 of 150"),
        (Feed::RepeatFirst, "first_frame_repeat", "New"),
    ];
    for (how, kind, says) in cases {
        let (job, feeder) = frames_job(profile.clone(), &src.quiet_mp3, &out, how);
        let e = run(job).unwrap_err();
        feeder.join().unwrap();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.is_input_error());
    }
    // A frame count that does not match the sound.
    let (rx, _feeder) = feed(640, 360, 0, Feed::OncePerSecond { fps: 25 });
    let job = ItemEncodeJob::new(
        profile,
        src.quiet_mp3.clone(),
        VideoInput::Frames { rx, frames: 149 },
        out.clone(),
        None,
        "",
        "",
    );
    let e = run(job).unwrap_err();
    assert!(
        e.to_string().contains("149 page frames announced") && e.to_string().contains("150 frames"),
        "{e}"
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn failed_or_cancelled_jobs_leave_the_previous_output() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("item.ts");
    let thumb = dir.path().join("item.png");
    std::fs::write(&out, b"previous item").unwrap();
    std::fs::write(&thumb, b"previous thumbnail").unwrap();
    let profile = small_profile();

    // The renderer dies half way.
    let (job, feeder) = frames_job(profile.clone(), &src.quiet_mp3, &out, Feed::StopAfter(75));
    assert_eq!(run(job).unwrap_err().kind(), "frames_ended");
    feeder.join().unwrap();

    // Cancelled from the progress callback at 30 %.
    let (job, feeder) = frames_job(
        profile.clone(),
        &src.quiet_mp3,
        &out,
        Feed::OncePerSecond { fps: 25 },
    );
    let cancel = AtomicBool::new(false);
    let e = encode_item(
        job,
        &mut |p| {
            if p >= 0.3 {
                cancel.store(true, Ordering::Relaxed)
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(e, EncodeError::Cancelled), "{e}");
    feeder.join().unwrap();

    assert_eq!(std::fs::read(&out).unwrap(), b"previous item");
    assert_eq!(std::fs::read(&thumb).unwrap(), b"previous thumbnail");
    assert_eq!(files_in(dir.path()), ["item.png", "item.ts"]);

    // An output directory that does not exist: an I/O error naming the path.
    let job = ItemEncodeJob::new(
        EncodeProfile {
            video: None,
            ..profile
        },
        src.quiet_mp3.clone(),
        VideoInput::None,
        dir.path().join("missing/x.ts"),
        None,
        "",
        "",
    );
    let e = run(job).unwrap_err();
    assert_eq!(e.kind(), "io");
    assert!(e.to_string().contains("missing/x.ts.tmp"), "{e}");
}

#[test]
fn invalid_profiles_are_refused_before_any_work() {
    let src = sources();
    let dir = tempfile::tempdir().unwrap();
    let mut odd = small_profile();
    odd.video.as_mut().unwrap().width = 641;
    let mut no_pid = hd_profile();
    no_pid.ts.pmt_pid = 0x1FFF;
    for (p, says) in [(odd, "641x360"), (no_pid, "pmt_pid")] {
        let job = ItemEncodeJob::new(
            p,
            src.quiet_mp3.clone(),
            VideoInput::None,
            dir.path().join("x.ts"),
            None,
            "",
            "",
        );
        let e = run(job).unwrap_err();
        assert_eq!(e.kind(), "invalid_settings");
        assert!(e.to_string().contains(says), "{e}");
    }
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

/// Measurement: a 4-minute 48 kHz stereo song to 720p25 H.264/AAC, pictures changing once
/// a second, then with every frame different. Run with
/// `cargo test -p headend-actors --release --test encode -- --ignored --nocapture song_4min`
/// (`HEADEND_X264_PRESET` / `HEADEND_X264_TUNE` try other x264 settings).
#[test]
#[ignore]
fn song_4min_720p25_speed() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("song.mp3");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=330:sample_rate=48000:duration=240",
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:sample_rate=48000:duration=240:amplitude=0.1",
        "-filter_complex",
        "amix=inputs=2",
        "-ac",
        "2",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "192k",
        s(&song),
    ]);
    for (name, every) in [
        ("page changes once a second", 25u64),
        ("every frame different", 1),
    ] {
        let out = dir.path().join("song.ts");
        let mut profile = hd_profile();
        let v = profile.video.as_mut().unwrap();
        if let Ok(p) = std::env::var("HEADEND_X264_PRESET") {
            v.preset = p;
        }
        v.tune = std::env::var("HEADEND_X264_TUNE").ok();
        println!("x264 preset {} tune {:?}", v.preset, v.tune);
        let t = Instant::now();
        let m = measure_audio(&song, &profile.audio).unwrap();
        let measured_in = t.elapsed();
        let frames = m.video_frames(25);
        let (tx, rx) = mpsc::channel(8);
        let feeder = std::thread::spawn(move || {
            let base = page(1280, 720, 0);
            for i in 0..frames {
                let msg = if i % every == 0 {
                    let mut f = base.clone();
                    let row = ((i / every) % 700) as usize * 1280 * 4;
                    f.data[row..row + 1280 * 4 * 20].fill(255);
                    PageFrame::New(Arc::new(f))
                } else {
                    PageFrame::Repeat
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
            }
        });
        let job = ItemEncodeJob::new(
            profile,
            song.clone(),
            VideoInput::Frames { rx, frames },
            out.clone(),
            Some(dir.path().join("song.png")),
            "Song",
            "Artist",
        )
        .with_measure(m);
        let item = run(job).unwrap();
        feeder.join().unwrap();
        let total = t.elapsed();
        let hwm = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or_default()
            .to_string();
        println!(
            "{name}: {frames} frames, {:.1} s of sound: measure {:.1} s, total {:.1} s = {:.1}x realtime; {} bytes ({:.0} kbit/s); {hwm}",
            item.duration.as_secs_f64(),
            measured_in.as_secs_f64(),
            total.as_secs_f64(),
            item.duration.as_secs_f64() / total.as_secs_f64(),
            item.bytes,
            item.bytes as f64 * 8.0 / item.duration.as_secs_f64() / 1000.0,
        );
    }
}
