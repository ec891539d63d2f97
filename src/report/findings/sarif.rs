/*!
`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run; `tool.driver.rules` has one rule per `Finding::rule` (`shadow.endpoint`,
`drift.status`...) with its descriptions, help, tags and the `security-severity` GitHub
ranks alerts by. Each finding is a result located at its spec line, the spec file given
as a relative URI with forward slashes. GitHub requires a location, so a finding that has
none in a spec (a shadow endpoint of a host no spec covers) points at line 1 of the first
spec; the endpoint itself is in the result's `logicalLocations` and `properties`.
`partialFingerprints` carries the finding's stable id so that alerts follow it across runs.
Specs that failed to load, and their warnings, are tool notifications of the invocation.

The output validates against the official OASIS SARIF 2.1.0 schema (see the test and
`tests/fixtures/schemas/README.md`).
*/

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

use super::{health_notes, kind_description, kind_help, rule_title};
use crate::diff::model::{Finding, Report, Severity};

/// Where SARIF viewers find the schema.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The key of the finding id in `partialFingerprints`.
pub const FINGERPRINT: &str = "specterFindingId/v1";

/// SARIF's result level: error for high and critical, warning for medium, note below.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (a CVSS-like score as a string): over 9.0 is critical,
/// 7.0 to 8.9 high, 4.0 to 6.9 medium, below that low.
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// A spec file as given on the command line made a relative URI reference: backslashes
/// become slashes, a leading `./` goes, an absolute path under the current directory is
/// made relative to it (GitHub resolves URIs against the repository root, where CI runs),
/// and every byte outside RFC 3986's unreserved set and `/` is percent-encoded. Other
/// absolute paths become `file://` URIs.
pub fn artifact_uri(file: &str) -> String {
    let mut path = file.replace('\\', "/");
    let absolute = path.starts_with('/') || path.as_bytes().get(1) == Some(&b':');
    if absolute {
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|d| d.to_str().map(|s| s.replace('\\', "/")));
        match cwd.and_then(|d| {
            path.strip_prefix(&format!("{}/", d.trim_end_matches('/')))
                .map(str::to_string)
        }) {
            Some(rel) => path = rel,
            None => {
                let lead = if path.starts_with('/') { "" } else { "/" };
                return format!("file://{lead}{}", encode(&path, true));
            }
        }
    }
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.to_string();
    }
    encode(&path, false)
}

fn encode(path: &str, keep_colon: bool) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            b':' if keep_colon => out.push(':'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A rule's SARIF `name`, an identifier: `posture.jwt_none` → `PostureJwtNone`.
fn pascal(rule: &str) -> String {
    rule.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

struct Rule<'a> {
    finding: &'a Finding,
    worst: Severity,
}

fn rule_json(r: &Rule) -> Value {
    let f = r.finding;
    let description = kind_description(f.kind);
    let help = kind_help(f.kind);
    json!({
        "id": f.rule,
        "name": pascal(&f.rule),
        "shortDescription": {"text": format!("{} ({})", rule_title(&f.rule), f.kind.as_str())},
        "fullDescription": {"text": description},
        "help": {
            "text": format!("{description}\n\n{help}"),
            "markdown": format!("{description}\n\n**What to do:** {help}\n\nSee docs/reports.md for the rule `{}`.", f.rule),
        },
        "defaultConfiguration": {"level": level(r.worst)},
        "properties": {
            "tags": ["security", "api", f.kind.as_str()],
            "security-severity": security_severity(r.worst),
            "precision": "high",
        },
    })
}

fn location(file: &str, line: usize) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(file)},
            "region": {"startLine": line.max(1)},
        }
    })
}

fn result_json(f: &Finding, rule_index: usize, fallback: Option<&str>) -> Value {
    let mut loc = match (&f.spec, fallback) {
        (Some(l), _) => location(&l.file, l.line),
        (None, Some(file)) => location(file, 1),
        (None, None) => json!({}),
    };
    loc["logicalLocations"] = json!([{
        "fullyQualifiedName": format!("{} {}{}", f.method, f.host, f.path),
        "kind": "resource",
    }]);
    let mut props = json!({
        "kind": f.kind.as_str(),
        "severity": f.severity.as_str(),
        "security-severity": security_severity(f.severity),
        "host": f.host,
        "method": f.method,
        "path": f.path,
        "requests": f.requests,
        "evidence": f.evidence,
    });
    for (key, v) in [("first_seen", &f.first_seen), ("last_seen", &f.last_seen)] {
        if let Some(v) = v {
            props[key] = json!(v);
        }
    }
    if let Some(op) = f.spec.as_ref().and_then(|l| l.operation_id.as_ref()) {
        props["operation_id"] = json!(op);
    }
    json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": {"text": format!(
            "{} ({} {}{}, {} request{})",
            f.message, f.method, f.host, f.path, f.requests, super::plural(f.requests)
        )},
        "locations": [loc],
        "partialFingerprints": {FINGERPRINT: f.id},
        "properties": props,
    })
}

fn notifications(report: &Report) -> Vec<Value> {
    let mut v = Vec::new();
    for s in &report.spec_details {
        let at = location(&s.file, 1);
        let at = json!([{"physicalLocation": at["physicalLocation"]}]);
        if let Some(e) = &s.error {
            v.push(json!({"level": "error", "message": {"text": format!("{}: {e}", s.file)}, "locations": at}));
        }
        for w in &s.warnings {
            v.push(json!({"level": "warning", "message": {"text": format!("{}: {w}", s.file)}, "locations": at}));
        }
    }
    for n in health_notes(&report.window) {
        v.push(json!({"level": "note", "message": {"text": n}}));
    }
    v
}

