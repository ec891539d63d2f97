//! The `specter` command line. Only argument handling and output live here; the work is
//! done by the library.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use specter::inputs::{self, Input};
use specter::output::{ExchangeWriter, Format};
use specter::pipeline::{self, Config};
use specter::stats::Stats;

/// Exit codes (DESIGN.md): 0 clean, 1 findings matched --fail-on, 2 usage or input error.
mod exit {
    pub const OK: u8 = 0;
    pub const INPUT_ERROR: u8 = 2;
}

/// specter: passive API discovery. Reads traffic you are not part of (pcap/pcapng files
/// or a mirror port) and tells you which API endpoints really exist.
#[derive(Parser, Debug)]
#[command(name = "specter", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode captures into HTTP exchanges, one line per request/response pair.
    ///
    /// Reads pcap and pcapng files (any link type tshark calls Ethernet, Linux cooked
    /// v1/v2, BSD loopback, raw IP, 802.11, NFLOG; VLAN, MPLS, VXLAN, Geneve, GRE/ERSPAN
    /// tunnels), reassembles TCP and parses HTTP/1.x on any port. Folders are walked for
    /// capture files; `-` reads standard input. Each file is analysed on its own; a broken
    /// file is reported with the byte offset where it breaks and the rest still run.
    /// Exchanges are printed in the order their request began.
    Exchanges {
        /// Capture files, folders, or `-` for standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format: `table` for people, `jsonl` for machines (one JSON object per
        /// exchange; field names are stable).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print counters of what was seen and what was skipped (and why) to stderr.
        #[arg(long)]
        stats: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::from(exit::OK);
            }
            eprintln!("specter: {e:#}");
            ExitCode::from(exit::INPUT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Exchanges {
            paths,
            format,
            stats,
        } => exchanges(&paths, format, stats),
    }
}

/// A progress bar over the bytes of all inputs, shown only to a person at a terminal.
fn progress_bar(inputs: &[Input]) -> Option<ProgressBar> {
    let in_ci = std::env::var_os("CI").is_some();
    if !io::stderr().is_terminal() || in_ci {
        return None;
    }
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    if total < 32 << 20 {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn exchanges(paths: &[PathBuf], format: Format, show_stats: bool) -> anyhow::Result<u8> {
    let (inputs, errors) = inputs::expand(paths);
    let mut failed = !errors.is_empty();
    for e in &errors {
        eprintln!("specter: {e}");
    }
    let stdout = io::stdout().lock();
    let mut writer = ExchangeWriter::new(io::BufWriter::with_capacity(1 << 16, stdout), format);
    let bar = progress_bar(&inputs);
    let mut total = Stats::default();
    let mut done_bytes = 0u64;
    let mut write_error: Option<io::Error> = None;
    let config = Config {
        http: specter::http1::Config {
            // `exchanges` prints lengths, not bodies: keep none.
            max_body: 0,
            ..Default::default()
        },
        ..Config::default()
    };
    for input in &inputs {
        let name = input.name();
        if let Some(bar) = &bar {
            bar.set_message(name.clone());
        }
        let mut sink = |ex: specter::exchange::Exchange| {
            if write_error.is_none() {
                if let Err(e) = writer.write(&ex) {
                    write_error = Some(e);
                }
            }
        };
        let mut on_progress = |n: u64| {
            if let Some(bar) = &bar {
                bar.set_position(done_bytes + n);
            }
        };
        let (stats, result) = match input {
            Input::Stdin => pipeline::run_capture(io::stdin(), config, &mut sink, &mut on_progress),
            Input::File(path) => match std::fs::File::open(path) {
                Ok(f) => pipeline::run_capture(f, config, &mut sink, &mut on_progress),
                Err(e) => {
                    eprintln!("specter: {name}: {e}");
                    failed = true;
                    continue;
                }
            },
        };
        done_bytes += input.size().unwrap_or(0);
        total.merge(&stats);
        if let Err(e) = result {
            let msg = format!("specter: {name}: {e} (packets before it were analysed)");
            match &bar {
                Some(bar) => bar.println(msg),
                None => eprintln!("{msg}"),
            }
            failed = true;
        }
        if let Some(e) = write_error.take() {
            return Err(e.into());
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writer.flush()?;
    if show_stats {
        let mut err = io::stderr().lock();
        write!(err, "{total}")?;
    }
    Ok(if failed { exit::INPUT_ERROR } else { exit::OK })
}
