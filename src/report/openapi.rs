/*!
The inventory as an OpenAPI 3.0 document: what the traffic shows, for owners to compare
with what they wrote, or to start a spec from.

Servers are the hosts seen; each operation is tagged with its host. Path parameters carry
the schema of their values' shape, query parameters are required when every request had
them, request bodies and responses carry the schemas inferred from sampled bodies, and
security schemes are the credentials seen (never their values). `x-specter` on each
operation says how much traffic it rests on.
*/

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::exchange::format_ts;
use crate::infer::endpoint::EndpointStats;
use crate::infer::template::{Template, TemplateSeg};
use crate::infer::{auth, Config, Inventory};

/// A security scheme's component name and object for a scheme key, if OpenAPI has one.
fn security_scheme(key: &str, stats: &EndpointStats) -> Option<(String, Value)> {
    let parts: Vec<&str> = key.splitn(3, ':').collect();
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    match parts.as_slice() {
        ["basic"] => Some((
            "basicAuth".into(),
            json!({"type": "http", "scheme": "basic"}),
        )),
        ["digest"] => Some((
            "digestAuth".into(),
            json!({"type": "http", "scheme": "digest"}),
        )),
        ["bearer"] => {
            let mut s = json!({"type": "http", "scheme": "bearer"});
            if stats.jwt.tokens > 0 {
                s["bearerFormat"] = json!("JWT");
            }
            Some(("bearerAuth".into(), s))
        }
        ["api_key", place @ ("header" | "query"), name] => Some((
            format!("apiKey_{place}_{}", safe(name)),
            json!({"type": "apiKey", "in": place, "name": name}),
        )),
        ["cookie", name] => Some((
            format!("cookie_{}", safe(name)),
            json!({"type": "apiKey", "in": "cookie", "name": name}),
        )),
        _ => None,
    }
}

fn query_schema(types: &BTreeMap<String, u64>) -> Value {
    let kinds: BTreeSet<&str> = types
        .keys()
        .map(String::as_str)
        .filter(|t| *t != "empty")
        .collect();
    match kinds.iter().copied().collect::<Vec<_>>().as_slice() {
        ["integer"] => json!({"type": "integer"}),
        ["integer", "number"] | ["number"] => json!({"type": "number"}),
        ["boolean"] => json!({"type": "boolean"}),
        ["uuid"] => json!({"type": "string", "format": "uuid"}),
        _ => json!({"type": "string"}),
    }
}

fn operation_id(method: &str, t: &Template<EndpointStats>) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in &t.segments {
        let (word, by) = match seg {
            TemplateSeg::Literal(l) => (l.as_str(), false),
            TemplateSeg::Param(p) => (p.name.as_str(), true),
        };
        if by {
            id.push_str("By");
        }
        let mut upper = true;
        for c in word.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(if upper { c.to_ascii_uppercase() } else { c });
                upper = false;
            } else {
                upper = true;
            }
        }
    }
    id
}

