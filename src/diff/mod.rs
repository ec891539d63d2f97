/*!
Specs against reality: the inventory's endpoints matched to the operations of the specs,
and the findings (shadow, zombie, unobserved, pii, drift, posture) with their evidence.

[`diff`] takes an inventory and loaded specs and returns a [`model::Report`]. Before
matching, every spec's paths are applied to the hosts it serves as path hints, so the
inventory's templates take the spec's parameter names and shapes (`/reports/daily` and
`/reports/summary` become `/reports/{date}` where the spec says so); then each endpoint is
matched by [`matching::Index`] and checked by [`rules`]. Documented operations that no
endpoint matched are `unobserved`, a claim qualified by the traffic that reached their
host and the capture's health ([`unobserved`]).
*/

pub mod baseline;
pub mod check;
pub mod fields;
pub mod finding;
pub mod matching;
pub mod model;
pub mod policy;
pub mod rules;
pub mod unobserved;

use std::collections::{BTreeMap, BTreeSet};

use crate::exchange::format_ts;
use crate::infer::endpoint::EndpointStats;
use crate::infer::template::Template;
use crate::infer::{Config, Inventory};
use crate::report::endpoints::EndpointView;
use crate::spec::model::Spec;
use finding::Place;
use matching::Index;
use model::{Finding, Kind, Report, ReportEndpoint, SpecInfo, SpecLocation, Summary, Window};
use rules::Seen;

/// What the runs behind the inventory saw, for qualifying claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Analyses merged into the inventory.
    pub runs: u64,
    pub exchanges: u64,
    pub files_failed: u64,
    /// Reassembly holes that were never filled.
    pub tcp_gaps: u64,
    /// Flows dropped because the flow table was full.
    pub flows_evicted: u64,
    /// Packets that could not be decoded.
    pub undecodable: u64,
}

/// Choices of the caller.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compare endpoints on hosts no spec serves too (as shadow), instead of leaving
    /// them out as another service's.
    pub all_hosts: bool,
    /// `generated_at` of the report (RFC 3339).
    pub generated_at: String,
}

fn location(spec: &Spec, op: Option<&crate::spec::model::Operation>) -> SpecLocation {
    SpecLocation {
        file: spec.file.display().to_string(),
        line: op.map_or(spec.paths_line, |o| o.line),
        spec_path: op.map(|o| o.spec_path.clone()),
        operation_id: op.and_then(|o| o.operation_id.clone()),
    }
}

/// Observed endpoints of one host matched to one operation entry, merged.
struct Group {
    host: String,
    entry: Option<usize>,
    head_as_get: bool,
    template: Template<EndpointStats>,
}

