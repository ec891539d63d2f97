/*!
A diff [`Report`] rendered for people and machines: `specter diff --format
text|json|markdown|sarif|junit|html` (docs/reports.md describes each).

Every writer reads the same [`Report`] and nothing else, so the formats agree: the JSON is
the report itself (DESIGN.md's contract, described by `docs/report.schema.json`), the others
are views of it. Paths, hosts and messages come from traffic and are treated as hostile:
each writer escapes them for its format (terminal control characters, Markdown and HTML
markup, XML).
*/

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::diff::model::{Finding, Kind, Report, Severity, SpecInfo, Window};

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
#[doc(hidden)]
pub mod sample;
pub mod sarif;
pub mod text;

/// The report formats of `specter diff --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A summary and a table for a terminal.
    Text,
    /// The report itself (docs/report.schema.json).
    Json,
    /// A pull-request comment.
    Markdown,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// JUnit XML, one test case per endpoint.
    Junit,
    /// One self-contained HTML page, sortable and filterable.
    Html,
}

impl ReportFormat {
    /// The usual file extension for `-o`, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Text => "txt",
            ReportFormat::Json => "json",
            ReportFormat::Markdown => "md",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Junit => "xml",
            ReportFormat::Html => "html",
        }
    }
}

/// Writes `report` in `format`. `colour` turns on ANSI colour in the text format (the
/// others ignore it): pass [`use_colour`] of whether the output is a terminal.
pub fn write(
    report: &Report,
    format: ReportFormat,
    out: &mut dyn Write,
    colour: bool,
) -> io::Result<()> {
    match format {
        ReportFormat::Text => text::write(report, out, colour),
        ReportFormat::Json => json::write(report, out),
        ReportFormat::Markdown => markdown::write(report, out),
        ReportFormat::Sarif => sarif::write(report, out),
        ReportFormat::Junit => junit::write(report, out),
        ReportFormat::Html => html::write(report, out),
    }
}

