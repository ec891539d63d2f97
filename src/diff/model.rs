/*!
The report of a diff: what `specter diff --format json` prints (DESIGN.md's contract) and
what every other format is rendered from.
*/

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::endpoints::EndpointView;

/// What kind of gap between spec and traffic a finding is (DESIGN.md's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Shadow,
    Zombie,
    Unobserved,
    Pii,
    Drift,
    Posture,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Shadow,
        Kind::Zombie,
        Kind::Unobserved,
        Kind::Pii,
        Kind::Drift,
        Kind::Posture,
    ];

    /// The name used in reports and in `--fail-on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shadow => "shadow",
            Kind::Zombie => "zombie",
            Kind::Unobserved => "unobserved",
            Kind::Pii => "pii",
            Kind::Drift => "drift",
            Kind::Posture => "posture",
        }
    }

    /// Parses a kind name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How much a finding matters, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// One step up, saturating at critical.
    pub fn raise(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// Where in a spec a finding points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLocation {
    /// The spec file as given on the command line.
    pub file: String,
    /// 1-based line: the operation's method key, or the `paths` key for findings that
    /// belong to the spec but to no operation (shadow endpoints). 0 when unknown.
    pub line: usize,
    /// The path as written in the spec, when the finding is about one operation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spec_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub operation_id: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable fingerprint (16 hex digits) of kind, rule, host, method, path and the
    /// finding's subject (a status code, a field, a parameter): the same gap has the same
    /// id in every run, whatever its counts. Baselines list these.
    pub id: String,
    pub kind: Kind,
    /// The check that fired, `kind.check` (`zombie.deprecated`, `drift.status`,
    /// `pii.url`, `posture.unauthenticated`...): docs/reports.md lists them all.
    pub rule: String,
    pub severity: Severity,
    pub host: String,
    pub method: String,
    /// Full request path with `{name}` parameters, as in the endpoint list.
    pub path: String,
    /// Requests to this endpoint in the window (0 for unobserved).
    pub requests: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<String>,
    /// One sentence for people.
    pub message: String,
    /// What the finding rests on: counts, masked examples, which signal fired.
    pub evidence: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spec: Option<SpecLocation>,
}

/// An observed endpoint with what the specs say of it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportEndpoint {
    #[serde(flatten)]
    pub view: EndpointView,
    /// The spec's path (`/pets/{petId}`) when documented.
    pub spec_path: Option<String>,
    pub operation_id: Option<String>,
    /// The spec file that documents it.
    pub spec: Option<String>,
    pub documented: bool,
    pub deprecated: bool,
}

/// How much the traffic window lets the report claim, for `unobserved` above all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Seconds between the first and last exchange.
    pub seconds: f64,
    /// Analyses (runs) merged into the inventory.
    pub runs: u64,
    pub exchanges: u64,
    /// Capture files that could not be read (in part or whole).
    pub files_failed: u64,
    /// Reassembly gaps (lost segments) and packets the decoder could not use.
    pub gaps: u64,
    /// TLS connections that could not be looked into, by server name (SNI or address).
    pub tls_opaque: BTreeMap<String, u64>,
    /// Sentences for people on what limits the claims (`3 TLS services could not be
    /// looked into`, `the window is 40 seconds long`).
    pub notes: Vec<String>,
}

/// Counts for the report's summary line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Observed endpoints.
    pub endpoints: u64,
    /// Observed endpoints that a spec documents.
    pub documented: u64,
    /// Documented operations across all specs.
    pub operations: u64,
    pub shadow: u64,
    pub zombie: u64,
    pub unobserved: u64,
    pub pii: u64,
    pub drift: u64,
    pub posture: u64,
    /// Findings by severity.
    pub severity: BTreeMap<String, u64>,
    /// Findings left out because a baseline lists them.
    pub suppressed: u64,
}

/// A spec that was given, and whether it loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecInfo {
    pub file: String,
    /// `2.0`, `3.0`, `3.1`; absent when it failed to load.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    pub operations: u64,
    /// Why it could not be used.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// What looked wrong but did not stop it loading.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub specter_version: String,
    pub generated_at: String,
    /// The spec files, as given.
    pub specs: Vec<String>,
    /// Each spec with its version, operation count and errors.
    pub spec_details: Vec<SpecInfo>,
    pub summary: Summary,
    pub window: Window,
    pub endpoints: Vec<ReportEndpoint>,
    /// Sorted by severity (highest first), then kind, host, path, method.
    pub findings: Vec<Finding>,
}