/// Compares an inventory with specs.
pub fn diff(
    mut inv: Inventory,
    config: &Config,
    specs: &[Spec],
    spec_details: Vec<SpecInfo>,
    traffic: &Traffic,
    opts: &Options,
) -> Report {
    let index = Index::new(specs);
    let mut groups: Vec<Group> = Vec::new();
    let mut out_of_scope: BTreeMap<String, u64> = BTreeMap::new();
    let mut host_requests: BTreeMap<String, u64> = BTreeMap::new();
    let mut host_span: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (host, tree) in inv.hosts.iter_mut() {
        let mut hints = config.hints.clone();
        for e in &index.entries {
            let op = &specs[e.spec].operations[e.op];
            if op.servers.iter().any(|s| matching::serves(s, host)) {
                hints.extend(crate::spec::hint_for(&e.full_path).ok());
            }
        }
        tree.apply_hints(&hints);
        let in_scope = opts.all_hosts || index.covers(specs, host);
        let mut by_entry: BTreeMap<(String, usize), usize> = BTreeMap::new();
        for t in tree.templates(&hints, &config.template) {
            *host_requests.entry(host.clone()).or_default() += t.stats.requests;
            let span = host_span.entry(host.clone()).or_insert((i64::MAX, 0));
            if t.stats.first_seen > 0 {
                span.0 = span.0.min(t.stats.first_seen);
            }
            span.1 = span.1.max(t.stats.last_seen);
            if !in_scope {
                *out_of_scope.entry(host.clone()).or_default() += 1;
                continue;
            }
            let path = t.path();
            let found = index.find(specs, host, &t.method, &path);
            match found {
                Some(m) => {
                    let key = (t.method.clone(), m.entry);
                    match by_entry.get(&key) {
                        Some(&gi) => {
                            groups[gi]
                                .template
                                .stats
                                .merge_with(&t.stats, &config.endpoint);
                        }
                        None => {
                            by_entry.insert(key, groups.len());
                            groups.push(Group {
                                host: host.clone(),
                                entry: Some(m.entry),
                                head_as_get: m.head_as_get,
                                template: t,
                            });
                        }
                    }
                }
                None => groups.push(Group {
                    host: host.clone(),
                    entry: None,
                    head_as_get: false,
                    template: t,
                }),
            }
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    let mut endpoints = Vec::new();
    let mut matched: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut spec_hosts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for g in &groups {
        let mut view = EndpointView::new(&g.host, &g.template);
        let seen_stats = &g.template.stats;
        let entry = g.entry.map(|e| &index.entries[e]);
        if let Some(e) = entry {
            view.path = e.full_path.clone();
            matched.insert((e.spec, e.op));
            spec_hosts.entry(e.spec).or_default().insert(g.host.clone());
        }
        let seen = Seen {
            view: &view,
            stats: seen_stats,
            limits: &config.endpoint,
        };
        let (spec_path, operation_id, spec_file, deprecated) = match entry {
            Some(e) => {
                let spec = &specs[e.spec];
                let op = &spec.operations[e.op];
                let place = Place::observed(&view, Some(location(spec, Some(op))));
                rules::documented(&seen, &place, spec, op, g.head_as_get, &mut findings);
                rules::posture(&seen, &place, Some(op), &mut findings);
                (
                    Some(op.spec_path.clone()),
                    op.operation_id.clone(),
                    Some(spec.file.display().to_string()),
                    op.deprecated,
                )
            }
            None => {
                let succ = index.successor(specs, &g.host, &g.template.method, &view.path);
                let (place_spec, successor) = match &succ {
                    Some((ei, old, new)) => {
                        let e = &index.entries[*ei];
                        let spec = &specs[e.spec];
                        let op = &spec.operations[e.op];
                        (
                            Some(location(spec, Some(op))),
                            Some((spec, op, old.clone(), new.clone())),
                        )
                    }
                    None => (
                        serving_spec(specs, &g.host).map(|s| location(s, None)),
                        None,
                    ),
                };
                let place = Place::observed(&view, place_spec);
                rules::undocumented(&seen, &place, successor, &mut findings);
                rules::posture(&seen, &place, None, &mut findings);
                (None, None, None, false)
            }
        };
        endpoints.push(ReportEndpoint {
            documented: spec_path.is_some(),
            spec_path,
            operation_id,
            spec: spec_file,
            deprecated,
            view,
        });
    }

    let (first_seen, last_seen) = host_span
        .values()
        .fold((i64::MAX, 0i64), |(f, l), (a, b)| (f.min(*a), l.max(*b)));
    let mut window = window(&inv, traffic, first_seen, last_seen, &out_of_scope);
    let blind = unobserved::check(
        specs,
        &index,
        &matched,
        &unobserved::Context {
            host_requests: &host_requests,
            host_span: &host_span,
            spec_hosts: &spec_hosts,
            tls: &inv.tls,
            window: &window,
        },
        &mut findings,
    );
    window.notes.extend(blind);
    sort(&mut findings);
    endpoints.sort_by(|a, b| {
        (&a.view.host, &a.view.path, &a.view.method).cmp(&(
            &b.view.host,
            &b.view.path,
            &b.view.method,
        ))
    });
    let summary = summarize(&endpoints, specs, &findings);
    Report {
        specter_version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: opts.generated_at.clone(),
        specs: spec_details.iter().map(|s| s.file.clone()).collect(),
        spec_details,
        summary,
        window,
        endpoints,
        findings,
    }
}

/// The first spec serving a host, where shadow findings on it are located.
fn serving_spec<'a>(specs: &'a [Spec], host: &str) -> Option<&'a Spec> {
    specs.iter().find(|s| {
        s.servers.iter().any(|v| matching::serves(v, host))
            || s.operations
                .iter()
                .any(|o| o.servers.iter().any(|v| matching::serves(v, host)))
    })
}

