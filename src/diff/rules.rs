/*!
The checks run on one observed endpoint: shadow or zombie when no spec documents it;
zombie, drift and undeclared PII when one does; posture in both cases. docs/reports.md
lists every rule with its severity.
*/

use std::collections::BTreeSet;

use serde_json::json;

use super::fields::{self, FieldDrift, Lookup};
use super::finding::{answers_anonymously, is_secret_kind, is_write, Place};
use super::model::{Finding, Kind, Severity};
use crate::exchange::format_ts;
use crate::infer::endpoint::{EndpointStats, Limits};
use crate::report::endpoints::EndpointView;
use crate::spec::model::{Body, Operation, ParamLocation, Response, Spec, SpecSchema};

/// An observed endpoint with its statistics.
pub struct Seen<'a> {
    pub view: &'a EndpointView,
    pub stats: &'a EndpointStats,
    pub limits: &'a Limits,
}

/// The latest announced Sunset date, and whether calls went on after it.
fn sunset(seen: &Seen<'_>) -> (Option<String>, bool) {
    match seen.stats.sunset {
        Some(at) => (Some(format_ts(at)), seen.stats.last_seen > at),
        None => (None, false),
    }
}

/// `; called after its announced Sunset (DATE)` when it was.
fn after_sunset(date: &Option<String>, past: bool) -> String {
    match date {
        Some(d) if past => format!("; calls went on after its announced Sunset ({d})"),
        _ => String::new(),
    }
}

/// An endpoint no spec documents: a zombie when a later version of it is documented or
/// its responses announce retirement, else shadow.
pub fn undocumented(
    seen: &Seen<'_>,
    place: &Place,
    successor: Option<(&Spec, &Operation, String, String)>,
    out: &mut Vec<Finding>,
) {
    let v = seen.view;
    let anonymous = answers_anonymously(v);
    let pii = &v.pii;
    if let Some((spec, op, old, new)) = successor {
        let mut severity = Severity::Medium;
        if anonymous || pii.iter().any(|k| is_secret_kind(k)) {
            severity = severity.raise();
        }
        out.push(place.finding(
            Kind::Zombie,
            "zombie.superseded",
            "",
            severity,
            format!(
                "{} {} is still called ({} requests) while the specs document it only under {new}",
                v.method, v.path, v.requests
            ),
            json!({
                "signals": ["superseded"],
                "version": old,
                "successor_version": new,
                "successor": {
                    "path": op.full_paths().first().cloned().unwrap_or_default(),
                    "operation_id": op.operation_id,
                    "spec": spec.file.display().to_string(),
                    "line": op.line,
                },
                "status": v.status,
                "auth": v.auth,
                "pii": pii,
                "deprecated_responses": v.deprecated_responses,
            }),
        ));
        return;
    }
    if v.deprecated_responses > 0 {
        let (date, past) = sunset(seen);
        out.push(place.finding(
            Kind::Zombie,
            "zombie.retiring",
            "",
            if past {
                Severity::High
            } else {
                Severity::Medium
            },
            format!(
                "{} {} is undocumented and its responses announce retirement \
                 (Deprecation/Sunset on {} of {} responses), yet it is still called{}",
                v.method,
                v.path,
                v.deprecated_responses,
                v.requests,
                after_sunset(&date, past)
            ),
            json!({
                "signals": ["deprecation_header"],
                "documented": false,
                "deprecated_responses": v.deprecated_responses,
                "sunset": date,
                "called_after_sunset": past,
                "status": v.status,
                "auth": v.auth,
                "pii": pii,
            }),
        ));
        return;
    }
    let mut severity = if is_write(&v.method) {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut why = Vec::new();
    if is_write(&v.method) {
        why.push("a write method");
    }
    if anonymous {
        severity = severity.raise();
        why.push("answers without credentials");
    }
    if !pii.is_empty() {
        severity = severity.raise();
        why.push("carries personal data");
    }
    let examples: Vec<_> = v
        .params
        .iter()
        .map(|p| json!({"name": p.name, "distinct": p.distinct, "examples": p.examples}))
        .collect();
    out.push(place.finding(
        Kind::Shadow,
        "shadow.undocumented",
        "",
        severity,
        format!(
            "{} {} is called ({} requests) but no spec documents it{}",
            v.method,
            v.path,
            v.requests,
            if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join(", "))
            }
        ),
        json!({
            "status": v.status,
            "auth": v.auth,
            "unauthenticated_2xx": v.unauthenticated_2xx,
            "pii": pii,
            "pii_detail": v.pii_detail,
            "params": examples,
            "query": v.query.iter().map(|q| &q.name).collect::<Vec<_>>(),
            "identities": v.identities,
        }),
    ));
}

