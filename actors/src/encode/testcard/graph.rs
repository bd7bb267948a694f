//! libavfilter graphs that synthesise the test item's pictures and sound.
//!
//! Video: `testsrc2` → `drawtext` (title, artist, running SMPTE timecode) → `format=yuv420p`.
//! Audio: `sine` → `aformat` to the encoder's sample format, rate and channel layout.
//!
//! The title and artist reach `drawtext` through `textfile=` with `expansion=none`, so their
//! characters (`'`, `:`, `%`, `\`, `,`, non-ASCII) need no escaping at all; the file paths
//! that do appear in the graph description are escaped for both parsing levels.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ffmpeg::{filter, format, ChannelLayout};
use ffmpeg_next as ffmpeg;

use super::{AudioSpec, EncodeError, VideoSpec};

/// Where `drawtext` finds its fonts (regular, bold); first existing pair wins.
const FONT_DIRS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu", // Debian, Ubuntu (fonts-dejavu-core)
    "/usr/share/fonts/dejavu",          // Fedora, Alpine
    "/usr/share/fonts/TTF",             // Arch
    "/usr/local/share/fonts/dejavu",
    "/usr/local/share/fonts",
];

/// Regular and bold font files for `drawtext`.
pub(super) struct Fonts {
    pub regular: PathBuf,
    pub bold: PathBuf,
}

