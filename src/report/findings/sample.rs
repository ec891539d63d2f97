/*!
A realistic report built by hand, for the writers' unit tests and the integration tests in
`tests/reports.rs` (which cannot see `#[cfg(test)]` items, hence a hidden public module).

It has every severity, several kinds, a finding located in a spec and one that is not, a
spec that failed to load and one with warnings, an unhealthy window, and hostile strings
(`<script>`, `|`, backticks, quotes, `&`, newlines, control characters, non-ASCII) where
traffic puts them: paths, hosts, messages and evidence.
*/

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::diff::model::{
    Finding, Kind, Report, ReportEndpoint, Severity, SpecInfo, SpecLocation, Summary, Window,
};
use crate::report::endpoints::EndpointView;

/// The hostile path of the sample's shadow endpoint on `evil.example.com`.
pub const HOSTILE_PATH: &str = "/search/<script>alert(\"x\")</script>|'&`q`";

/// The spec every located finding points into.
pub const SPEC: &str = "specs/petstore.yaml";

fn endpoint(host: &str, method: &str, path: &str, requests: u64) -> EndpointView {
    EndpointView {
        host: host.into(),
        method: method.into(),
        path: path.into(),
        requests,
        first_seen: "2026-01-01T00:00:00.000000Z".into(),
        last_seen: "2026-01-01T01:00:00.000000Z".into(),
        status: BTreeMap::from([("200".to_string(), requests)]),
        auth: vec!["bearer".into()],
        pii: vec![],
        confidence: 0.9,
        params: vec![],
        query: vec![],
        request_types: vec![],
        response_types: vec!["application/json".into()],
        protocols: BTreeMap::from([("h1".to_string(), requests)]),
        identities: 3,
        auth_detail: BTreeMap::from([("bearer".to_string(), requests)]),
        jwt: None,
        pii_detail: vec![],
        deprecated_responses: 0,
        unauthenticated_2xx: 0,
        bodies_sampled: requests.min(8),
        cleartext_requests: requests,
    }
}

fn observed(view: EndpointView, spec: Option<(&str, &str)>, deprecated: bool) -> ReportEndpoint {
    ReportEndpoint {
        view,
        spec_path: spec.map(|(p, _)| p.to_string()),
        operation_id: spec.map(|(_, o)| o.to_string()),
        spec: spec.map(|_| SPEC.to_string()),
        documented: spec.is_some(),
        deprecated,
    }
}

fn located(line: usize, spec_path: Option<&str>, operation_id: Option<&str>) -> SpecLocation {
    SpecLocation {
        file: SPEC.into(),
        line,
        spec_path: spec_path.map(str::to_string),
        operation_id: operation_id.map(str::to_string),
    }
}

struct F {
    kind: Kind,
    rule: &'static str,
    severity: Severity,
    host: &'static str,
    method: &'static str,
    path: &'static str,
    requests: u64,
    message: &'static str,
    evidence: serde_json::Value,
    spec: Option<SpecLocation>,
}

