//! `headend-bench`: benchmarks of headend's playout against the tools users would pick
//! instead (ffmpeg, multicat). See `bench/README.md` for the method and the latest figures.
//!
//! `headend-bench playout` runs, one after the other, headend with N channels (one child
//! process, the full playout supervisor), ffmpeg with M channels (one process each) and
//! multicat with M channels (one process each); every stream goes to its own loopback
//! multicast group and is captured with arrival times. It reports CPU from `/proc` and
//! departure jitter, MDI and TR 101 290 errors from the captures.

mod child;
mod items;
mod jitter;
mod procs;
mod report;
mod scenario;
mod streams;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "headend-bench", about = "Benchmarks of headend against ffmpeg and multicat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Playout: CPU per channel, departure jitter, MDI and TR 101 290 errors of headend,
    /// ffmpeg and multicat playing the same item as CBR multicast on loopback.
    Playout(PlayoutBench),
    /// Internal: the headend process measured by `playout` (N channels on the playout
    /// supervisor, until stdin closes).
    #[command(hide = true)]
    HeadendChild(child::ChildArgs),
}

/// Options of `headend-bench playout`.
#[derive(Debug, Clone, Args)]
pub struct PlayoutBench {
    /// Headend channel counts to run, one run each (the "max channels" probe).
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub channels: Vec<usize>,
    /// ffmpeg channels (one ffmpeg process each); 0 skips ffmpeg.
    #[arg(long, default_value_t = 5)]
    pub ffmpeg_channels: usize,
    /// ffmpeg channels paced by ffmpeg's UDP output (`bitrate=` option); 0 skips them.
    #[arg(long, default_value_t = 5)]
    pub ffmpeg_paced_channels: usize,
    /// multicat channels (one multicat process each); 0 skips multicat.
    #[arg(long, default_value_t = 5)]
    pub multicat_channels: usize,
    /// Length of each measurement window, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Length of a second CPU window right after the first, with no receivers (0: none).
    #[arg(long, default_value_t = 10)]
    pub unreceived_seconds: u64,
    /// Seconds to let every stream settle after the last one started, before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Mux rate of every channel, bit/s.
    #[arg(long, default_value_t = 4_000_000)]
    pub rate: u64,
    /// Capture at most this many streams per run (spread evenly); 0 captures all.
    #[arg(long, default_value_t = 0)]
    pub capture_max: usize,
    /// Where the test item and its copies are made once and kept
    /// (default: bench-items in $CARGO_TARGET_DIR, else in the target directory of this binary).
    #[arg(long)]
    pub items_dir: Option<PathBuf>,
    /// First UDP port; each run uses its own block of ports from here.
    #[arg(long, default_value_t = 24_000)]
    pub port_base: u16,
    /// Also write every captured datagram's arrival time and size to CSV files here
    /// (`<run>-<tool>-<group>-<port>.csv`), for a closer look.
    #[arg(long)]
    pub dump_dir: Option<PathBuf>,
    /// Also write the results into bench/README.md, between its markers.
    #[arg(long)]
    pub write_readme: bool,
    /// The README to update with --write-readme.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))]
    pub readme: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Playout(args) => {
            procs::kill_children_on_signal()?;
            let command_line = report::command_line();
            let bench = scenario::run_all(&args)?;
            let markdown = report::markdown(&args, &command_line, &bench);
            println!("{markdown}");
            if args.write_readme {
                report::write_readme(&args.readme, &markdown)?;
                eprintln!("wrote {}", args.readme.display());
            }
            Ok(())
        }
        Command::HeadendChild(args) => child::run(args),
    }
}
