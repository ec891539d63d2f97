/*!
`--fail-on`: which findings make `diff` and `ci` exit 1. A comma-separated list of
`KIND[:SEVERITY]`, where KIND is a finding kind or `any`, and SEVERITY the lowest severity
that counts (`shadow,zombie,pii:high`, `any:critical`). `none` never fails.
*/

use super::model::{Finding, Kind, Severity};

/// One `KIND[:SEVERITY]` term; `kind: None` is `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub kind: Option<Kind>,
    pub min: Severity,
}

/// A parsed `--fail-on`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailOn {
    pub terms: Vec<Term>,
}

impl FailOn {
    /// What `ci` fails on unless told otherwise.
    pub const CI_DEFAULT: &'static str = "shadow,zombie,pii:high,posture:high";

    /// Parses `shadow,zombie,pii:high`.
    pub fn parse(text: &str) -> Result<FailOn, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                continue;
            }
            let (k, sev) = part.split_once(':').unwrap_or((part, "info"));
            let kind = if k == "any" {
                None
            } else {
                Some(Kind::parse(k).ok_or_else(|| {
                    format!(
                        "`{k}` is not a finding kind (expected one of shadow, zombie, unobserved, pii, drift, posture, any)"
                    )
                })?)
            };
            let min = Severity::parse(sev).ok_or_else(|| {
                format!("`{sev}` is not a severity (expected info, low, medium, high or critical)")
            })?;
            terms.push(Term { kind, min });
        }
        Ok(FailOn { terms })
    }

    /// Whether a finding matches.
    pub fn matches(&self, f: &Finding) -> bool {
        self.terms
            .iter()
            .any(|t| t.kind.is_none_or(|k| k == f.kind) && f.severity >= t.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::finding::Place;

    #[test]
    fn kinds_and_severities() {
        let p = FailOn::parse("shadow, pii:high").unwrap_or_default();
        let place = Place {
            host: "h".into(),
            method: "GET".into(),
            path: "/".into(),
            requests: 1,
            first_seen: None,
            last_seen: None,
            spec: None,
        };
        let f = |k, s| place.finding(k, "r", "", s, String::new(), serde_json::Value::Null);
        assert!(p.matches(&f(Kind::Shadow, Severity::Info)));
        assert!(!p.matches(&f(Kind::Pii, Severity::Medium)));
        assert!(p.matches(&f(Kind::Pii, Severity::Critical)));
        assert!(!p.matches(&f(Kind::Drift, Severity::Critical)));
        assert!(FailOn::parse("any:critical")
            .unwrap_or_default()
            .matches(&f(Kind::Drift, Severity::Critical)));
        assert!(FailOn::parse("none").unwrap_or_default().terms.is_empty());
        assert!(FailOn::parse("ghost").is_err());
        assert!(FailOn::parse("pii:dire").is_err());
    }
}