/// Findings by severity (highest first), then kind, host, path, method, rule, id.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then_with(|| {
                (&a.host, &a.path, &a.method, &a.rule, &a.id)
                    .cmp(&(&b.host, &b.path, &b.method, &b.rule, &b.id))
            })
    });
}

/// Counts for the summary.
pub fn summarize(endpoints: &[ReportEndpoint], specs: &[Spec], findings: &[Finding]) -> Summary {
    let mut s = Summary {
        endpoints: endpoints.len() as u64,
        documented: endpoints.iter().filter(|e| e.documented).count() as u64,
        operations: specs.iter().map(|s| s.operations.len() as u64).sum(),
        ..Default::default()
    };
    recount(&mut s, findings);
    s
}

/// Recounts the finding counts of a summary (after a baseline removed some).
pub fn recount(s: &mut Summary, findings: &[Finding]) {
    s.shadow = 0;
    s.zombie = 0;
    s.unobserved = 0;
    s.pii = 0;
    s.drift = 0;
    s.posture = 0;
    s.severity.clear();
    for f in findings {
        let n = match f.kind {
            Kind::Shadow => &mut s.shadow,
            Kind::Zombie => &mut s.zombie,
            Kind::Unobserved => &mut s.unobserved,
            Kind::Pii => &mut s.pii,
            Kind::Drift => &mut s.drift,
            Kind::Posture => &mut s.posture,
        };
        *n += 1;
        *s.severity
            .entry(f.severity.as_str().to_string())
            .or_default() += 1;
    }
}

fn window(
    inv: &Inventory,
    traffic: &Traffic,
    first: i64,
    last: i64,
    out_of_scope: &BTreeMap<String, u64>,
) -> Window {
    let mut w = Window {
        runs: traffic.runs,
        exchanges: traffic.exchanges,
        files_failed: traffic.files_failed,
        gaps: traffic.tcp_gaps,
        ..Default::default()
    };
    if first != i64::MAX && last >= first {
        w.first_seen = Some(format_ts(first));
        w.last_seen = Some(format_ts(last));
        w.seconds = (last - first) as f64 / 1e9;
    }
    for s in inv.tls.values() {
        let name = s.sni.clone().unwrap_or_else(|| s.server.clone());
        *w.tls_opaque.entry(name).or_default() += s.connections;
    }
    if w.first_seen.is_none() {
        w.notes
            .push("no HTTP traffic was seen: nothing can be claimed unobserved".into());
    } else if w.seconds < 3600.0 {
        w.notes.push(format!(
            "the traffic window is {} long: operations called less often than that may be reported unobserved",
            human_duration(w.seconds)
        ));
    }
    if traffic.files_failed > 0 {
        w.notes.push(format!(
            "{} capture file(s) could not be read to the end",
            traffic.files_failed
        ));
    }
    if traffic.tcp_gaps > 0 || traffic.flows_evicted > 0 || traffic.undecodable > 0 {
        w.notes.push(format!(
            "the capture lost data: {} reassembly gaps, {} flows evicted, {} packets that could not be decoded",
            traffic.tcp_gaps, traffic.flows_evicted, traffic.undecodable
        ));
    }
    if !out_of_scope.is_empty() {
        w.notes.push(format!(
            "{} endpoint(s) on {} host(s) that no spec serves were not compared ({}); --all-hosts compares them",
            out_of_scope.values().sum::<u64>(),
            out_of_scope.len(),
            out_of_scope.keys().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    w
}

/// `40 s`, `12 min`, `3.5 h`, `2.0 days`.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}

impl Traffic {
    /// The traffic of one analysis that was not stored (`specter ci`).
    pub fn of_run(stats: &crate::stats::Stats, observed: &crate::infer::Observed) -> Traffic {
        Traffic {
            runs: 1,
            exchanges: observed.exchanges,
            files_failed: stats.files_failed,
            tcp_gaps: stats.tcp_gaps,
            flows_evicted: stats.flows_evicted,
            undecodable: stats.undecodable.values().sum(),
        }
    }
}