fn invocation(report: &Report) -> Value {
    let mut v = json!({
        "executionSuccessful": true,
        "toolConfigurationNotifications": notifications(report),
    });
    // The schema wants an RFC 3339 time; leave it out rather than write an invalid one.
    if chrono::DateTime::parse_from_rfc3339(&report.generated_at).is_ok() {
        v["endTimeUtc"] = json!(report.generated_at);
    }
    v
}

/// The SARIF log as a JSON value.
pub fn to_value(report: &Report) -> Value {
    let mut rules: BTreeMap<&str, Rule> = BTreeMap::new();
    for f in &report.findings {
        rules
            .entry(f.rule.as_str())
            .and_modify(|r| r.worst = r.worst.max(f.severity))
            .or_insert(Rule {
                finding: f,
                worst: f.severity,
            });
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let fallback = report.specs.first().map(String::as_str);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result_json(f, index[f.rule.as_str()], fallback))
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "specter",
                "version": report.specter_version,
                "rules": rules.values().map(rule_json).collect::<Vec<_>>(),
            }},
            "invocations": [invocation(report)],
            "results": results,
            "properties": {
                "specs": report.specs,
                "window": report.window,
                "summary": report.summary,
            },
        }],
    })
}

/// Writes the SARIF log, indented, and a final newline.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::findings::sample;

    const SCHEMA: &str = "tests/fixtures/schemas/sarif-schema-2.1.0.json";

    #[test]
    fn validates_against_the_official_schema() {
        for r in [sample::report(), sample::empty()] {
            let errors = sample::schema_errors(SCHEMA, &to_value(&r));
            assert!(errors.is_empty(), "{errors:#?}");
        }
    }

    #[test]
    fn the_schema_is_strict_enough_to_catch_mistakes() {
        let mut v = to_value(&sample::report());
        v["runs"][0]["results"][0]["level"] = "fatal".into();
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
            0.into();
        let errors = sample::schema_errors(SCHEMA, &v);
        assert_eq!(errors.len(), 2, "{errors:#?}");
    }

    #[test]
    fn rules_results_and_locations() {
        let r = sample::report();
        let mut out = Vec::new();
        write(&r, &mut out).expect("write");
        let v: Value = serde_json::from_slice(&out).expect("JSON");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                "drift.status",
                "pii.url",
                "posture.unauthenticated",
                "shadow.endpoint",
                "unobserved.operation",
                "zombie.deprecated"
            ]
        );
        // shadow.endpoint has a high and a medium finding: the rule takes the worst.
        assert_eq!(rules[3]["defaultConfiguration"]["level"], "error");
        assert_eq!(rules[3]["properties"]["security-severity"], "8.0");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 7);
        for (res, f) in results.iter().zip(&r.findings) {
            let i = res["ruleIndex"].as_u64().expect("index") as usize;
            assert_eq!(rules[i]["id"], res["ruleId"]);
            assert_eq!(res["partialFingerprints"][FINGERPRINT], f.id.as_str());
            assert!(res["locations"][0]["physicalLocation"].is_object());
        }
        let levels: Vec<&str> = results.iter().filter_map(|r| r["level"].as_str()).collect();
        assert_eq!(
            levels,
            ["error", "error", "error", "warning", "warning", "note", "note"]
        );
        let region = |i: usize| &results[i]["locations"][0]["physicalLocation"];
        assert_eq!(region(0)["artifactLocation"]["uri"], "specs/petstore.yaml");
        assert_eq!(region(0)["region"]["startLine"], 22);
        // No spec location: the first spec, line 1.
        assert_eq!(region(4)["artifactLocation"]["uri"], "specs/petstore.yaml");
        assert_eq!(region(4)["region"]["startLine"], 1);
        let notes = run["invocations"][0]["toolConfigurationNotifications"]
            .as_array()
            .expect("notifications");
        assert!(notes.iter().any(|n| n["level"] == "error"
            && n["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("broken.yaml"))));
    }

    #[test]
    fn names_and_times() {
        assert_eq!(pascal("posture.jwt_none"), "PostureJwtNone");
        assert_eq!(pascal("pii.url"), "PiiUrl");
        let mut r = sample::report();
        r.generated_at = "yesterday".into();
        let v = to_value(&r);
        assert!(v["runs"][0]["invocations"][0].get("endTimeUtc").is_none());
        assert!(sample::schema_errors(SCHEMA, &v).is_empty());
    }

    #[test]
    fn uris() {
        assert_eq!(artifact_uri("./specs/a b.yaml"), "specs/a%20b.yaml");
        assert_eq!(artifact_uri("specs\\v1\\api.json"), "specs/v1/api.json");
        assert_eq!(artifact_uri("/nowhere/x.yaml"), "file:///nowhere/x.yaml");
        assert_eq!(artifact_uri("C:\\api\\x.yaml"), "file:///C:/api/x.yaml");
        let cwd = std::env::current_dir().expect("cwd");
        let inside = cwd.join("specs").join("ä.yaml");
        assert_eq!(
            artifact_uri(inside.to_str().expect("utf-8")),
            "specs/%C3%A4.yaml"
        );
    }
}
