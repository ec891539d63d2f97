/*!
The whole job of `specter diff` and `specter ci` after the inventory is at hand: load the
specs (a broken one is reported, the others still count), diff, apply the baseline, write
a new one if asked, and tell which findings match `--fail-on`.
*/

use std::path::PathBuf;

use super::baseline::{Baseline, BaselineError};
use super::model::{Report, SpecInfo};
use super::policy::FailOn;
use super::{diff, recount, Options, Traffic};
use crate::infer::{Config, Inventory};
use crate::spec::SpecSet;

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub diff: Options,
    /// Accepted findings to leave out.
    pub baseline: Option<PathBuf>,
    /// Write every finding (before the baseline is applied) here.
    pub write_baseline: Option<PathBuf>,
    pub fail_on: FailOn,
}

/// The result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    /// Some spec could not be loaded (or none was given that loaded).
    pub spec_failed: bool,
    /// Findings (after the baseline) that match `--fail-on`.
    pub failing: usize,
}

/// Something that stops the check before a report can be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("{path}: cannot write the baseline: {source}")]
    WriteBaseline {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads the specs and diffs the inventory against them.
pub fn check(
    inv: Inventory,
    config: &Config,
    spec_paths: &[PathBuf],
    traffic: &Traffic,
    opts: &CheckOptions,
) -> Result<Outcome, CheckError> {
    let baseline = match &opts.baseline {
        Some(p) => Some(Baseline::read(p)?),
        None => None,
    };
    let set = SpecSet::load(spec_paths);
    let mut details: Vec<SpecInfo> = set
        .specs
        .iter()
        .map(|s| SpecInfo {
            file: s.file.display().to_string(),
            version: Some(s.version.as_str().to_string()),
            title: Some(s.title.clone()),
            operations: s.operations.len() as u64,
            error: None,
            warnings: set
                .warnings
                .iter()
                .filter(|w| w.file == s.file)
                .map(|w| w.to_string())
                .collect(),
        })
        .collect();
    for e in &set.errors {
        details.push(SpecInfo {
            file: e.file().display().to_string(),
            version: None,
            title: None,
            operations: 0,
            error: Some(e.to_string()),
            warnings: Vec::new(),
        });
    }
    let spec_failed = !set.errors.is_empty() || set.specs.is_empty();
    let mut report = diff(inv, config, &set.specs, details, traffic, &opts.diff);
    if let Some(path) = &opts.write_baseline {
        Baseline::of(&report.findings)
            .write(path)
            .map_err(|source| CheckError::WriteBaseline {
                path: path.clone(),
                source,
            })?;
    }
    if let Some(b) = &baseline {
        report.summary.suppressed = b.suppress(&mut report.findings);
        recount(&mut report.summary, &report.findings);
    }
    let failing = report
        .findings
        .iter()
        .filter(|f| opts.fail_on.matches(f))
        .count();
    Ok(Outcome {
        report,
        spec_failed,
        failing,
    })
}
