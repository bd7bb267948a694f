//! The markdown report of a playout bench, and writing it into the README between
//! markers.

use crate::jitter::percentile;
use crate::scenario::{datagrams_per_second, Bench, RunResult, Tool, DATAGRAM_BYTES};
use crate::PlayoutBench;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use headend_bench::host::{self, shell};

pub const BEGIN: &str =
    "<!-- headend-bench playout results: begin (written by `headend-bench playout --write-readme`) -->";
pub const END: &str = "<!-- headend-bench playout results: end -->";

/// Targets from the issue.
const TARGET_CHANNELS: usize = 100;
const TARGET_P99_MS: f64 = 1.0;
const TARGET_DF_MS: f64 = 2.0;
const TARGET_CPU_SHARE_OF_FFMPEG: f64 = 0.2;
/// Runs with at most this many streams get a per-stream table.
const PER_STREAM_MAX: usize = 10;

/// The command as it would be typed in the workspace.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p headend-bench -- {}", args.join(" "))
}

/// Figures of one run, pooled over its captured streams.
struct Summary<'a> {
    run: &'a RunResult,
    /// Median stream's measured rate, Mbit/s.
    rate_mbps: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    df_median_ms: Option<f64>,
    df_worst_ms: Option<f64>,
    p1: u64,
    p2: u64,
    errors: BTreeMap<String, u64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

fn summarize(run: &RunResult) -> Summary<'_> {
    let mut all: Vec<f64> = run.streams.iter().flat_map(|s| s.deviation.sorted_ms.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let dfs: Vec<f64> = run.streams.iter().filter_map(|s| s.mdi_df_max_ms).collect();
    let mut errors = BTreeMap::new();
    for s in &run.streams {
        for (kind, n) in &s.errors {
            *errors.entry(format!("{} {kind:?}", kind.tr101290_id())).or_insert(0) += n;
        }
    }
    Summary {
        run,
        rate_mbps: median(
            run.streams.iter().filter(|s| s.deviation.rate_bps > 0.0).map(|s| s.deviation.rate_bps / 1e6).collect(),
        ),
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
        max_ms: all.last().copied(),
        df_worst_ms: dfs.iter().copied().max_by(f64::total_cmp),
        df_median_ms: median(dfs),
        p1: run.streams.iter().map(|s| s.p1_errors).sum(),
        p2: run.streams.iter().map(|s| s.p2_errors).sum(),
        errors,
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.1}"),
        None => "–".into(),
    }
}

/// The host and the versions of the tools compared.
fn machine() -> String {
    let ffmpeg = shell("ffmpeg", &["-version"]);
    let ffmpeg = ffmpeg.split_whitespace().nth(2).unwrap_or("?");
    let multicat = shell("dpkg-query", &["-W", "-f", "${Version}", "multicat"]);
    format!("{}; ffmpeg {ffmpeg}, multicat {multicat}", host::machine())
}

/// Streams whose worst deviation falls within this of each other count as one event.
const STALL_WINDOW_S: f64 = 0.05;

/// When the run's worst deviation is an outlier (over 5 × its p99) and at least half of
/// its streams (and at least 3) had their worst deviation within [`STALL_WINDOW_S`] of
/// each other: (how many, when in the capture). One moment that hurts every stream at
/// once is a host-wide stall (scheduling, the hypervisor), whether on the sending or the
/// receiving side; user-space arrival times cannot tell which.
fn common_stall(s: &Summary) -> Option<(usize, f64)> {
    if !matches!((s.max_ms, s.p99_ms), (Some(max), Some(p99)) if max > 5.0 * p99) {
        return None;
    }
    let run = s.run;
    let mut at: Vec<f64> = run.streams.iter().map(|s| s.deviation.worst_at.as_secs_f64()).collect();
    at.sort_by(f64::total_cmp);
    let mut best = (0, 0.0);
    let mut first = 0;
    for last in 0..at.len() {
        while at[last] - at[first] > STALL_WINDOW_S {
            first += 1;
        }
        if last + 1 - first > best.0 {
            best = (last + 1 - first, at[first]);
        }
    }
    (best.0 >= 3 && best.0 * 2 >= at.len()).then_some(best)
}

