//! The `specter` command line. Only argument handling and output live here; the work is
//! done by the library.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use specter::analysis::{now_text, open_inventory, Analysis};
use specter::diff::check::{check, CheckOptions, Outcome};
use specter::diff::policy::FailOn;
use specter::diff::{Options, Traffic};
use specter::exchange::Exchange;
use specter::infer::{self, Inventory, Observed};
use specter::inputs::{self, Input};
use specter::output::{ExchangeWriter, Format};
use specter::pipeline::{self, Config};
use specter::report::findings::{self, ReportFormat};
use specter::report::{endpoints, openapi};
use specter::stats::Stats;
use specter::store::MergedFrom;
use specter::tls::keylog::KeyLog;

mod sensor_cli;

/// Exit codes (DESIGN.md): 0 clean, 1 findings matched --fail-on, 2 usage or input error.
mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
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
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Print counters of what was seen and what was skipped (and why) to stderr.
        #[arg(long)]
        stats: bool,
    },
    /// Learn the API inventory from captures: endpoints, parameters, schemas, auth, PII.
    ///
    /// Reads captures like `exchanges` and merges what they show into the inventory (a
    /// SQLite file, created if missing, or a PostgreSQL database that other analyses and
    /// sensors may write at the same time): path templates (`/users/{userId}`), query
    /// parameters, JSON schemas of sampled bodies, authentication schemes (never the
    /// secrets), sensitive data (masked samples and counts only), and TLS services that
    /// could not be looked into. Analysing more captures later adds to the inventory; the
    /// result does not depend on the order captures are read. Each run is recorded in the
    /// inventory's `runs` table with what it saw and skipped.
    Analyze {
        /// Capture files, folders, or `-` for standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        db: DbArg,
        /// Path hints, one per line: `/files/{path*}` makes the rest of the path one
        /// parameter, `/teams/{team}` forces a parameter, `/users/new` keeps a literal.
        /// Hints are stored in the inventory and apply from this run on.
        #[arg(long, value_name = "FILE")]
        hints: Option<PathBuf>,
        /// OpenAPI (3.x) or Swagger (2.0) specs, JSON or YAML: their path templates are
        /// matched first, so documented endpoints take the spec's form and parameter
        /// names (`/pets/{petId}`). Not stored: give them again to later runs.
        #[arg(long, value_name = "FILE")]
        spec: Vec<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Print counters of what was seen and what was skipped (and why) to stderr.
        #[arg(long)]
        stats: bool,
    },
    /// List the endpoints of the inventory.
    ///
    /// One line per endpoint: host, method, path template, requests, first and last
    /// seen, status codes, authentication schemes, kinds of sensitive data and how sure
    /// the templating is. `--format json` prints `{"endpoints": [...]}` with parameters,
    /// their evidence, query parameters, content types and where sensitive data was seen.
    Endpoints {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only this host (as in the HOST column).
        #[arg(long)]
        host: Option<String>,
        /// Only this method.
        #[arg(long)]
        method: Option<String>,
    },
    /// Write the inventory as an OpenAPI 3.0 document (JSON).
    ///
    /// Paths with parameters, query parameters, request bodies and responses with the
    /// JSON schemas inferred from traffic, and security schemes for the credentials seen.
    #[command(name = "export-openapi")]
    ExportOpenapi {
        #[command(flatten)]
        db: DbArg,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Compare the inventory with the specs: shadow, zombie, unobserved, PII, drift and
    /// posture findings, with evidence.
    ///
    /// Each observed endpoint is matched to a documented operation (host against the
    /// spec's servers, then the path with OpenAPI's precedence). shadow: called, in no
    /// spec. zombie: called while deprecated, superseded by a later version, or while its
    /// responses announce retirement (Deprecation/Sunset). unobserved: documented, never
    /// called, claimed only where traffic reached the host. pii: personal or secret data
    /// where the spec does not declare it. drift: status codes, query parameters and fields
    /// the spec does not document, wrong types, missing required parameters. posture:
    /// documented security not enforced, Basic over cleartext, credentials in URLs,
    /// unsigned JWTs. Exit 0 clean, 1 findings matched --fail-on, 2 usage or input error
    /// (a spec that did not load included).
    Diff {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Watch live traffic for weeks: capture, learn the inventory, flush it regularly.
    ///
    /// Captures from network interfaces (libpcap; this build needs cargo feature `live`)
    /// or reads capture streams (`-r -` for standard input, e.g. `tcpdump -w - | specter
    /// sensor -r -`), runs them through the same pipeline as `analyze` into the same
    /// inventory, and writes it every --flush-interval in one transaction: a crash loses
    /// at most one interval, and a restarted sensor carries on with the same inventory.
    /// SIGINT and SIGTERM drain the capture, write the inventory and exit 0; SIGHUP
    /// reopens --log-file. A status line (packets/s, Mbit/s, flows, exchanges/s,
    /// endpoints, kernel and interface drops, memory against the budget) is shown on a
    /// terminal; otherwise a structured log line is written at each flush. Memory stays
    /// within --max-memory: the caps of flows, buffers and kept bodies derive from it, and
    /// near it the least recently active flows are shed (and counted). See
    /// docs/deploy.md for running it as a service.
    Sensor {
        /// A network interface to capture from; repeat for several (each has its own
        /// capture thread, all feed one inventory).
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        interfaces: Vec<String>,
        /// A pcap or pcapng stream to read instead (`-` is standard input); repeatable.
        #[arg(short = 'r', long = "read", value_name = "FILE")]
        read: Vec<PathBuf>,
        /// A BPF capture filter (tcpdump syntax) for the interfaces, e.g. `tcp port 80 or
        /// tcp port 8080`.
        #[arg(long, value_name = "BPF")]
        filter: Option<String>,
        /// Bytes captured of each packet.
        #[arg(long, default_value_t = 65535, value_name = "BYTES")]
        snaplen: u32,
        /// Kernel capture buffer per interface (part of the memory budget), e.g. `32M`.
        #[arg(long, default_value = "32M", value_name = "SIZE")]
        buffer_size: String,
        #[command(flatten)]
        db: DbArg,
        /// Time between writes of the inventory, e.g. `30s`, `500ms`, `5m`.
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        flush_interval: String,
        /// The memory the sensor may use, e.g. `256M`, `2G` (at least 32M).
        #[arg(long, default_value = "256M", value_name = "SIZE")]
        max_memory: String,
        /// Path hints, as for `analyze`.
        #[arg(long, value_name = "FILE")]
        hints: Option<PathBuf>,
        /// Specs whose templates are matched first, as for `analyze`.
        #[arg(long, value_name = "FILE")]
        spec: Vec<PathBuf>,
        /// Write log lines here (appended; SIGHUP reopens it) instead of standard error.
        #[arg(long, value_name = "FILE")]
        log_file: Option<PathBuf>,
        /// NSS key log (SSLKEYLOGFILE) to decrypt TLS with; re-read every second for the
        /// lines clients append (docs/tls.md).
        #[arg(long, value_name = "FILE")]
        keylog: Option<PathBuf>,
        /// Analysis threads: connections are spread over them by a hash of their
        /// addresses (both directions of a connection land on the same one, whatever
        /// interface each came from); the main loop decodes packets and updates the
        /// inventory. 1 runs everything on the main loop. Default: the number of cores.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// At exit, print counters of what was seen and what was skipped (and why).
        #[arg(long)]
        stats: bool,
    },
    /// One step for CI: analyse captures into a throw-away inventory, compare with the
    /// specs, report, and exit 1 when findings match --fail-on.
    ///
    /// Nothing is written but the report (and --write-baseline). The default --fail-on is
    /// `shadow,zombie,pii:high,posture:high`. Exit 0 clean, 1 findings matched, 2 usage or
    /// input error (an unreadable capture or spec).
    Ci {
        /// Capture files, folders, or `-` for standard input.
        #[arg(required = true, value_name = "PCAP")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Merge inventories into another: a sensor's that was offline into the central one.
    ///
    /// Each source (a SQLite file or a PostgreSQL URL) is added to the target as one more
    /// batch: counts add, first and last seen take the earliest and latest, schemas and
    /// samples merge as in an analysis, and the source's runs are copied with their
    /// origin. Merging the same source again changes nothing: a source whose runs are all
    /// in the target already is skipped. The result is the same whatever the order.
    Merge {
        /// An inventory to merge from (repeat for several).
        #[arg(long = "from", required = true, value_name = "FILE|URL")]
        from: Vec<PathBuf>,
        /// The inventory merged into (created if missing).
        #[arg(long, required = true, value_name = "FILE|URL")]
        into: PathBuf,
    },
    /// Retention: delete the inventory's run records that finished before a date.
    ///
    /// The inventory keeps everything those runs taught it; `diff` qualifies its claims
    /// with the runs that remain. Runs copied in by `merge` are kept: they are how a
    /// second merge of the same source is recognised.
    Prune {
        #[command(flatten)]
        db: DbArg,
        /// Delete runs that finished before this time (RFC 3339, UTC: `2026-01-01` or
        /// `2026-01-01T12:00:00Z`).
        #[arg(long, value_name = "DATE")]
        runs_before: String,
    },
}

/// What `diff` and `ci` compare against and how they report.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// OpenAPI 3.0/3.1 or Swagger 2.0 specs (JSON or YAML), or folders of them: one per
    /// service is fine. A spec that cannot be read is reported; the others still count.
    #[arg(long, required = true, value_name = "FILE")]
    spec: Vec<PathBuf>,
    /// `text` for people (colour on a terminal unless NO_COLOR is set), `json` (stable
    /// fields, docs/report.schema.json), `markdown` (a pull-request comment), `sarif`
    /// (GitHub code scanning), `junit` (one test case per endpoint), `html` (one
    /// self-contained page).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 1 when a finding matches: comma-separated `KIND[:SEVERITY]` (kinds shadow,
    /// zombie, unobserved, pii, drift, posture or `any`; the severity is the lowest that
    /// counts: info, low, medium, high, critical), e.g. `shadow,zombie,pii:high`; `none`
    /// never fails. Default: `none` for diff, `shadow,zombie,pii:high,posture:high` for ci.
    #[arg(long, value_name = "KINDS")]
    fail_on: Option<String>,
    /// Leave out the findings this baseline file lists (accepted ones), so only new
    /// findings are reported and can fail the run.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write every finding of this run to a baseline file (before --baseline applies).
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Also compare endpoints on hosts that no spec serves (reported as shadow). By
    /// default they are left out as another service's, and the report says how many.
    #[arg(long)]
    all_hosts: bool,
}

/// How captures are read: decryption keys, threads, memory.
#[derive(clap::Args, Debug)]
struct PipelineArgs {
    /// TLS session keys in the NSS key log format (what SSLKEYLOGFILE makes browsers,
    /// curl and OpenSSL write): TLS connections with keys are decrypted and their HTTP
    /// read. Secrets embedded in pcapng files are used without it.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// Analysis threads: connections are spread over them by a hash of their addresses
    /// (a reader thread decodes packets, the caller's thread puts exchanges back in
    /// order). The output is the same for any number, unless the flow cap is reached
    /// (each thread holds its share of it). Default: the number of cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// The memory the pipeline may hold, e.g. `256M`, `2G` (at least 32M): the caps of
    /// flows, out-of-order buffers, kept heads and bodies, IP fragments and exchanges
    /// waiting to be ordered all derive from it (256M: 32 768 flows, 32 KiB out of order
    /// per direction, 32 MiB of heads and bodies; docs/performance.md). What a cap drops
    /// is counted in --stats. The inventory `analyze` builds comes on top.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    max_memory: String,
}

impl PipelineArgs {
    /// The pipeline's caps: `base` (what the command needs of bodies), within --max-memory.
    fn config(&self, base: Config) -> anyhow::Result<Config> {
        let text = &self.max_memory;
        let bytes = specter::sensor::units::parse_size(text)
            .map_err(|e| anyhow::anyhow!("--max-memory {e}"))?;
        if bytes < pipeline::MIN_MEMORY_BUDGET {
            anyhow::bail!(
                "--max-memory {text}: at least {} MiB are needed to follow real traffic",
                pipeline::MIN_MEMORY_BUDGET >> 20
            );
        }
        let mut config = Config::with_memory_budget(bytes);
        config.http.max_body = config.http.max_body.min(base.http.max_body);
        config.http.defer_decoding = base.http.defer_decoding;
        Ok(config)
    }

    fn threads(&self) -> usize {
        default_threads(self.threads)
    }
}

/// `--threads`, or the number of cores.
fn default_threads(threads: Option<u16>) -> usize {
    match threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// The inventory: a SQLite file or a PostgreSQL database.
#[derive(clap::Args, Debug)]
struct DbArg {
    /// The inventory: a SQLite file (created if missing) or a PostgreSQL database
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, shared by several sensors).
    #[arg(long, value_name = "FILE|URL", default_value = "specter.db")]
    db: PathBuf,
}

/// Output formats of `specter endpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ListFormat {
    Table,
    Json,
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
            pipeline,
            stats,
        } => exchanges(&paths, format, &pipeline, stats),
        Command::Analyze {
            paths,
            db,
            hints,
            spec,
            pipeline,
            stats,
        } => analyze(&paths, &db.db, hints.as_deref(), &spec, &pipeline, stats),
        Command::Endpoints {
            db,
            format,
            host,
            method,
        } => list_endpoints(&db.db, format, endpoints::Filter { host, method }),
        Command::ExportOpenapi { db, output, host } => {
            export_openapi(&db.db, output.as_deref(), host.as_deref())
        }
        Command::Diff { db, report } => diff(&db.db, &report),
        Command::Ci {
            paths,
            pipeline,
            report,
        } => ci(&paths, &pipeline, &report),
        Command::Merge { from, into } => merge(&from, &into),
        Command::Prune { db, runs_before } => prune(&db.db, &runs_before),
        Command::Sensor {
            interfaces,
            read,
            filter,
            snaplen,
            buffer_size,
            db,
            flush_interval,
            max_memory,
            hints,
            spec,
            log_file,
            keylog,
            threads,
            stats,
        } => sensor_cli::run(sensor_cli::Args {
            interfaces,
            read,
            filter,
            snaplen,
            buffer_size,
            db: db.db,
            flush_interval,
            max_memory,
            hints,
            spec,
            log_file,
            keylog,
            threads: default_threads(threads),
            stats,
        }),
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