pub(super) fn find_fonts() -> Result<Fonts, EncodeError> {
    for dir in FONT_DIRS {
        let regular = Path::new(dir).join("DejaVuSans.ttf");
        if regular.is_file() {
            let bold = Path::new(dir).join("DejaVuSans-Bold.ttf");
            let bold = if bold.is_file() {
                bold
            } else {
                regular.clone()
            };
            return Ok(Fonts { regular, bold });
        }
    }
    Err(EncodeError::FontMissing {
        tried: FONT_DIRS
            .iter()
            .map(|d| format!("{d}/DejaVuSans.ttf"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Quote `s` so that one pass of FFmpeg's `av_get_token` returns it verbatim: inside
/// single quotes everything is literal, and a `'` is written as `'\''`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Escape a filter option value for a filter graph description. The description is
/// tokenised twice (graph level: `[],;`, then option level: `:`), so quote twice.
pub(super) fn graph_value(s: &str) -> String {
    quote(&quote(s))
}

fn path_value(p: &Path) -> Result<String, EncodeError> {
    p.to_str()
        .map(graph_value)
        .ok_or_else(|| EncodeError::BadPath {
            path: p.to_path_buf(),
            reason: "not valid UTF-8; FFmpeg's filter graph needs UTF-8 paths",
        })
}

/// Text files handed to `drawtext`; removed when dropped (also on error).
#[derive(Default)]
pub(super) struct TextFiles {
    paths: Vec<PathBuf>,
}

impl TextFiles {
    /// Write `text` to `<base>.<tag>.txt` (created fresh, never following an existing file).
    fn write(&mut self, base: &Path, tag: &str, text: &str) -> Result<PathBuf, EncodeError> {
        let mut name = base.as_os_str().to_owned();
        name.push(format!(".{tag}.txt"));
        let path = PathBuf::from(name);
        let _ = fs::remove_file(&path); // a leftover from a killed run
        let io_err = |source| EncodeError::Io {
            op: "write drawtext text file",
            path: path.clone(),
            source,
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err)?;
        self.paths.push(path.clone());
        f.write_all(text.as_bytes()).map_err(io_err)?;
        Ok(path)
    }
}

impl Drop for TextFiles {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = fs::remove_file(p);
        }
    }
}

/// Font size that fits `text` in 90 % of `width`, at most `base`; `em` is the
/// font's mean advance per character as a fraction of the size.
fn fit_size(base: u32, text: &str, width: u32, em: f64) -> u32 {
    let chars = text.chars().count().max(1) as f64;
    let fit = (f64::from(width) * 0.9 / (chars * em)).floor();
    (f64::from(base).min(fit) as u32).max(8)
}

/// Build and configure a graph from a source chain `spec` into a sink named `out`.
fn build(sink: &'static str, spec: &str, what: &'static str) -> Result<filter::Graph, EncodeError> {
    let fail = |source| EncodeError::FilterGraph {
        what,
        graph: spec.to_string(),
        source,
    };
    let mut graph = filter::Graph::new();
    let sink_filter = filter::find(sink).ok_or(EncodeError::FilterMissing { name: sink })?;
    graph.add(&sink_filter, "out", "").map_err(fail)?;
    graph
        .input("out", 0)
        .map_err(fail)?
        .parse(spec)
        .map_err(fail)?;
    graph.validate().map_err(fail)?;
    Ok(graph)
}

/// The video source: test pattern with the title card and a running timecode, in yuv420p.
/// `text_base` names the text files (`<text_base>.title.txt`, …), removed when the
/// returned [`TextFiles`] drops (drawtext has read them once the graph exists).
pub(super) fn video_graph(
    v: &VideoSpec,
    title: &str,
    artist: &str,
    text_base: &Path,
) -> Result<(filter::Graph, TextFiles), EncodeError> {
    for name in ["testsrc2", "drawtext", "format"] {
        if filter::find(name).is_none() {
            return Err(EncodeError::FilterMissing { name });
        }
    }
    let fonts = find_fonts()?;
    let (regular, bold) = (path_value(&fonts.regular)?, path_value(&fonts.bold)?);
    let (w, h, fps) = (v.width, v.height, v.fps);
    let border = (h / 120).max(2);
    let style = format!("fontcolor=white:box=1:boxcolor=black@0.6:boxborderw={border}");
    let mut files = TextFiles::default();
    let mut chain = vec![format!("testsrc2=size={w}x{h}:rate={fps}")];

    let timecode_size = (h / 14).max(8);
    chain.push(format!(
        "drawtext=fontfile={regular}:timecode={tc}:timecode_rate={fps}:fontsize={timecode_size}:{style}:x=(w-text_w)/2:y={y}",
        tc = graph_value("00:00:00:00"),
        y = h * 8 / 100,
    ));
    let mut y = h * 62 / 100;
    let lines = [
        (title, "title", bold.as_str(), h / 11, 0.66),
        (artist, "artist", regular.as_str(), h / 16, 0.6),
    ];
    for (text, tag, font, base, em) in lines {
        if text.is_empty() {
            continue;
        }
        let size = fit_size(base, text, w, em);
        let file = path_value(&files.write(text_base, tag, text)?)?;
        chain.push(format!(
            "drawtext=fontfile={font}:textfile={file}:expansion=none:fontsize={size}:{style}:x=(w-text_w)/2:y={y}"
        ));
        y += size * 3 / 2 + 2 * border;
    }
    chain.push("format=pix_fmts=yuv420p".to_string());

    let mut graph = build("buffersink", &chain.join(","), "video test pattern")?;
    if let Some(mut out) = graph.get("out") {
        out.set_pixel_format(format::Pixel::YUV420P);
    }
    Ok((graph, files))
}

/// The audio source: a sine tone at the encoder's sample format, rate and layout, in
/// frames of exactly `frame_size` samples.
pub(super) fn audio_graph(
    a: &AudioSpec,
    sample_format: format::Sample,
    layout: ChannelLayout,
    frame_size: u32,
) -> Result<filter::Graph, EncodeError> {
    for name in ["sine", "aformat"] {
        if filter::find(name).is_none() {
            return Err(EncodeError::FilterMissing { name });
        }
    }
    let spec = format!(
        "sine=frequency={f}:sample_rate={sr}:samples_per_frame={frame_size},\
         aformat=sample_fmts={fmt}:sample_rates={sr}:channel_layouts=0x{bits:x}",
        f = a.tone_hz,
        sr = a.sample_rate,
        fmt = sample_format.name(),
        bits = layout.bits(),
    );
    let mut graph = build("abuffersink", &spec, "audio tone")?;
    if let Some(mut out) = graph.get("out") {
        out.sink().set_frame_size(frame_size);
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_two_token_passes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(graph_value("x"), r"''\''x'\'''");
    }

    #[test]
    fn fit_size_shrinks_long_text() {
        assert_eq!(fit_size(60, "short", 1280, 0.6), 60);
        assert!(fit_size(60, &"x".repeat(200), 1280, 0.6) < 20);
    }
}
