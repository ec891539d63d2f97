//! Loads spec files or folders and prints what was read: per spec its version, servers
//! and operation count, then every error and warning, and the time taken. For checking
//! a spec by hand and for measuring the loader:
//! `cargo run --release --example spec_stats -- openapi.yaml`.

use std::path::PathBuf;
use std::process::ExitCode;

use specter::spec::SpecSet;

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let started = std::time::Instant::now();
    let set = SpecSet::load(&paths);
    let took = started.elapsed();
    for s in &set.specs {
        let schemas: usize = s.operations.iter().map(|o| o.responses.len()).sum();
        println!(
            "{}: {} {} ({}), {} servers, {} operations, {} responses",
            s.file.display(),
            s.title,
            s.api_version,
            s.version.as_str(),
            s.servers.len(),
            s.operations.len(),
            schemas
        );
    }
    for e in &set.errors {
        println!("error: {e}");
    }
    for w in &set.warnings {
        println!("warning: {w}");
    }
    println!("loaded in {took:?}");
    if set.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