/// What a batch of inputs gave.
struct Batch {
    stats: Stats,
    failed: bool,
    /// Each input with `ok` or its error.
    results: Vec<(String, String)>,
}

/// Runs every input through the pipeline; exchanges go to `sink`. A broken input is
/// reported and the rest still run. `sink` returns an error to stop (a closed pipe).
fn run_inputs(
    paths: &[PathBuf],
    base: Config,
    args: &PipelineArgs,
    sink: &mut dyn FnMut(&Exchange) -> io::Result<()>,
) -> anyhow::Result<Batch> {
    let config = args.config(base)?;
    let threads = args.threads();
    let keylog = args.keylog.as_deref();
    let (inputs, errors) = inputs::expand(paths);
    let mut batch = Batch {
        stats: Stats::default(),
        failed: !errors.is_empty(),
        results: Vec::new(),
    };
    let keylog = match keylog {
        Some(file) => {
            let log = KeyLog::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if let Some((line, why)) = log.bad_lines.first() {
                eprintln!(
                    "specter: {}: {} lines not read (the first at line {line}: {})",
                    file.display(),
                    log.bad,
                    why.as_str()
                );
            }
            batch.stats.tls_keylog_bad_lines += log.bad;
            Some(std::sync::Arc::new(log))
        }
        None => None,
    };
    for e in &errors {
        eprintln!("specter: {e}");
        batch.results.push((e.clone(), e.clone()));
    }
    let bar = progress_bar(&inputs);
    let mut done_bytes = 0u64;
    let mut sink_error: Option<io::Error> = None;
    for input in &inputs {
        let name = input.name();
        if let Some(bar) = &bar {
            bar.set_message(name.clone());
        }
        let mut each = |ex: &Exchange| {
            if sink_error.is_none() {
                if let Err(e) = sink(ex) {
                    sink_error = Some(e);
                }
            }
        };
        let mut on_progress = |n: u64| {
            if let Some(bar) = &bar {
                bar.set_position(done_bytes + n);
            }
        };
        let (stats, result) = match input {
            Input::Stdin => pipeline::run_capture_with_keys(
                io::stdin(),
                config,
                keylog.clone(),
                threads,
                &mut each,
                &mut on_progress,
            ),
            Input::File(path) => match std::fs::File::open(path) {
                Ok(f) => pipeline::run_capture_with_keys(
                    f,
                    config,
                    keylog.clone(),
                    threads,
                    &mut each,
                    &mut on_progress,
                ),
                Err(e) => {
                    eprintln!("specter: {name}: {e}");
                    batch.failed = true;
                    batch.results.push((name, e.to_string()));
                    continue;
                }
            },
        };
        done_bytes += input.size().unwrap_or(0);
        batch.stats.merge(&stats);
        match result {
            Err(e) => {
                let msg = format!("specter: {name}: {e} (packets before it were analysed)");
                match &bar {
                    Some(bar) => bar.println(msg),
                    None => eprintln!("{msg}"),
                }
                batch.failed = true;
                batch.results.push((name, e.to_string()));
            }
            Ok(()) => batch.results.push((name, "ok".into())),
        }
        if let Some(e) = sink_error.take() {
            return Err(e.into());
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(batch)
}

fn exchanges(
    paths: &[PathBuf],
    format: Format,
    pipeline: &PipelineArgs,
    show_stats: bool,
) -> anyhow::Result<u8> {
    let stdout = io::stdout().lock();
    let mut writer = ExchangeWriter::new(io::BufWriter::with_capacity(1 << 16, stdout), format);
    let config = Config {
        http: specter::http1::Config {
            // `exchanges` prints lengths, not bodies: keep none.
            max_body: 0,
            ..Default::default()
        },
        ..Config::default()
    };
    let batch = run_inputs(paths, config, pipeline, &mut |ex| writer.write(ex))?;
    writer.flush()?;
    if show_stats {
        let mut err = io::stderr().lock();
        write!(err, "{}", batch.stats)?;
    }
    Ok(if batch.failed {
        exit::INPUT_ERROR
    } else {
        exit::OK
    })
}

/// The pipeline as inference wants it: only sampled bodies are decoded, by inference.
fn analysis_pipeline() -> Config {
    Config {
        http: specter::http1::Config {
            defer_decoding: true,
            ..Default::default()
        },
        ..Config::default()
    }
}

fn analyze(
    paths: &[PathBuf],
    db: &Path,
    hints: Option<&Path>,
    specs: &[PathBuf],
    pipeline: &PipelineArgs,
    show_stats: bool,
) -> anyhow::Result<u8> {
    let (mut analysis, spec_errors) = Analysis::open(db, hints, specs)?;
    // A spec that cannot be read is reported (with the others' findings at the end) and
    // the run goes on: its templates are only a help to templating.
    for e in &spec_errors {
        eprintln!("specter: {e}");
    }
    let batch = run_inputs(paths, analysis_pipeline(), pipeline, &mut |ex| {
        analysis.observe(ex);
        Ok(())
    })?;
    let write_started = std::time::Instant::now();
    let saved = analysis.save(
        std::env::args().collect::<Vec<_>>().join(" "),
        batch.results.clone(),
        batch.stats.clone(),
    )?;
    if std::env::var_os("SPECTER_TIMING").is_some() {
        // For benches/fleet.sh: the merge transaction, lock wait included.
        eprintln!(
            "specter: write transaction {:.1} ms, {} rows written",
            write_started.elapsed().as_secs_f64() * 1e3,
            saved.rows_written
        );
    }
    let observed = &saved.observed;
    let name = analysis.store().name().to_string();
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "specter: run {}: {} exchanges from {} files; inventory {}: {} endpoints on {} hosts ({} new), {} TLS services",
        saved.run_id,
        observed.exchanges,
        batch.stats.files,
        name,
        saved.endpoints.len(),
        saved.hosts,
        saved.new,
        saved.inventory.tls.len(),
    )?;
    if !observed.skipped.is_empty() {
        let skipped: Vec<String> = observed
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(err, "specter: not inventoried: {}", skipped.join(", "))?;
    }
    for (path, why) in &saved.folds {
        writeln!(
            err,
            "specter: {path}: words folded into one parameter ({})",
            why.as_str()
        )?;
    }
    if !specs.is_empty() {
        let opts = CheckOptions {
            diff: Options {
                generated_at: now_text(),
                ..Default::default()
            },
            ..Default::default()
        };
        let traffic = analysis.store().traffic()?;
        let outcome = check(saved.inventory, &analysis.config, specs, &traffic, &opts)?;
        for s in &outcome.report.spec_details {
            for w in &s.warnings {
                writeln!(err, "specter: warning: {w}")?;
            }
        }
        writeln!(
            err,
            "specter: against the specs: {}",
            summary_line(&outcome)
        )?;
        writeln!(
            err,
            "specter: `specter diff --spec {} --db {}` shows the findings",
            specs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" --spec "),
            name
        )?;
    }
    if show_stats {
        write!(err, "{}", batch.stats)?;
    }
    Ok(if batch.failed || !spec_errors.is_empty() {
        exit::INPUT_ERROR
    } else {
        exit::OK
    })
}

