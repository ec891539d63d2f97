/*!
The endpoint objects of `specter endpoints --format json` (DESIGN.md's contract: the
same objects as in `diff --format json`, without the spec fields), and the table.
*/

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::exchange::format_ts;
use crate::infer::endpoint::EndpointStats;
use crate::infer::template::{ParamEvidence, Template};
use crate::infer::{Config, Inventory};

/// A path parameter with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct ParamView {
    pub name: String,
    pub shape: &'static str,
    pub distinct: u64,
    pub distinct_exact: bool,
    pub examples: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<&'static str>,
    /// The format extension its values carry (`.json` in `/users/{userId}.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    pub confidence: f64,
}

/// A query parameter.
#[derive(Debug, Clone, Serialize)]
pub struct QueryView {
    pub name: String,
    pub count: u64,
    /// Present on every request.
    pub required: bool,
    pub types: BTreeMap<String, u64>,
}

/// Sensitive data at one place.
#[derive(Debug, Clone, Serialize)]
pub struct PiiView {
    pub kind: &'static str,
    pub location: String,
    pub count: u64,
    pub samples: Vec<String>,
}

/// One endpoint as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub host: String,
    pub method: String,
    pub path: String,
    pub requests: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub status: BTreeMap<String, u64>,
    pub auth: Vec<String>,
    pub pii: Vec<&'static str>,
    pub confidence: f64,
    pub params: Vec<ParamView>,
    pub query: Vec<QueryView>,
    pub request_types: Vec<String>,
    pub response_types: Vec<String>,
    pub protocols: BTreeMap<String, u64>,
    /// Distinct callers (salted identity hashes), estimated above 64.
    pub identities: u64,
    pub auth_detail: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<serde_json::Value>,
    pub pii_detail: Vec<PiiView>,
    pub deprecated_responses: u64,
    pub unauthenticated_2xx: u64,
    pub bodies_sampled: u64,
    /// Requests seen in cleartext (not from decrypted TLS); not part of the output.
    #[serde(skip)]
    pub cleartext_requests: u64,
}

fn param_view(p: &ParamEvidence) -> ParamView {
    ParamView {
        name: p.name.clone(),
        shape: p.shape.as_str(),
        distinct: p.distinct,
        distinct_exact: p.distinct_exact,
        examples: p.examples.clone(),
        folded: p.fold.map(|f| f.as_str()),
        suffix: p.suffix.clone(),
        confidence: (p.confidence * 100.0).round() / 100.0,
    }
}

impl EndpointView {
    /// Builds the view of one template.
    pub fn new(host: &str, t: &Template<EndpointStats>) -> EndpointView {
        let s = &t.stats;
        let pii_detail = s
            .all_pii()
            .into_values()
            .map(|p| PiiView {
                kind: p.kind.as_str(),
                location: p.location,
                count: p.count,
                samples: p.samples.values().map(str::to_string).collect(),
            })
            .collect();
        EndpointView {
            host: host.to_string(),
            method: t.method.clone(),
            path: t.path(),
            requests: s.requests,
            first_seen: format_ts(s.first_seen),
            last_seen: format_ts(s.last_seen),
            status: s
                .status
                .iter()
                .map(|(k, v)| {
                    let k = if *k == 0 {
                        "none".to_string()
                    } else {
                        k.to_string()
                    };
                    (k, *v)
                })
                .collect(),
            auth: s.auth_schemes(),
            pii: s.pii_kinds().iter().map(|k| k.as_str()).collect(),
            confidence: (t.confidence() * 100.0).round() / 100.0,
            params: t.params().map(param_view).collect(),
            query: s
                .query
                .iter()
                .map(|(n, q)| QueryView {
                    name: n.clone(),
                    count: q.count,
                    required: q.count >= s.requests,
                    types: q.types.clone(),
                })
                .collect(),
            request_types: s.request_types.keys().cloned().collect(),
            response_types: s.response_types.keys().cloned().collect(),
            protocols: s.protos.clone(),
            identities: s.identities.distinct(),
            auth_detail: s.auth.clone(),
            jwt: (s.jwt.tokens > 0).then(|| {
                serde_json::json!({
                    "tokens": s.jwt.tokens,
                    "with_exp": s.jwt.with_exp,
                    "algs": s.jwt.algs,
                    "issuers": s.jwt.issuers,
                    "audiences": s.jwt.audiences,
                })
            }),
            pii_detail,
            deprecated_responses: s.deprecated_responses,
            unauthenticated_2xx: s.unauthenticated_2xx,
            bodies_sampled: s.bodies.sampled(),
            cleartext_requests: s.requests.saturating_sub(s.decrypted),
        }
    }
}

/// Which endpoints to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub host: Option<String>,
    pub method: Option<String>,
}

/// The endpoints of an inventory, filtered, sorted by host, path, method.
pub fn views(inv: &Inventory, config: &Config, filter: &Filter) -> Vec<EndpointView> {
    inv.endpoints(config)
        .iter()
        .filter(|(h, t)| {
            filter
                .host
                .as_ref()
                .is_none_or(|f| f.eq_ignore_ascii_case(h))
                && filter
                    .method
                    .as_ref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&t.method))
        })
        .map(|(h, t)| EndpointView::new(h, t))
        .collect()
}

/// Writes `{"endpoints": [...]}`.
pub fn write_json(out: &mut dyn Write, views: &[EndpointView]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "endpoints": views }))?;
    writeln!(out)
}

fn status_text(v: &EndpointView) -> String {
    let mut parts: Vec<String> = v.status.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    if parts.len() > 4 {
        parts.truncate(4);
        parts.push("…".into());
    }
    parts.join(" ")
}

fn list(v: &[impl AsRef<str>]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
    }
}

/// Writes a table for people: one line per endpoint, columns aligned.
pub fn write_table(out: &mut dyn Write, views: &[EndpointView]) -> io::Result<()> {
    let header = [
        "HOST",
        "METHOD",
        "PATH",
        "REQS",
        "FIRST SEEN",
        "LAST SEEN",
        "STATUS",
        "AUTH",
        "PII",
        "CONF",
    ];
    let rows: Vec<[String; 10]> = views
        .iter()
        .map(|v| {
            [
                v.host.clone(),
                v.method.clone(),
                v.path.clone(),
                v.requests.to_string(),
                v.first_seen.chars().take(19).collect(),
                v.last_seen.chars().take(19).collect(),
                status_text(v),
                list(&v.auth),
                list(&v.pii),
                format!("{:.2}", v.confidence),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &header.map(String::from))?;
    for r in &rows {
        line(out, r)?;
    }
    let hosts: std::collections::BTreeSet<&str> = views.iter().map(|v| v.host.as_str()).collect();
    writeln!(
        out,
        "{} endpoints on {} hosts, {} requests",
        views.len(),
        hosts.len(),
        views.iter().map(|v| v.requests).sum::<u64>()
    )
}
