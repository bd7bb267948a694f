//! `encode_item`: measure (unless given), then encode pictures and normalised sound into a
//! TS item. The sound is decoded, normalised and encoded on a second thread while this
//! thread takes the pictures, encodes them and muxes both in time order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Duration;

use ffmpeg::{frame, picture, Packet};
use ffmpeg_next as ffmpeg;

use super::atomic::AtomicOutput;
use super::audio::measure::measure_with_cancel;
use super::audio::normalise::{AudioLane, Gain};
use super::audio_encoder::open_audio_encoder;
use super::mux::{Muxer, Track, TsOptions};
use super::video::blend::Overlay;
use super::video::pages::{PageFrames, RgbaConverter};
use super::video::thumbnail::write_thumbnail;
use super::video::transcode::{Target, Transcoder};
use super::video::Pictures;
use super::video_encoder::{open_video_encoder, VideoEncoder};
use super::{
    clean_text, init_ffmpeg, max_item_rate, EncodeError, EncodeProfile, EncodedItem, ItemEncodeJob,
    VideoInput, VideoProfile,
};

/// Encoded audio packets buffered between the audio thread and the muxer.
const AUDIO_QUEUE: usize = 64;
/// Seconds into the item the thumbnail is taken from (or the middle of a shorter item).
const THUMBNAIL_AT_S: u64 = 2;

