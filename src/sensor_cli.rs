//! The `specter sensor` command: arguments checked into options, sources opened (every
//! error names what it is about and exits 2 before capture starts), logging set up, the
//! status line drawn, and the final summary printed. The sensor itself is
//! `specter::sensor`.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use specter::sensor::log::LogFile;
use specter::sensor::signals::Signals;
use specter::sensor::source::{PacketSource, StreamSource};
use specter::sensor::status::Line;
use specter::sensor::units::{parse_duration, parse_size};
use specter::sensor::{self, Options};

use crate::exit;

/// The sensor's command-line arguments.
pub struct Args {
    pub interfaces: Vec<String>,
    pub read: Vec<PathBuf>,
    pub filter: Option<String>,
    pub snaplen: u32,
    pub buffer_size: String,
    pub db: PathBuf,
    pub flush_interval: String,
    pub max_memory: String,
    pub hints: Option<PathBuf>,
    pub spec: Vec<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub keylog: Option<PathBuf>,
    pub threads: usize,
    pub stats: bool,
}

#[cfg(feature = "live")]
fn open_interfaces(args: &Args, buffer_size: u64) -> anyhow::Result<Vec<Box<dyn PacketSource>>> {
    use specter::sensor::capture::{LiveOptions, LiveSource};
    let opts = LiveOptions {
        snaplen: args.snaplen,
        buffer_size: u32::try_from(buffer_size).unwrap_or(u32::MAX),
        filter: args.filter.clone(),
    };
    let mut out: Vec<Box<dyn PacketSource>> = Vec::new();
    for iface in &args.interfaces {
        out.push(Box::new(
            LiveSource::open(iface, &opts).map_err(anyhow::Error::msg)?,
        ));
    }
    Ok(out)
}

#[cfg(not(feature = "live"))]
fn open_interfaces(args: &Args, _: u64) -> anyhow::Result<Vec<Box<dyn PacketSource>>> {
    match args.interfaces.first() {
        None => Ok(Vec::new()),
        Some(iface) => bail!(
            "-i {iface}: this specter was built without live capture; rebuild with \
             `cargo build --release --features live` (needs libpcap-dev), or feed it a \
             capture stream: `tcpdump -i {iface} -w - | specter sensor -r -`"
        ),
    }
}

/// Where log lines go, and the log file to reopen on SIGHUP.
fn init_logging(args: &Args, terminal: bool) -> anyhow::Result<Option<LogFile>> {
    use tracing_subscriber::fmt;
    let builder = fmt().with_target(false).with_thread_names(false);
    match &args.log_file {
        Some(path) => {
            let log = LogFile::open(path)?;
            let writer = log.clone();
            let _ = builder
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .try_init();
            Ok(Some(log))
        }
        None => {
            // On a terminal the status line says it all; lines would tear it.
            let level = if terminal {
                tracing::Level::WARN
            } else {
                tracing::Level::INFO
            };
            let _ = builder
                .with_ansi(terminal)
                .with_max_level(level)
                .with_writer(io::stderr)
                .try_init();
            Ok(None)
        }
    }
}

/// Runs `specter sensor`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.filter.is_some() && args.interfaces.is_empty() {
        bail!("--filter applies to interfaces (-i); filter a stream where it is written (tcpdump -w - FILTER)");
    }
    if args.interfaces.is_empty() && args.read.is_empty() {
        bail!("sensor: nothing to capture: give -i IFACE (or -r FILE, -r - for standard input)");
    }
    let max_memory =
        parse_size(&args.max_memory).map_err(|e| anyhow::anyhow!("--max-memory {e}"))?;
    let buffer_size =
        parse_size(&args.buffer_size).map_err(|e| anyhow::anyhow!("--buffer-size {e}"))?;
    if max_memory < specter::pipeline::MIN_MEMORY_BUDGET {
        bail!(
            "--max-memory {}: below the smallest budget the sensor follows traffic with ({} MiB)",
            args.max_memory,
            specter::pipeline::MIN_MEMORY_BUDGET >> 20
        );
    }
    let flush_interval: Duration = parse_duration(&args.flush_interval)
        .map_err(|e| anyhow::anyhow!("--flush-interval {e}"))?;
    if !args.interfaces.is_empty()
        && buffer_size.saturating_mul(args.interfaces.len() as u64) > max_memory / 2
    {
        bail!(
            "--buffer-size {} on {} interfaces would take more than half of --max-memory {}: \
             the kernel buffers count against the budget",
            args.buffer_size,
            args.interfaces.len(),
            args.max_memory
        );
    }
    let mut sources = open_interfaces(&args, buffer_size)?;
    for path in &args.read {
        sources.push(Box::new(
            StreamSource::open(path).map_err(anyhow::Error::msg)?,
        ));
    }
    let terminal = io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let log = init_logging(&args, terminal)?;
    let signals = Signals::install().context("installing signal handlers")?;
    let opts = Options {
        db: args.db.clone(),
        hints: args.hints.clone(),
        specs: args.spec.clone(),
        flush_interval,
        max_memory,
        snaplen: args.snaplen,
        keylog: args.keylog.clone(),
        threads: args.threads,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let bar = terminal.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut on_tick = |snap: &sensor::status::Snapshot, rates| {
        if let Some(bar) = &bar {
            bar.set_message(Line(snap, rates).to_string());
            bar.tick();
        }
    };
    let mut on_hup = || {
        if let Some(log) = &log {
            match log.reopen() {
                Ok(()) => tracing::info!("log file reopened"),
                Err(e) => eprintln!("specter: reopening {}: {e}", log.path().display()),
            }
        }
    };
    let summary = sensor::run(sources, &opts, &signals, &mut on_tick, &mut on_hup)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let s = &summary.snapshot;
    eprintln!(
        "specter: sensor {} after {}s: {} packets, {} flows, {} exchanges; inventory {}: {} endpoints ({} flushes); dropped {} by the kernel, {} by interfaces; {} flows evicted ({} shed for memory); peak memory {} MiB of {} MiB",
        if summary.stopped { "stopped" } else { "done" },
        s.uptime.as_secs(),
        s.packets,
        s.flows,
        s.exchanges,
        args.db.display(),
        s.endpoints,
        s.flushes,
        s.kernel_dropped,
        s.interface_dropped,
        s.flows_evicted,
        s.flows_shed,
        s.peak_rss.unwrap_or(0) >> 20,
        s.budget >> 20,
    );
    if args.stats {
        eprint!("{}", summary.stats);
    }
    Ok(if summary.source_errors.is_empty() {
        exit::OK
    } else {
        exit::INPUT_ERROR
    })
}