fn operation(
    host: &str,
    t: &Template<EndpointStats>,
    config: &Config,
    schemes: &mut BTreeMap<String, Value>,
) -> Value {
    let s = &t.stats;
    let mut params: Vec<Value> = t
        .params()
        .map(|p| {
            json!({
                "name": p.name, "in": "path", "required": true,
                "schema": p.shape.openapi_schema(),
                "x-specter-distinct-values": p.distinct,
            })
        })
        .collect();
    for (name, q) in &s.query {
        if name.is_empty() || auth::is_key_param(name) {
            continue;
        }
        params.push(json!({
            "name": name, "in": "query", "required": q.count >= s.requests,
            "schema": query_schema(&q.types),
        }));
    }
    let limits = &config.endpoint.schema;
    let mut op = Map::new();
    op.insert("operationId".into(), json!(operation_id(&t.method, t)));
    op.insert("tags".into(), json!([host]));
    op.insert(
        "summary".into(),
        json!(format!(
            "{} {} observed {} times",
            t.method,
            t.path(),
            s.requests
        )),
    );
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some(req) = s.bodies.request(limits) {
        let media = s
            .request_types
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| "application/json".into());
        op.insert(
            "requestBody".into(),
            json!({"content": {media: {"schema": req.to_openapi()}}}),
        );
    }
    let bodies = s.bodies.responses(limits);
    let response_media = s
        .response_types
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(m, _)| m.clone())
        .unwrap_or_else(|| "application/json".into());
    let mut responses = Map::new();
    for (code, n) in &s.status {
        if *code == 0 || !(100..=599).contains(code) {
            continue;
        }
        let mut r = json!({"description": format!("Observed {n} times")});
        if let Some(schema) = bodies.get(code) {
            r["content"] = json!({ response_media.clone(): {"schema": schema.to_openapi()} });
        }
        responses.insert(code.to_string(), r);
    }
    if responses.is_empty() {
        responses.insert(
            "default".into(),
            json!({"description": "No response was seen"}),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    let mut security: Vec<Value> = Vec::new();
    for key in s.auth.keys() {
        if let Some((name, scheme)) = security_scheme(key, s) {
            schemes.insert(name.clone(), scheme);
            security.push(json!({ name: [] }));
        }
    }
    if !security.is_empty() {
        if s.unauthenticated_2xx > 0 {
            security.push(json!({}));
        }
        op.insert("security".into(), Value::Array(security));
    }
    if s.deprecated_responses > 0 {
        op.insert("deprecated".into(), json!(true));
    }
    let kinds: Vec<&str> = s.pii_kinds().iter().map(|k| k.as_str()).collect();
    op.insert(
        "x-specter".into(),
        json!({
            "host": host,
            "requests": s.requests,
            "first_seen": format_ts(s.first_seen),
            "last_seen": format_ts(s.last_seen),
            "confidence": (t.confidence() * 100.0).round() / 100.0,
            "auth": s.auth_schemes(),
            "pii": kinds,
        }),
    );
    Value::Object(op)
}

/// Builds the document; `host` limits it to one host.
pub fn document(inv: &Inventory, config: &Config, host: Option<&str>) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut owner: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut schemes: BTreeMap<String, Value> = BTreeMap::new();
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    let mut used_ids: BTreeSet<String> = BTreeSet::new();
    for (h, t) in inv.endpoints(config) {
        if host.is_some_and(|f| !f.eq_ignore_ascii_case(&h)) {
            continue;
        }
        let path = t.path();
        let literal_ok = t.segments.iter().all(|s| match s {
            TemplateSeg::Literal(l) => !l.contains(['{', '}']),
            TemplateSeg::Param(_) => true,
        });
        let method = t.method.to_ascii_lowercase();
        let standard = matches!(
            method.as_str(),
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
        );
        if !literal_ok || !standard {
            continue;
        }
        hosts.insert(h.clone());
        // Two hosts with the same operation: the busier one describes it.
        let key = (path.clone(), method.clone());
        if owner.get(&key).is_some_and(|n| *n >= t.stats.requests) {
            continue;
        }
        owner.insert(key, t.stats.requests);
        let mut op = operation(&h, &t, config, &mut schemes);
        let mut id = op["operationId"].as_str().unwrap_or("op").to_string();
        if used_ids.contains(&id) {
            let base = id.clone();
            let mut k = 2;
            while used_ids.contains(&id) {
                id = format!("{base}{k}");
                k += 1;
            }
            op["operationId"] = json!(id);
        }
        used_ids.insert(id);
        paths.entry(path).or_default().insert(method, op);
    }
    let servers: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"url": format!("http://{h}"), "description": "observed host"}))
        .collect();
    let tags: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"name": h, "description": format!("Endpoints observed on {h}")}))
        .collect();
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "API inventory observed by specter",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Endpoints as seen in traffic by specter: templates, parameters, \
                schemas inferred from sampled bodies and the credentials seen. \
                x-specter on each operation says how much traffic it rests on.",
        },
        "servers": servers,
        "tags": tags,
        "paths": paths,
    });
    if !schemes.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes });
    }
    doc
}