/// Encode `job` into its TS item (and thumbnail). Blocking: run it on a blocking thread.
///
/// `progress` gets the fraction done (0..=1) now and then; `cancel` is checked for every
/// frame (and while page frames are awaited, when the renderer stops sending). On any
/// error, including [`EncodeError::Cancelled`], the temporary files are removed and an
/// existing output is left as it was.
pub fn encode_item(
    job: ItemEncodeJob,
    progress: &mut dyn FnMut(f32),
    cancel: &AtomicBool,
) -> Result<EncodedItem, EncodeError> {
    let profile = &job.profile;
    profile.validate()?;
    init_ffmpeg()?;
    let cancelled = || cancel.load(Ordering::Relaxed);
    let measured = match job.measure {
        Some(m) if m.sample_rate == profile.audio.sample_rate => m,
        _ => measure_with_cancel(&job.media, &profile.audio, cancel)?,
    };
    if cancelled() {
        return Err(EncodeError::Cancelled);
    }
    progress(0.0);
    let gain = Gain::plan(
        &job.media,
        &profile.audio,
        &measured,
        profile.loudness,
        cancel,
    )?;
    let frames = match &profile.video {
        Some(v) => measured.video_frames(v.fps),
        None => 0,
    };
    check_video_input(&job, frames)?;
    let title = clean_text(&job.title);
    let artist = clean_text(&job.artist);

    let mut pictures = match (&profile.video, job.video) {
        (Some(v), input) => Some(open_pictures(v, input, frames)?),
        (None, _) => None,
    };

    let output = AtomicOutput::create(&job.out)?;
    let ts = TsOptions {
        pmt_pid: Some(profile.ts.pmt_pid),
        start_pid: Some(match profile.video {
            Some(_) => profile.ts.video_pid,
            None => profile.ts.audio_pid,
        }),
        service_id: Some(profile.ts.service_id),
        service_name: clean_text(&profile.ts.service_name),
        provider: clean_text(&profile.ts.provider),
        title: title.clone(),
        artist: artist.clone(),
        mux_rate: Some(max_item_rate(profile)),
        max_delay: Some(send_ahead(profile)),
    };
    let mut mux = Muxer::open(output.tmp_path(), &ts)?;
    let mut video = match &profile.video {
        Some(v) => Some(open_video_encoder(&mut mux, v, &title, &artist)?),
        None => None,
    };
    let audio_enc = open_audio_encoder(&mut mux, &profile.audio, &title, &artist)?;
    let t = &audio_enc.track;
    let mut audio_track = Track::new(t.codec, t.stream, t.enc_tb);
    {
        let mut tracks: Vec<&mut Track> = vec![&mut audio_track];
        if let Some(v) = video.as_mut() {
            tracks.push(&mut v.track);
        }
        mux.write_header(&mut tracks)?;
    }
    let lane = AudioLane::new(&job.media, &profile.audio, &measured, gain, audio_enc)?;

    let want_thumbnail = job.thumbnail.is_some() && profile.video.is_some();
    let fps = profile.video.as_ref().map_or(1, |v| v.fps);
    let mut muxing = Muxing {
        mux: &mut mux,
        audio_track: &mut audio_track,
        pending: None,
        rate: u64::from(profile.audio.sample_rate),
        total_samples: measured.samples,
        progress,
        reported: -1,
        audio_progress: profile.video.is_none(),
    };
    let thumb = std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Packet>(AUDIO_QUEUE);
        let audio = s.spawn(move || lane.run(cancel, |p| tx.send(p).is_ok()));
        let muxed = (|| {
            let mut thumb = None;
            if let (Some(v), Some(pictures)) = (video.as_mut(), pictures.as_mut()) {
                let thumb_at = (THUMBNAIL_AT_S * u64::from(fps)).min(frames / 2);
                for i in 0..frames {
                    if cancelled() {
                        return Err(EncodeError::Cancelled);
                    }
                    // Audio up to this frame's time first, so the muxer's queue stays short.
                    muxing.audio_until(&rx, Some(i * muxing.rate / u64::from(fps)))?;
                    let pic = pictures.next(i)?;
                    if want_thumbnail && i == thumb_at {
                        thumb = Some(pic.clone());
                    }
                    encode_picture(v, pic, i, muxing.mux)?;
                    muxing.report(i + 1, frames);
                }
                v.track.flush(&mut v.enc, muxing.mux)?;
            }
            muxing.audio_until(&rx, None)?;
            Ok(thumb)
        })();
        drop(rx);
        let audio = audio
            .join()
            .map_err(|_| EncodeError::ThreadPanicked { what: "audio" })?;
        match (muxed, audio) {
            (Err(EncodeError::Cancelled), _) | (_, Err(EncodeError::Cancelled)) => {
                Err(EncodeError::Cancelled)
            }
            // The audio thread's own error explains a muxing stop better.
            (_, Err(e)) => Err(e),
            (Err(e), _) => Err(e),
            (Ok(thumb), Ok(_)) => Ok(thumb),
        }
    })?;
    if cancelled() {
        return Err(EncodeError::Cancelled);
    }
    mux.write_trailer()?;
    drop(mux);

    let thumbnail = match (thumb, &job.thumbnail, &profile.video) {
        (Some(pic), Some(path), Some(v)) => {
            write_thumbnail(&pic, v.colour(), path)?;
            Some(path.clone())
        }
        _ => None,
    };
    let bytes = output.commit()?;
    progress(1.0);
    Ok(EncodedItem {
        path: job.out.clone(),
        bytes,
        duration: measured.duration,
        video_frames: video.map_or(0, |v| v.track.packets),
        audio_frames: audio_track.packets,
        thumbnail,
        measured,
        gain_db: gain.db,
        limited: gain.limited,
    })
}

/// How far ahead of its decoding time the muxer may send a picture: the VBV buffer's
/// worth (a picture filling the buffer needs that long at the max rate) plus 100 ms.
fn send_ahead(profile: &EncodeProfile) -> Duration {
    let buffer = profile
        .video
        .as_ref()
        .map_or(0.0, |v| v.vbv_buffer() as f64 / v.bitrate as f64);
    Duration::from_secs_f64((buffer + 0.1).min(1.0))
}