/// 16 hex digits of a hash of the parts, as the diff's fingerprints look.
fn id(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\n"));
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn finding(f: F) -> Finding {
    let seen = f.requests > 0;
    Finding {
        id: id(&[f.rule, f.host, f.method, f.path]),
        kind: f.kind,
        rule: f.rule.into(),
        severity: f.severity,
        host: f.host.into(),
        method: f.method.into(),
        path: f.path.into(),
        requests: f.requests,
        first_seen: seen.then(|| "2026-01-01T00:00:05.000000Z".to_string()),
        last_seen: seen.then(|| "2026-01-01T00:59:00.000000Z".to_string()),
        message: f.message.into(),
        evidence: f.evidence,
        spec: f.spec,
    }
}

/// The sample report: 4 observed endpoints on 2 hosts, 7 findings (1 critical, 2 high,
/// 2 medium, 1 low, 1 info), sorted as the diff sorts them.
pub fn report() -> Report {
    let api = "api.example.com";
    let mut pets = endpoint(api, "GET", "/v1/pets/{petId}", 42);
    pets.status = BTreeMap::from([("200".to_string(), 40), ("404".to_string(), 2)]);
    pets.pii = vec!["email"];
    pets.unauthenticated_2xx = 5;
    let mut list = endpoint(api, "GET", "/v1/pets", 17);
    list.deprecated_responses = 17;
    let admin = endpoint(api, "DELETE", "/v1/admin/users/{id}", 3);
    let mut hostile = endpoint("evil.example.com", "GET", HOSTILE_PATH, 2);
    hostile.auth = vec![];
    let findings = vec![
        finding(F {
            kind: Kind::Pii,
            rule: "pii.url",
            severity: Severity::Critical,
            host: api,
            method: "GET",
            path: "/v1/pets/{petId}",
            requests: 42,
            message: "E-mail addresses in the query string of 12 requests (ü, 日本語), over cleartext HTTP",
            evidence: json!({"kind": "email", "location": "query.owner", "count": 12,
                             "samples": ["j***@e***.com"], "cleartext": true}),
            spec: Some(located(22, Some("/pets/{petId}"), Some("showPetById"))),
        }),
        finding(F {
            kind: Kind::Shadow,
            rule: "shadow.endpoint",
            severity: Severity::High,
            host: api,
            method: "DELETE",
            path: "/v1/admin/users/{id}",
            requests: 3,
            message: "DELETE /v1/admin/users/{id} is in no spec: a write method, called 3 times",
            evidence: json!({"requests": 3, "status": {"204": 3}, "auth": ["bearer"]}),
            spec: Some(located(5, None, None)),
        }),
        finding(F {
            kind: Kind::Posture,
            rule: "posture.unauthenticated",
            severity: Severity::High,
            host: api,
            method: "GET",
            path: "/v1/pets/{petId}",
            requests: 42,
            message: "Documented as requiring bearer auth, answered 2xx without credentials 5 times",
            evidence: json!({"unauthenticated_2xx": 5, "documented": ["bearerAuth"]}),
            spec: Some(located(22, Some("/pets/{petId}"), Some("showPetById"))),
        }),
        finding(F {
            kind: Kind::Zombie,
            rule: "zombie.deprecated",
            severity: Severity::Medium,
            host: api,
            method: "GET",
            path: "/v1/pets",
            requests: 17,
            message: "Deprecated in the spec, still called 17 times; responses carry a Sunset header",
            evidence: json!({"signals": ["deprecated", "sunset"], "sunset": "Wed, 01 Jul 2026 00:00:00 GMT"}),
            spec: Some(located(10, Some("/pets"), Some("listPets"))),
        }),
        finding(F {
            kind: Kind::Shadow,
            rule: "shadow.endpoint",
            severity: Severity::Medium,
            host: "evil.example.com",
            method: "GET",
            path: HOSTILE_PATH,
            requests: 2,
            message: "Undocumented | `search` <b>endpoint</b> & \"quoted\" 'text'\nsecond line\u{1b}[31m",
            evidence: json!({"example": "</script><script>alert(1)</script>", "fence": "```"}),
            spec: None,
        }),
        finding(F {
            kind: Kind::Unobserved,
            rule: "unobserved.operation",
            severity: Severity::Low,
            host: api,
            method: "POST",
            path: "/v1/pets",
            requests: 0,
            message: "Documented, never seen in 1 h 0 min of traffic that reached api.example.com (59 requests)",
            evidence: json!({"window_seconds": 3600.0, "host_requests": 59}),
            spec: Some(located(14, Some("/pets"), Some("createPets"))),
        }),
        finding(F {
            kind: Kind::Drift,
            rule: "drift.status",
            severity: Severity::Info,
            host: api,
            method: "GET",
            path: "/v1/pets/{petId}",
            requests: 42,
            message: "Status 404 is not documented (seen 2 times)",
            evidence: json!({"status": 404, "count": 2, "documented": ["200", "default"]}),
            spec: Some(located(22, Some("/pets/{petId}"), Some("showPetById"))),
        }),
    ];
    Report {
        specter_version: env!("CARGO_PKG_VERSION").into(),
        generated_at: "2026-01-01T02:00:00Z".into(),
        specs: vec![SPEC.into(), "specs/broken.yaml".into()],
        spec_details: vec![
            SpecInfo {
                file: SPEC.into(),
                version: Some("3.0".into()),
                title: Some("Swagger Petstore".into()),
                operations: 5,
                error: None,
                warnings: vec!["line 40: duplicate operationId `listPets`".into()],
            },
            SpecInfo {
                file: "specs/broken.yaml".into(),
                version: None,
                title: None,
                operations: 0,
                error: Some("line 3, column 1: expected a mapping".into()),
                warnings: vec![],
            },
        ],
        summary: Summary {
            endpoints: 4,
            documented: 2,
            operations: 5,
            shadow: 2,
            zombie: 1,
            unobserved: 1,
            pii: 1,
            drift: 1,
            posture: 1,
            severity: BTreeMap::from([
                ("critical".to_string(), 1),
                ("high".to_string(), 2),
                ("medium".to_string(), 2),
                ("low".to_string(), 1),
                ("info".to_string(), 1),
            ]),
            suppressed: 1,
        },
        window: Window {
            first_seen: Some("2026-01-01T00:00:00.000000Z".into()),
            last_seen: Some("2026-01-01T01:00:00.000000Z".into()),
            seconds: 3600.0,
            runs: 2,
            exchanges: 64,
            files_failed: 1,
            gaps: 3,
            tls_opaque: BTreeMap::from([("auth.example.com".to_string(), 12)]),
            notes: vec![
                "the window is 1 h 0 min long: rarely called operations may be reported unobserved"
                    .into(),
            ],
        },
        endpoints: vec![
            observed(admin, None, false),
            observed(list, Some(("/pets", "listPets")), true),
            observed(pets, Some(("/pets/{petId}", "showPetById")), false),
            observed(hostile, None, false),
        ],
        findings,
    }
}

/// A report with no findings, no endpoints and one healthy spec.
pub fn empty() -> Report {
    let mut r = report();
    r.findings.clear();
    r.endpoints.clear();
    r.specs.truncate(1);
    r.spec_details.truncate(1);
    r.window = Window::default();
    r.summary = Summary::default();
    r
}

/// Why `instance` does not validate against the JSON schema at `schema` (a path from the
/// project root), one line per error; empty when valid. Formats are checked too.
#[cfg(test)]
pub(crate) fn schema_errors(schema: &str, instance: &serde_json::Value) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(schema);
    let text = std::fs::read_to_string(&path).expect("read the schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
