/*!
Building findings: the place they are about, their stable id, and the severity rules
that several checks share.
*/

use serde_json::Value;

use super::model::{Finding, Kind, Severity, SpecLocation};
use crate::infer::pii::PiiKind;
use crate::infer::sketch::stable_hash;
use crate::report::endpoints::EndpointView;

/// What a finding is about: an endpoint (observed or documented) and where the spec
/// speaks of it.
#[derive(Debug, Clone)]
pub struct Place {
    pub host: String,
    pub method: String,
    pub path: String,
    pub requests: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub spec: Option<SpecLocation>,
}

impl Place {
    /// The place of an observed endpoint.
    pub fn observed(view: &EndpointView, spec: Option<SpecLocation>) -> Place {
        Place {
            host: view.host.clone(),
            method: view.method.clone(),
            path: view.path.clone(),
            requests: view.requests,
            first_seen: Some(view.first_seen.clone()),
            last_seen: Some(view.last_seen.clone()),
            spec,
        }
    }

    /// A finding here. `subject` tells findings of one rule on one endpoint apart (a
    /// status code, a field, a parameter) and goes into the id with the place.
    pub fn finding(
        &self,
        kind: Kind,
        rule: &str,
        subject: &str,
        severity: Severity,
        message: String,
        evidence: Value,
    ) -> Finding {
        Finding {
            id: finding_id(kind, rule, &self.host, &self.method, &self.path, subject),
            kind,
            rule: rule.to_string(),
            severity,
            host: self.host.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            requests: self.requests,
            first_seen: self.first_seen.clone(),
            last_seen: self.last_seen.clone(),
            message,
            evidence,
            spec: self.spec.clone(),
        }
    }
}

/// The stable id of a finding: 16 hex digits of a hash of what it is about (never of
/// its counts, so it survives more traffic).
pub fn finding_id(
    kind: Kind,
    rule: &str,
    host: &str,
    method: &str,
    path: &str,
    subject: &str,
) -> String {
    let key = [kind.as_str(), rule, host, method, path, subject].join("\u{1f}");
    format!("{:016x}", stable_hash(key.as_bytes()))
}

/// Methods that change state.
pub fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Kinds whose leak is grave on its own: payment data, national ids, credentials and
/// keys.
pub fn is_secret_kind(kind: &str) -> bool {
    kind != PiiKind::Email.as_str()
        && kind != PiiKind::Phone.as_str()
        && kind != PiiKind::DateOfBirth.as_str()
}

/// Whether a view shows 2xx answers to requests without any credential.
pub fn answers_anonymously(view: &EndpointView) -> bool {
    view.unauthenticated_2xx > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_tell_subjects_apart() {
        let a = finding_id(Kind::Drift, "drift.status", "h", "GET", "/x", "404");
        let b = finding_id(Kind::Drift, "drift.status", "h", "GET", "/x", "500");
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert_eq!(
            a,
            finding_id(Kind::Drift, "drift.status", "h", "GET", "/x", "404")
        );
        assert!(is_secret_kind("card_number"));
        assert!(!is_secret_kind("email"));
    }
}
