//! `headend`: the node binary and operator command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use headend_node::config::{Config, LogFormat};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "headend", version, about = "24/7 channels from cloud storage into a cable headend, as CBR MPEG-TS multicast")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node with a configuration file.
    Run {
        #[arg(long, short, env = "HEADEND_CONFIG")]
        config: PathBuf,
    },
    /// Operate a cluster through its gRPC admin API.
    Ctl(headend_node::ctl::CtlArgs),
    /// Make a development CA and certificates for nodes and admin clients (mutual TLS).
    Certs {
        /// Output directory (an existing ca.key + ca.pem there is reused).
        #[arg(long, default_value = "./certs")]
        dir: PathBuf,
        /// Node names (node.id), one certificate each.
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Extra host names or IP addresses in every node certificate.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Admin client names, one certificate each (for `headend ctl --cert`).
        #[arg(long = "client")]
        clients: Vec<String>,
    },
    /// Run a demo node: two channels on loopback multicast, no configuration needed.
    Demo {
        /// Where demo items and channel state go.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: std::net::SocketAddr,
    },
    /// Sync every channel's media from its object store into the cache.
    Sync {
        #[arg(long, short, env = "HEADEND_CONFIG")]
        config: PathBuf,
        /// Run once and exit (the node syncs on its interval while it runs).
        #[arg(long)]
        once: bool,
        /// No progress bars (for logs and scripts).
        #[arg(long)]
        quiet: bool,
    },
    /// Check a configuration file, probe every item at its channel's mux rate, and
    /// print the effective configuration.
    CheckConfig {
        file: PathBuf,
        /// Do not check or probe playlist folders and items (for a config meant for
        /// another machine).
        #[arg(long)]
        skip_paths: bool,
    },
}

/// A configuration error is the operator's to fix: say it plainly (no backtrace) and
/// exit with status 2, as `check-config` does.
fn config_error(e: headend_node::config::ConfigError) -> ! {
    eprintln!("{e}");
    std::process::exit(2);
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file, skip_paths } => {
            let loaded = if skip_paths { Config::load(&file) } else { Config::load_with_paths(&file) };
            let config = loaded.unwrap_or_else(|e| config_error(e));
            if !skip_paths {
                let (checked, problems) = headend_node::check::probe_items(&config);
                for p in &problems {
                    eprintln!("{}: channel {:?}: {}", file.display(), p.channel, p.message);
                }
                if !problems.is_empty() {
                    eprintln!("{}: {} of {checked} items cannot be played", file.display(), problems.len());
                    std::process::exit(2);
                }
            }
            print!("{}", config.to_toml_string()?);
            eprintln!("{}: ok ({} channels)", file.display(), config.channels.len());
            Ok(())
        }
        Command::Sync { config, once, quiet } => {
            anyhow::ensure!(once, "`headend sync` runs once: add --once (a running node syncs on node.sync.interval_secs)");
            let config = Config::load(&config).unwrap_or_else(|e| config_error(e));
            init_logging(config.node.log_format);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = rt.block_on(headend_node::sync::sync_once(&config, !quiet))?;
            println!(
                "synced {}: {} listed, {} downloaded ({} bytes), {} unchanged, {} removed, {} refused, {} failed in {} ms{}",
                report.channels.join(", "),
                report.listed,
                report.downloaded,
                report.bytes,
                report.unchanged,
                report.removed,
                report.refused.len(),
                report.failed.len(),
                report.duration_ms,
                if report.degraded { " (DEGRADED: store unreachable)" } else { "" }
            );
            for f in report.refused.iter().chain(&report.failed) {
                eprintln!("  {}/{}: {}", f.channel, f.key, f.reason);
            }
            for e in &report.errors {
                eprintln!("  error: {e}");
            }
            if !report.is_clean() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Run { config } => {
            let config = Config::load_with_paths(&config).unwrap_or_else(|e| config_error(e));
            init_logging(config.node.log_format);
            serve(config)
        }
        Command::Ctl(args) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            if let Err(e) = rt.block_on(headend_node::ctl::run(args)) {
                match e.downcast_ref::<tonic::Status>() {
                    Some(s) => eprintln!("headend ctl: {:?}: {}", s.code(), s.message()),
                    None => eprintln!("headend ctl: {e:#}"),
                }
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Certs { dir, nodes, hosts, clients } => {
            let request = headend_node::certs::CertsRequest { dir, nodes, hosts, clients };
            for path in headend_node::certs::make(&request)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Demo { data_dir, http_listen } => {
            init_logging(LogFormat::Text);
            std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
            let mut config = headend_node::demo::prepare(&data_dir)?;
            config.node.http_listen = http_listen;
            println!("headend demo: two channels on loopback multicast. Watch them with:");
            for c in &config.channels {
                let (g, p) = (c.multicast.group, c.multicast.port);
                println!("  {:<10} ffplay 'udp://@{g}:{p}?localaddr=127.0.0.1'", c.name);
                println!("  {:<10} vlc udp://@{g}:{p} --miface-addr=127.0.0.1", "");
                println!("  {:<10} now playing: curl http://{http_listen}/channels/{}/now", "", c.id);
                println!("  {:<10} play order:  curl http://{http_listen}/channels/{}/playlist.m3u", "", c.id);
            }
            println!("Songs are synced from {}, rendered with the built-in page and encoded;", config.node.data_dir.join("demo/source").display());
            println!("  progress:   curl http://{http_listen}/encode/status");
            println!("Until its first item is built, a channel plays its fallback. Ctrl-C stops the demo.");
            serve(config)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.node.http_listen)
            .await
            .with_context(|| format!("cannot listen on {} (node.http_listen)", config.node.http_listen))?;
        headend_node::run::run(config, listener, headend_node::run::shutdown_signal()).await
    })
}