/// The whole report.
pub fn markdown(args: &PlayoutBench, command: &str, bench: &Bench) -> String {
    let summaries: Vec<Summary> = bench.runs.iter().map(summarize).collect();
    let headend: Vec<&Summary> = summaries.iter().filter(|s| s.run.tool == Tool::Headend).collect();
    let others: Vec<&Summary> = summaries.iter().filter(|s| s.run.tool != Tool::Headend).collect();
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "- Command: `{command}`");
    let _ = writeln!(w, "- Date: {}", shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(w, "- Machine: {}", machine());
    let _ = writeln!(
        w,
        "- Every channel: the same 10 s H.264 720p25 + AAC item ({:.2} Mbit/s on average), looped, as {:.1} Mbit/s CBR MPEG-TS, 7 × 188 bytes per UDP datagram, to its own group 239.255.200.x on loopback (multicat plays a looped CBR copy, PCR PID {}).",
        bench.items.item_bps / 1e6,
        args.rate as f64 / 1e6,
        bench.items.cbr_pcr_pid,
    );
    let _ = writeln!(
        w,
        "- Each run, one after the other: start, wait until every stream arrives, {} s warm-up, then {} s with every stream captured on loopback (CPU \"received\", jitter, MDI, errors), then {} s with no receiver (CPU \"unreceived\": what sending costs when the receivers are elsewhere; ratios use it).",
        args.warmup, args.seconds, args.unreceived_seconds
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "| tool | channels (captured) | CPU % of one core, received / unreceived | CPU s per channel-hour, received / unreceived | user / sys % | start-up s | rate Mbit/s | jitter p50 / p99 / max ms | MDI DF ms, median / worst stream (floor {:.2}) | TR 101 290 P1 / P2 | rx drops | meanwhile on the host: captures / others / steal, % of a core |",
        df_floor_ms(args.rate)
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &summaries {
        let r = s.run;
        let c = r.cpu_window().cpu;
        let total = c.total_s().max(f64::EPSILON);
        let (pct_u, hour_u) = r.unreceived.map_or(("–".into(), "–".into()), |u| {
            (format!("{:.1}", u.core_percent()), format!("{:.1}", u.per_channel_hour(r.channels)))
        });
        let _ = writeln!(
            w,
            "| {} | {} ({}) | {:.1} / {pct_u} | {:.1} / {hour_u} | {:.0} / {:.0} | {:.1} | {} | {} / {} / {} | {} / {} | {} / {} | {} | {:.0} / {:.0} / {:.1} |",
            r.tool.name(),
            r.channels,
            r.streams.len(),
            r.received.core_percent(),
            r.received.per_channel_hour(r.channels),
            c.user_s / total * 100.0,
            c.sys_s / total * 100.0,
            r.startup_s,
            s.rate_mbps.map_or("–".into(), |v| format!("{v:.3}")),
            ms(s.p50_ms),
            ms(s.p99_ms),
            ms(s.max_ms),
            ms(s.df_median_ms),
            ms(s.df_worst_ms),
            s.p1,
            s.p2,
            r.rx_drops,
            r.received.bench_core_percent,
            r.received.others_core_percent,
            r.received.steal_core_percent,
        );
    }

    if !headend.is_empty() && !others.is_empty() {
        let _ = writeln!(w, "\nRatios, headend ÷ the other tool (below 1: headend is better):\n");
        let _ = writeln!(w, "| headend channels | ÷ tool | CPU per channel, unreceived | CPU per channel, received | jitter p99 | MDI DF worst |");
        let _ = writeln!(w, "|---|---|---|---|---|---|");
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "–".into(),
        };
        let unreceived = |s: &Summary| s.run.unreceived.map(|u| u.per_channel_hour(s.run.channels));
        let received = |s: &Summary| Some(s.run.received.per_channel_hour(s.run.channels));
        for h in &headend {
            for o in &others {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} |",
                    h.run.channels,
                    o.run.tool.name(),
                    ratio(unreceived(h), unreceived(o)),
                    ratio(received(h), received(o)),
                    ratio(h.p99_ms, o.p99_ms),
                    ratio(h.df_worst_ms, o.df_worst_ms),
                );
            }
        }
    }

    if headend.iter().any(|h| h.run.cpu_window().threads.is_some()) {
        let _ = writeln!(w, "\nheadend's CPU by thread (unreceived window), % of one core: the pacing threads (one `playout-*` per channel) and the rest (tokio runtime: channel actors, schedule extension on the blocking pool):\n");
        let _ = writeln!(w, "| channels | pacing threads | rest | pacing CPU µs per datagram |");
        let _ = writeln!(w, "|---|---|---|---|");
        for h in &headend {
            let window = h.run.cpu_window();
            let Some(t) = window.threads else { continue };
            let pct = |c: crate::procs::CpuTime| c.total_s() / window.seconds * 100.0;
            let datagrams = h.run.channels as f64 * window.seconds * datagrams_per_second(args.rate);
            let _ = writeln!(
                w,
                "| {} | {:.1} | {:.1} | {:.1} |",
                h.run.channels,
                pct(t.pacers),
                pct(t.rest).max(0.0),
                t.pacers.total_s() / datagrams * 1e6
            );
        }
    }

    let _ = writeln!(w, "\nTargets from the issue:\n");
    let _ = writeln!(w, "| target | measured | met |");
    let _ = writeln!(w, "|---|---|---|");
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    if let Some(big) = headend.iter().filter(|h| h.run.channels >= TARGET_CHANNELS).min_by_key(|h| h.run.channels) {
        let ok = big.run.core_percent() < 100.0 && big.run.received.core_percent() < 100.0 && big.p1 == 0;
        let _ = writeln!(
            w,
            "| ≥ {TARGET_CHANNELS} channels at {:.0} Mbit/s on one core | {} channels: {:.0}% of one core unreceived, {:.0}% received, {} P1 errors | {} |",
            args.rate as f64 / 1e6,
            big.run.channels,
            big.run.core_percent(),
            big.run.received.core_percent(),
            big.p1,
            yes(ok)
        );
    }
    for h in &headend {
        if let Some(p99) = h.p99_ms {
            let _ = writeln!(
                w,
                "| p99 jitter ≤ {TARGET_P99_MS} ms ({} channels) | {} ms | {} |",
                h.run.channels,
                ms(Some(p99)),
                yes(p99 <= TARGET_P99_MS)
            );
        }
    }
    for h in &headend {
        if let Some(df) = h.df_worst_ms {
            let _ = writeln!(
                w,
                "| MDI DF ≤ {TARGET_DF_MS} ms ({} channels, worst stream; a perfect sender scores {:.2} ms) | {} ms | {} |",
                h.run.channels,
                df_floor_ms(args.rate),
                ms(Some(df)),
                yes(df <= TARGET_DF_MS)
            );
        }
    }
    if let Some(f) = summaries.iter().find(|s| s.run.tool == Tool::Ffmpeg) {
        for h in &headend {
            let share = h.run.cpu_per_channel_hour() / f.run.cpu_per_channel_hour();
            let _ = writeln!(
                w,
                "| CPU per channel ≤ 1/5 of ffmpeg's ({} channels, unreceived) | {:.2} of ffmpeg's | {} |",
                h.run.channels,
                share,
                yes(share <= TARGET_CPU_SHARE_OF_FFMPEG)
            );
        }
    }

    let small: Vec<&RunResult> = bench.runs.iter().filter(|r| r.streams.len() <= PER_STREAM_MAX).collect();
    if !small.is_empty() {
        let _ = writeln!(w, "\nPer stream (runs of up to {PER_STREAM_MAX} streams):\n");
        let _ = writeln!(
            w,
            "| tool | stream | datagrams | rate Mbit/s | jitter p50 / p99 / max ms | MDI DF ms | P1 / P2 |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|");
        for r in small {
            for s in &r.streams {
                let d = &s.deviation.sorted_ms;
                let _ = writeln!(
                    w,
                    "| {} × {} | {} | {} | {:.3} | {} / {} / {} | {} | {} / {} |",
                    r.tool.name(),
                    r.channels,
                    s.addr,
                    s.datagrams,
                    s.deviation.rate_bps / 1e6,
                    ms(percentile(d, 50.0)),
                    ms(percentile(d, 99.0)),
                    ms(d.last().copied()),
                    ms(s.mdi_df_max_ms),
                    s.p1_errors,
                    s.p2_errors
                );
            }
        }
    }

    let noted: Vec<&Summary> =
        summaries.iter().filter(|s| !s.errors.is_empty() || s.run.log_count > 0 || common_stall(s).is_some()).collect();
    if !noted.is_empty() {
        let _ = writeln!(w, "\nErrors, log lines and stalls:\n");
        for s in noted {
            if let Some((n, at)) = common_stall(s) {
                let _ = writeln!(
                    w,
                    "- {} × {}: the worst deviation of {n} of {} streams fell within {:.0} ms, {at:.2} s into the capture: one host-wide stall (max {} ms), not a per-channel fault",
                    s.run.tool.name(),
                    s.run.channels,
                    s.run.streams.len(),
                    STALL_WINDOW_S * 1e3,
                    ms(s.max_ms)
                );
            }
            if s.errors.is_empty() && s.run.log_count == 0 {
                continue;
            }
            let kinds: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} × {n}")).collect();
            let _ = writeln!(
                w,
                "- {} × {}: TR 101 290: {}; {} log line(s){}",
                s.run.tool.name(),
                s.run.channels,
                if kinds.is_empty() { "none".into() } else { kinds.join(", ") },
                s.run.log_count,
                if s.run.log_lines.is_empty() { "" } else { ", first distinct:" }
            );
            for line in &s.run.log_lines {
                let _ = writeln!(w, "  - `{}`", line.replace('`', "'"));
            }
        }
    }
    md
}

/// RFC 4445 delay factor of a perfectly paced stream: one datagram's time at `rate`
/// (the virtual buffer rises by a whole datagram at each arrival).
pub fn df_floor_ms(rate: u64) -> f64 {
    (DATAGRAM_BYTES * 8) as f64 / rate as f64 * 1e3
}

/// Replaces the text between the markers of `path` with `body` (appends a section with
/// the markers when they are missing).
pub fn write_readme(path: &Path, body: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{body}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{}\n## Latest results\n\n{block}\n", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}