/// The job's picture source fits its profile and sound.
fn check_video_input(job: &ItemEncodeJob, frames: u64) -> Result<(), EncodeError> {
    let bad = |m: String| Err(EncodeError::InvalidSpec(m));
    let media = job.media.display();
    match (&job.profile.video, &job.video) {
        (None, VideoInput::None) => Ok(()),
        (None, _) => bad(format!(
            "the profile has no video but the job for {media} gives pictures; use VideoInput::None for audio-only channels"
        )),
        (Some(_), VideoInput::None) => bad(format!(
            "the profile has video but the job for {media} gives no pictures; give page frames, a video or a still image"
        )),
        (Some(_), _) if frames == 0 => bad(format!(
            "the sound of {media} is shorter than half a video frame; give media with sound"
        )),
        (Some(v), VideoInput::Frames { frames: announced, .. }) if *announced != frames => {
            bad(format!(
                "{announced} page frames announced, but the sound of {media} lasts {} frames at {} fps; render AudioMeasure::video_frames(fps) frames",
                frames, v.fps
            ))
        }
        _ => Ok(()),
    }
}

fn open_pictures(
    v: &VideoProfile,
    input: VideoInput,
    frames: u64,
) -> Result<Pictures, EncodeError> {
    let target = Target {
        width: v.width,
        height: v.height,
        fps: v.fps,
        matrix: v.colour(),
    };
    let converter = |to| RgbaConverter::new(v.width, v.height, v.fps, v.colour(), to);
    Ok(match input {
        VideoInput::Frames { rx, frames } => {
            Pictures::Pages(PageFrames::new(rx, frames, converter("yuv420p")?))
        }
        VideoInput::Transcode { path, overlay } => {
            let t = Transcoder::video(&path, target)?;
            match overlay {
                None => Pictures::Transcode(t),
                Some(rx) => Pictures::Overlaid(t, Overlay::new(rx, frames, converter("yuva420p")?)),
            }
        }
        VideoInput::Still(path) => Pictures::Transcode(Transcoder::still(&path, target)?),
        VideoInput::None => unreachable!("checked by check_video_input"),
    })
}

fn encode_picture(
    v: &mut VideoEncoder,
    pic: &mut frame::Video,
    index: u64,
    mux: &mut Muxer,
) -> Result<(), EncodeError> {
    pic.set_pts(Some(index as i64));
    // Let the encoder place I frames (GOP), whatever a decoder marked on the source.
    pic.set_kind(picture::Type::None);
    v.enc
        .send_frame(pic)
        .map_err(|source| EncodeError::Encode {
            codec: v.track.codec,
            source,
        })?;
    v.track.drain(&mut v.enc, mux)
}

/// The muxing side: audio packets from the audio thread, progress.
struct Muxing<'a, 'p> {
    mux: &'a mut Muxer,
    audio_track: &'a mut Track,
    /// An audio packet received but not yet due.
    pending: Option<Packet>,
    rate: u64,
    total_samples: u64,
    progress: &'p mut dyn FnMut(f32),
    /// Last reported progress in thousandths.
    reported: i64,
    /// Progress follows the audio (no video).
    audio_progress: bool,
}

impl Muxing<'_, '_> {
    /// Write audio packets with pts up to `until` (samples; `None`: all). When there is no
    /// video, progress follows the audio.
    fn audio_until(
        &mut self,
        rx: &Receiver<Packet>,
        until: Option<u64>,
    ) -> Result<(), EncodeError> {
        loop {
            let Some(p) = self.pending.take().or_else(|| rx.recv().ok()) else {
                return Ok(()); // the audio thread is done (or failed: it says why)
            };
            let pts = p.pts().unwrap_or(0).max(0) as u64;
            if until.is_some_and(|u| pts > u) {
                self.pending = Some(p);
                return Ok(());
            }
            self.audio_track.write(p, self.mux)?;
            if self.audio_progress {
                self.report(pts.min(self.total_samples), self.total_samples);
            }
        }
    }

    fn report(&mut self, done: u64, total: u64) {
        let thousandths = (done * 1000 / total.max(1)) as i64;
        if thousandths != self.reported {
            self.reported = thousandths;
            (self.progress)(thousandths as f32 / 1000.0);
        }
    }
}
