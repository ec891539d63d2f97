/*!
Baselines: a file listing findings a team has accepted, so `diff` and `ci` report (and
fail on) only new ones. Findings are listed by their stable id, with kind, rule, place and
message so that a person reading the file in review knows what was accepted.
*/

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::Finding;

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub message: String,
}

/// The file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Format version, 1.
    pub specter_baseline: u32,
    pub findings: Vec<Accepted>,
}

/// A baseline that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a specter baseline (line {line}, column {column}): {why}")]
    Format {
        path: PathBuf,
        line: usize,
        column: usize,
        why: String,
    },
}

impl Baseline {
    /// The baseline accepting these findings.
    pub fn of(findings: &[Finding]) -> Baseline {
        Baseline {
            specter_baseline: 1,
            findings: findings
                .iter()
                .map(|f| Accepted {
                    id: f.id.clone(),
                    kind: f.kind.as_str().to_string(),
                    rule: f.rule.clone(),
                    host: f.host.clone(),
                    method: f.method.clone(),
                    path: f.path.clone(),
                    message: f.message.clone(),
                })
                .collect(),
        }
    }

    /// Reads a baseline file.
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| BaselineError::Format {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            why: e.to_string(),
        })
    }

    /// Writes it as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(path, text)
    }

    /// Removes the accepted findings; returns how many were removed.
    pub fn suppress(&self, findings: &mut Vec<Finding>) -> u64 {
        let ids: BTreeSet<&str> = self.findings.iter().map(|a| a.id.as_str()).collect();
        let before = findings.len();
        findings.retain(|f| !ids.contains(f.id.as_str()));
        (before - findings.len()) as u64
    }
}