/// The JSON-ish schemas of a body: media types that carry JSON, forms or anything.
fn body_schemas(b: &Body) -> impl Iterator<Item = &SpecSchema> {
    b.content
        .iter()
        .filter(|(t, _)| {
            t.contains("json")
                || t.contains("form")
                || t.as_str() == "*/*"
                || t.starts_with("application/*")
        })
        .filter_map(|(_, s)| s.as_ref())
}

/// The documented response for a status: exact, then `4XX`, then `default`.
fn response_for<'a>(op: &'a Operation, status: &str) -> Option<&'a Response> {
    if let Some(r) = op.responses.get(status) {
        return Some(r);
    }
    let range = status.chars().next().map(|c| format!("{c}XX"));
    if let Some(r) = op
        .responses
        .iter()
        .find(|(k, _)| range.as_deref().is_some_and(|x| k.eq_ignore_ascii_case(x)))
    {
        return Some(r.1);
    }
    op.responses.get("default")
}

/// Whether a spec declares the place where sensitive data was seen.
fn declares(spec: &Spec, op: &Operation, location: &str) -> bool {
    let param = |loc: ParamLocation, name: &str| {
        op.parameters
            .iter()
            .any(|p| p.location == loc && p.name.eq_ignore_ascii_case(name))
    };
    let key_named = |name: &str| {
        spec.security_schemes.values().any(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    };
    let (place, rest) = location.split_once(':').unwrap_or((location, ""));
    match place {
        "path" => op
            .parameters
            .iter()
            .any(|p| p.location == ParamLocation::Path),
        "query" => param(ParamLocation::Query, rest) || key_named(rest),
        "request_header" => param(ParamLocation::Header, rest) || key_named(rest),
        "response_header" => op.responses.values().any(|r| r.headers.contains(rest)),
        "request_body" => op.request_body.as_ref().is_some_and(|b| {
            let steps = fields::parse_path(rest);
            body_schemas(b).any(|s| fields::lookup(s, &steps) != Lookup::Undeclared)
        }),
        "response_body" => {
            let steps = fields::parse_path(rest);
            op.responses
                .values()
                .flat_map(|r| body_schemas(&r.body))
                .any(|s| fields::lookup(s, &steps) != Lookup::Undeclared)
        }
        _ => true,
    }
}

/// An endpoint a spec documents: zombie signals, drift and undeclared PII.
pub fn documented(
    seen: &Seen<'_>,
    place: &Place,
    spec: &Spec,
    op: &Operation,
    head_as_get: bool,
    out: &mut Vec<Finding>,
) {
    zombie(seen, place, op, out);
    let undeclared_pii = pii(seen, place, spec, op, out);
    if head_as_get {
        // HEAD answers mirror GET's without bodies; only the route is checked.
        return;
    }
    drift_status(seen, place, op, out);
    drift_query(seen, place, spec, op, out);
    drift_bodies(seen, place, op, &undeclared_pii, out);
}

fn zombie(seen: &Seen<'_>, place: &Place, op: &Operation, out: &mut Vec<Finding>) {
    let v = seen.view;
    let headers = v.deprecated_responses > 0;
    if !op.deprecated && !headers {
        return;
    }
    let mut signals = Vec::new();
    if op.deprecated {
        signals.push("deprecated");
    }
    if headers {
        signals.push("deprecation_header");
    }
    let (date, past) = sunset(seen);
    let mut severity = Severity::Medium;
    if (answers_anonymously(v) && !v.pii.is_empty()) || past {
        severity = severity.raise();
    }
    let (rule, mut message) = if op.deprecated {
        (
            "zombie.deprecated",
            format!(
                "{} {} is marked deprecated in the spec but still called ({} requests, last {})",
                v.method, v.path, v.requests, v.last_seen
            ),
        )
    } else {
        (
            "zombie.retiring",
            format!(
                "{} {} announces its retirement (Deprecation/Sunset headers on {} of {} \
                 responses) but is still called; the spec does not mark it deprecated",
                v.method, v.path, v.deprecated_responses, v.requests
            ),
        )
    };
    message.push_str(&after_sunset(&date, past));
    out.push(place.finding(
        Kind::Zombie,
        rule,
        "",
        severity,
        message,
        json!({
            "signals": signals,
            "documented": true,
            "deprecated_in_spec": op.deprecated,
            "deprecated_responses": v.deprecated_responses,
            "sunset": date,
            "called_after_sunset": past,
            "identities": v.identities,
            "status": v.status,
        }),
    ));
}

/// Reports sensitive data at places the spec does not declare; returns those places.
fn pii(
    seen: &Seen<'_>,
    place: &Place,
    spec: &Spec,
    op: &Operation,
    out: &mut Vec<Finding>,
) -> BTreeSet<String> {
    let v = seen.view;
    let mut undeclared = BTreeSet::new();
    for p in &v.pii_detail {
        if declares(spec, op, &p.location) {
            continue;
        }
        undeclared.insert(p.location.clone());
        let in_url = p.location == "path" || p.location.starts_with("query:");
        let secret = is_secret_kind(p.kind);
        let anonymous = answers_anonymously(v);
        let mut severity = Severity::Medium;
        if secret || in_url || anonymous {
            severity = Severity::High;
        }
        if secret && anonymous {
            severity = Severity::Critical;
        }
        out.push(place.finding(
            Kind::Pii,
            "pii.undeclared",
            &format!("{}@{}", p.kind, p.location),
            severity,
            format!(
                "{} seen in {} of {} {} ({} {}), which the spec does not declare",
                p.kind,
                p.location,
                v.method,
                v.path,
                p.count,
                if p.location.contains("_body:") {
                    "of the sampled bodies"
                } else {
                    "requests"
                }
            ),
            json!({
                "kind": p.kind,
                "location": p.location,
                "count": p.count,
                "samples": p.samples,
                "in_url": in_url,
                "cleartext": true,
                "unauthenticated_2xx": v.unauthenticated_2xx,
            }),
        ));
    }
    undeclared
}

fn documented_status(op: &Operation, status: &str) -> bool {
    response_for(op, status).is_some()
}

fn drift_status(seen: &Seen<'_>, place: &Place, op: &Operation, out: &mut Vec<Finding>) {
    let v = seen.view;
    for (status, n) in &v.status {
        if status == "none" || documented_status(op, status) {
            continue;
        }
        out.push(place.finding(
            Kind::Drift,
            "drift.status",
            status,
            Severity::Low,
            format!(
                "{} {} answered {status} ({n} of {} responses), a status the spec does not document",
                v.method, v.path, v.requests
            ),
            json!({
                "status": status,
                "count": n,
                "documented": op.responses.keys().collect::<Vec<_>>(),
            }),
        ));
    }
}

fn drift_query(
    seen: &Seen<'_>,
    place: &Place,
    spec: &Spec,
    op: &Operation,
    out: &mut Vec<Finding>,
) {
    let v = seen.view;
    let documented: Vec<_> = op
        .parameters
        .iter()
        .filter(|p| p.location == ParamLocation::Query)
        .collect();
    // A free-form object parameter (`style: form` with an object schema) takes any name.
    let free_form = documented.iter().any(|p| {
        p.schema
            .as_ref()
            .is_some_and(|s| s.types.contains(&crate::spec::model::JsonType::Object))
    });
    let key_params: Vec<&str> = spec
        .security_schemes
        .values()
        .filter(|s| s.location.as_deref() == Some("query"))
        .filter_map(|s| s.name.as_deref())
        .collect();
    if !free_form {
        for q in &v.query {
            if documented.iter().any(|p| p.name == q.name) || key_params.contains(&q.name.as_str())
            {
                continue;
            }
            out.push(place.finding(
                Kind::Drift,
                "drift.query",
                &q.name,
                Severity::Low,
                format!(
                    "{} {} is called with query parameter `{}` ({} of {} requests), which the spec does not document",
                    v.method, v.path, q.name, q.count, v.requests
                ),
                json!({"parameter": q.name, "count": q.count, "types": q.types}),
            ));
        }
    }
    // Requests the server refused (4xx) may be the ones without a required parameter:
    // only what cannot be explained so is drift, the parameter being optional in practice.
    let refused: u64 = v
        .status
        .iter()
        .filter(|(s, _)| s.starts_with('4'))
        .map(|(_, n)| n)
        .sum();
    for p in documented.iter().filter(|p| p.required) {
        let present = v
            .query
            .iter()
            .find(|q| q.name == p.name)
            .map_or(0, |q| q.count);
        let missing = v.requests.saturating_sub(present);
        if missing <= refused {
            continue;
        }
        out.push(place.finding(
            Kind::Drift,
            "drift.query_required",
            &p.name,
            Severity::Low,
            format!(
                "{} {}: required query parameter `{}` is missing from {} of {} requests, \
                 more than the {} the server refused",
                v.method,
                v.path,
                p.name,
                missing,
                v.requests,
                refused
            ),
            json!({"parameter": p.name, "present": present, "requests": v.requests, "refused_4xx": refused}),
        ));
    }
}

fn drift_bodies(
    seen: &Seen<'_>,
    place: &Place,
    op: &Operation,
    undeclared_pii: &BTreeSet<String>,
    out: &mut Vec<Finding>,
) {
    let v = seen.view;
    let schema_limits = &seen.limits.schema;
    let covered_by_pii = |side: &str, path: &str| {
        undeclared_pii.iter().any(|loc| {
            loc.strip_prefix(side)
                .and_then(|l| l.strip_prefix(':'))
                .is_some_and(|l| {
                    l == path
                        || l.starts_with(&format!("{path}."))
                        || l.starts_with(&format!("{path}["))
                })
        })
    };
    let report = |side: &str, status: Option<&str>, drift: FieldDrift, out: &mut Vec<Finding>| {
        let at = status.map_or(String::from("request"), |s| format!("{s} response"));
        match drift {
            FieldDrift::Undeclared { path } => {
                if covered_by_pii(side, &path) {
                    return;
                }
                out.push(place.finding(
                    Kind::Drift,
                    if status.is_some() {
                        "drift.response_field"
                    } else {
                        "drift.request_field"
                    },
                    &format!("{}:{path}", status.unwrap_or("request")),
                    Severity::Low,
                    format!("{} {}: the {at} carries `{path}`, which the spec does not declare", v.method, v.path),
                    json!({"field": path, "status": status, "side": side}),
                ));
            }
            FieldDrift::Type { path, seen, documented } => out.push(place.finding(
                Kind::Drift,
                "drift.type",
                &format!("{}:{path}", status.unwrap_or("request")),
                Severity::Medium,
                format!(
                    "{} {}: `{path}` in the {at} is {} where the spec says {}",
                    v.method,
                    v.path,
                    seen.join(" or "),
                    documented.join(" or ")
                ),
                json!({"field": path, "status": status, "side": side, "seen": seen, "documented": documented}),
            )),
        }
    };
    for (status, observed) in seen.stats.bodies.responses(schema_limits) {
        let status = status.to_string();
        let Some(resp) = response_for(op, &status) else {
            continue;
        };
        let Some(schema) = body_schemas(&resp.body).next() else {
            continue;
        };
        for d in fields::compare(schema, &observed.fields(), false) {
            report("response_body", Some(&status), d, out);
        }
    }
    if let (Some(observed), Some(body)) = (
        seen.stats.bodies.request(schema_limits),
        op.request_body.as_ref(),
    ) {
        let form = v.request_types.iter().any(|t| t.contains("form"));
        if let Some(schema) = body_schemas(body).next() {
            for d in fields::compare(schema, &observed.fields(), form) {
                report("request_body", None, d, out);
            }
        }
    }
}

/// What the traffic shows about protection, documented or not.
pub fn posture(seen: &Seen<'_>, place: &Place, op: Option<&Operation>, out: &mut Vec<Finding>) {
    let v = seen.view;
    if let Some(op) = op {
        let required = !op.security.is_empty() && op.security.iter().all(|alt| !alt.is_empty());
        if required && v.unauthenticated_2xx > 0 {
            let severity = if v.pii.is_empty() {
                Severity::High
            } else {
                Severity::Critical
            };
            out.push(place.finding(
                Kind::Posture,
                "posture.unauthenticated",
                "",
                severity,
                format!(
                    "{} {} requires {} in the spec, but answered 2xx to {} requests without credentials",
                    v.method,
                    v.path,
                    op.security
                        .iter()
                        .map(|alt| alt.join("+"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    v.unauthenticated_2xx
                ),
                json!({
                    "documented_security": op.security,
                    "unauthenticated_2xx": v.unauthenticated_2xx,
                    "requests": v.requests,
                    "auth_seen": v.auth_detail,
                }),
            ));
        }
    }
    // Basic over TLS (seen because it was decrypted) is not cleartext: only endpoints
    // reached in cleartext count.
    if let Some(n) = v
        .auth_detail
        .get("basic")
        .filter(|_| v.cleartext_requests > 0)
    {
        out.push(place.finding(
            Kind::Posture,
            "posture.basic_cleartext",
            "",
            Severity::Medium,
            format!(
                "{} {}: HTTP Basic credentials seen on {n} requests; {} requests in cleartext",
                v.method, v.path, v.cleartext_requests
            ),
            json!({"requests": n, "cleartext": true, "cleartext_requests": v.cleartext_requests}),
        ));
    }
    for (key, n) in &v.auth_detail {
        if let Some(name) = key.strip_prefix("api_key:query:") {
            out.push(place.finding(
                Kind::Posture,
                "posture.token_in_query",
                name,
                Severity::High,
                format!(
                    "{} {}: a credential travels in the query string (`{name}`, {n} requests), where logs and proxies keep it",
                    v.method, v.path
                ),
                json!({"parameter": name, "requests": n}),
            ));
        }
    }
    let alg_none = v
        .jwt
        .as_ref()
        .and_then(|j| j.get("algs"))
        .and_then(|a| a.as_array())
        .is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case("none")))
        });
    if alg_none {
        out.push(place.finding(
            Kind::Posture,
            "posture.jwt_alg_none",
            "",
            Severity::Critical,
            format!(
                "{} {} is called with unsigned JWTs (`alg: none`)",
                v.method, v.path
            ),
            json!({"jwt": v.jwt}),
        ));
    }
}