fn existing(db: &Path) -> anyhow::Result<()> {
    if !specter::store::is_url(db) && !db.exists() {
        anyhow::bail!(
            "{}: no inventory here; build one with `specter analyze CAPTURE... --db {}`",
            db.display(),
            db.display()
        );
    }
    Ok(())
}

fn list_endpoints(db: &Path, format: ListFormat, filter: endpoints::Filter) -> anyhow::Result<u8> {
    existing(db)?;
    let (store, config) = open_inventory(db)?;
    let inv = store.load()?;
    let views = endpoints::views(&inv, &config, &filter);
    let mut out = io::BufWriter::new(io::stdout().lock());
    match format {
        ListFormat::Table => endpoints::write_table(&mut out, &views)?,
        ListFormat::Json => endpoints::write_json(&mut out, &views)?,
    }
    out.flush()?;
    Ok(exit::OK)
}

fn export_openapi(db: &Path, output: Option<&Path>, host: Option<&str>) -> anyhow::Result<u8> {
    existing(db)?;
    let (store, config) = open_inventory(db)?;
    let inv = store.load()?;
    let doc = openapi::document(&inv, &config, host);
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    match output {
        Some(p) => std::fs::write(p, text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(exit::OK)
}

impl ReportArgs {
    fn options(&self, default_fail_on: &str) -> anyhow::Result<CheckOptions> {
        let fail_on = FailOn::parse(self.fail_on.as_deref().unwrap_or(default_fail_on))
            .map_err(|e| anyhow::anyhow!("--fail-on: {e}"))?;
        Ok(CheckOptions {
            diff: Options {
                all_hosts: self.all_hosts,
                generated_at: now_text(),
            },
            baseline: self.baseline.clone(),
            write_baseline: self.write_baseline.clone(),
            fail_on,
        })
    }
}

/// Writes the report where asked and turns the outcome into the exit code.
fn finish_report(outcome: &Outcome, args: &ReportArgs) -> anyhow::Result<u8> {
    for s in &outcome.report.spec_details {
        if let Some(e) = &s.error {
            eprintln!("specter: {e}");
        }
        for w in &s.warnings {
            eprintln!("specter: warning: {w}");
        }
    }
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut out = io::BufWriter::new(file);
            findings::write(&outcome.report, args.format, &mut out, false)?;
            out.flush()?;
            eprintln!("specter: {}", summary_line(outcome));
        }
        None => {
            let colour = findings::use_colour(io::stdout().is_terminal());
            let mut out = io::BufWriter::new(io::stdout().lock());
            findings::write(&outcome.report, args.format, &mut out, colour)?;
            out.flush()?;
        }
    }
    Ok(if outcome.spec_failed {
        exit::INPUT_ERROR
    } else if outcome.failing > 0 {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// `12 endpoints (9 documented): 3 shadow, 1 zombie, ...; 2 match --fail-on`.
fn summary_line(outcome: &Outcome) -> String {
    let s = &outcome.report.summary;
    let kinds = [
        ("shadow", s.shadow),
        ("zombie", s.zombie),
        ("unobserved", s.unobserved),
        ("pii", s.pii),
        ("drift", s.drift),
        ("posture", s.posture),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!(
        "{} endpoints ({} documented of {} operations): {}{}{}",
        s.endpoints,
        s.documented,
        s.operations,
        if parts.is_empty() {
            "no findings".to_string()
        } else {
            parts.join(", ")
        },
        if s.suppressed > 0 {
            format!(" ({} accepted by the baseline)", s.suppressed)
        } else {
            String::new()
        },
        if outcome.failing > 0 {
            format!("; {} match --fail-on", outcome.failing)
        } else {
            String::new()
        }
    )
}

fn diff(db: &Path, args: &ReportArgs) -> anyhow::Result<u8> {
    existing(db)?;
    let opts = args.options("none")?;
    let (store, config) = open_inventory(db)?;
    let inv = store.load()?;
    let traffic = store.traffic()?;
    let outcome = check(inv, &config, &args.spec, &traffic, &opts)?;
    finish_report(&outcome, args)
}

fn ci(paths: &[PathBuf], pipeline: &PipelineArgs, args: &ReportArgs) -> anyhow::Result<u8> {
    let opts = args.options(FailOn::CI_DEFAULT)?;
    let mut config = infer::Config {
        salt: specter::store::new_salt().into_bytes(),
        ..Default::default()
    };
    for file in &args.spec {
        // A spec that cannot be read is reported by the check below.
        if let Ok(hints) = specter::spec::hints(file) {
            config.hints.extend(hints);
        }
    }
    let mut inv = Inventory::default();
    let mut observed = Observed::default();
    let batch = run_inputs(paths, analysis_pipeline(), pipeline, &mut |ex| {
        inv.observe(ex, &config, &mut observed);
        Ok(())
    })?;
    let traffic = Traffic::of_run(&batch.stats, &observed);
    let outcome = check(inv, &config, &args.spec, &traffic, &opts)?;
    let code = finish_report(&outcome, args)?;
    Ok(if batch.failed {
        exit::INPUT_ERROR
    } else {
        code
    })
}

fn merge(from: &[PathBuf], into: &Path) -> anyhow::Result<u8> {
    for source in from {
        existing(source)?;
    }
    let (target, config) = open_inventory(into)?;
    let salt = target.salt()?;
    let mut err = io::stderr().lock();
    for path in from {
        let source = specter::store::Store::open(path)?;
        let name = source.name().to_string();
        if source.salt()? != salt {
            writeln!(
                err,
                "specter: {name}: its callers were counted with another salt than {}'s: a caller seen by both is counted twice in the distinct counts",
                target.name()
            )?;
        }
        match target.merge_from(&source, &config)? {
            MergedFrom::Empty => writeln!(err, "specter: {name}: no runs, nothing to merge")?,
            MergedFrom::AlreadyMerged { runs } => writeln!(
                err,
                "specter: {name}: its {runs} runs were merged into {} before; skipped",
                target.name()
            )?,
            MergedFrom::Merged(m) => {
                let hosts: std::collections::BTreeSet<&str> =
                    m.endpoints.iter().map(|(h, _)| h.as_str()).collect();
                writeln!(
                    err,
                    "specter: merged {name} ({} runs) into {}: {} endpoints on {} hosts ({} new)",
                    m.run_ids.len(),
                    target.name(),
                    m.endpoints.len(),
                    hosts.len(),
                    m.new
                )?;
            }
        }
    }
    Ok(exit::OK)
}

fn prune(db: &Path, before: &str) -> anyhow::Result<u8> {
    let valid = before.len() >= 10
        && chrono::NaiveDate::parse_from_str(&before[..10], "%Y-%m-%d").is_ok()
        && before.is_ascii();
    if !valid {
        anyhow::bail!("--runs-before {before}: not a date (2026-01-01 or 2026-01-01T12:00:00Z)");
    }
    existing(db)?;
    let store = specter::store::Store::open(db)?;
    let n = store.prune_runs(before)?;
    eprintln!(
        "specter: {}: {n} runs that finished before {before} deleted",
        store.name()
    );
    Ok(exit::OK)
}

/// mimalloc (version 2, bundled C like SQLite): once a process has threads, glibc's
/// allocator takes a lock on most allocations and on every free from another thread, and
/// exchanges are built on the shard threads and freed on the one that orders them.
/// Measured on the 1 GB benchmark with `--threads 2`: a fifth less CPU time than glibc,
/// at 50 MB of peak RSS instead of 28 MB (mimalloc 3: 85 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