/// Whether the text report should be coloured: only on a terminal, and never when the
/// `NO_COLOR` environment variable is set to anything but the empty string
/// (<https://no-color.org>). Callers pass `std::io::stdout().is_terminal()` (or false
/// when writing to a file with `-o`).
pub fn use_colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Counts of findings by severity, highest first, zero counts left out.
pub(crate) fn severity_counts(findings: &[Finding]) -> Vec<(Severity, u64)> {
    Severity::ALL
        .into_iter()
        .rev()
        .map(|s| {
            (
                s,
                findings.iter().filter(|f| f.severity == s).count() as u64,
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Counts of findings by kind, in [`Kind::ALL`]'s order, zero counts included.
pub(crate) fn kind_counts(findings: &[Finding]) -> Vec<(Kind, u64)> {
    Kind::ALL
        .into_iter()
        .map(|k| (k, findings.iter().filter(|f| f.kind == k).count() as u64))
        .collect()
}

/// The findings, most severe first; the report's own order within one severity.
pub(crate) fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// One line saying what the report concludes: `7 findings: 1 critical, 2 high` or
/// `no findings`.
pub(crate) fn verdict(report: &Report) -> String {
    let n = report.findings.len();
    if n == 0 {
        return "no findings".into();
    }
    let parts: Vec<String> = severity_counts(&report.findings)
        .iter()
        .map(|(s, c)| format!("{c} {}", s.as_str()))
        .collect();
    format!("{n} finding{}: {}", plural(n as u64), parts.join(", "))
}

pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A duration for people: `40 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
pub(crate) fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// The traffic window in one line: when, how long, how much.
pub(crate) fn window_line(w: &Window) -> String {
    let when = match (&w.first_seen, &w.last_seen) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "no traffic".to_string(),
    };
    format!(
        "{when} ({}, {} exchange{}, {} run{})",
        duration(w.seconds),
        w.exchanges,
        plural(w.exchanges),
        w.runs,
        plural(w.runs)
    )
}

/// What limits the window's claims: failed files, gaps, TLS not looked into, then the
/// diff's own notes. Empty when the capture was healthy.
pub(crate) fn health_notes(w: &Window) -> Vec<String> {
    let mut notes = Vec::new();
    if w.files_failed > 0 {
        notes.push(format!(
            "{} capture file{} could not be read in full",
            w.files_failed,
            plural(w.files_failed)
        ));
    }
    if w.gaps > 0 {
        notes.push(format!(
            "{} reassembly gap{} or undecodable packet{}",
            w.gaps,
            plural(w.gaps),
            plural(w.gaps)
        ));
    }
    if !w.tls_opaque.is_empty() {
        let list: Vec<String> = w
            .tls_opaque
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        notes.push(format!(
            "TLS not looked into (connections): {}",
            list.join(", ")
        ));
    }
    notes.extend(w.notes.iter().cloned());
    notes
}

/// A spec's state in one phrase: `OpenAPI 3.0 "Petstore", 12 operations` or
/// `failed: <why>`.
pub(crate) fn spec_status(s: &SpecInfo) -> String {
    if let Some(e) = &s.error {
        return format!("failed: {e}");
    }
    let mut t = match s.version.as_deref() {
        Some(v) if v.starts_with('2') => format!("Swagger {v}"),
        Some(v) => format!("OpenAPI {v}"),
        None => "spec".to_string(),
    };
    if let Some(title) = &s.title {
        let _ = write!(t, " \"{title}\"");
    }
    let _ = write!(t, ", {} operation{}", s.operations, plural(s.operations));
    t
}

/// The finding's evidence as indented JSON, cut after `max` characters.
pub(crate) fn evidence_text(f: &Finding, max: usize) -> String {
    let s = serde_json::to_string_pretty(&f.evidence).unwrap_or_default();
    truncate(&s, max)
}

/// `s` with `<`, `>` and `&` written as entities, as every markup format wants, and every
/// other character handed to `other`, which writes it as its format needs.
pub(crate) fn escape_markup(s: &str, mut other: impl FnMut(char, &mut String)) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => other(c, &mut out),
        }
    }
    out
}

/// `s` cut to at most `max` characters, ending with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// `kind.check` made readable: `drift.status` → `drift: status`.
pub(crate) fn rule_title(rule: &str) -> String {
    match rule.split_once('.') {
        Some((kind, check)) => format!("{kind}: {}", check.replace(['_', '-', '.'], " ")),
        None => rule.to_string(),
    }
}

/// What a kind of finding means (DESIGN.md's words), for rule descriptions and help.
pub(crate) fn kind_description(kind: Kind) -> &'static str {
    match kind {
        Kind::Shadow => {
            "Shadow endpoint: observed in traffic, absent from every spec given. Undocumented \
             endpoints escape review, testing and security controls."
        }
        Kind::Zombie => {
            "Zombie endpoint: still called although the spec deprecates it, a newer API \
             version superseded it, or its own responses announce retirement \
             (Deprecation / Sunset headers)."
        }
        Kind::Unobserved => {
            "Unobserved operation: documented but never seen in the traffic window. The claim \
             is qualified by the window's length, the traffic that reached the host and the \
             capture's health."
        }
        Kind::Pii => {
            "Personal or secret data (emails, phone numbers, card numbers, national ids, \
             IBANs, tokens, keys) in responses, URLs or headers, where the spec does not \
             declare it, over cleartext, or without authentication."
        }
        Kind::Drift => {
            "Drift: the endpoint is documented, but the status codes, parameters or fields \
             seen in traffic differ from the spec."
        }
        Kind::Posture => {
            "Posture: what traffic shows about protection: documented security not enforced, \
             Basic auth or tokens over cleartext, tokens in URLs, JWT alg none."
        }
    }
}

/// What to do about a kind of finding.
pub(crate) fn kind_help(kind: Kind) -> &'static str {
    match kind {
        Kind::Shadow => {
            "Document the endpoint in the spec if it is meant to exist, or remove or block \
             it if it is not."
        }
        Kind::Zombie => {
            "Find the callers (the evidence names counts and signals), move them to the \
             supported version, then retire the endpoint."
        }
        Kind::Unobserved => {
            "Check whether the operation is still needed; remove it from the spec and the \
             service if not. Widen the capture window first if the window was short."
        }
        Kind::Pii => {
            "Stop sending the data, mask it, move it out of URLs, require authentication and \
             TLS, or declare the field in the spec if it is intended."
        }
        Kind::Drift => "Update the spec or the implementation so that they agree.",
        Kind::Posture => {
            "Enforce the documented security scheme, use TLS, send tokens in headers rather \
             than URLs, and reject unsigned JWTs."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_writes_the_sample() {
        use clap::ValueEnum;
        let r = sample::report();
        for f in ReportFormat::value_variants() {
            let mut out = Vec::new();
            write(&r, *f, &mut out, false).expect("write");
            assert!(!out.is_empty(), "{f:?}");
            assert!(std::str::from_utf8(&out).is_ok(), "{f:?}");
        }
    }

    #[test]
    fn verdict_and_counts() {
        let r = sample::report();
        assert_eq!(
            verdict(&r),
            "7 findings: 1 critical, 2 high, 2 medium, 1 low, 1 info"
        );
        assert_eq!(verdict(&sample::empty()), "no findings");
        let kinds = kind_counts(&r.findings);
        assert_eq!(kinds[0], (Kind::Shadow, 2));
        assert_eq!(kinds.iter().map(|(_, n)| n).sum::<u64>(), 7);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(40.4), "40 s");
        assert_eq!(duration(725.0), "12 min 5 s");
        assert_eq!(duration(3600.0), "1 h 0 min");
        assert_eq!(duration(2.0 * 86400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(duration(f64::NAN), "0 s");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(truncate("short", 5), "short");
    }
}
