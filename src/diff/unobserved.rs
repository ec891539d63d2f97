/*!
Documented operations that no observed endpoint matched. "Never seen" is only claimed
where the sensor could see: an operation whose hosts received no cleartext traffic at all
is not reported (the window says so instead), and one whose host also had TLS the sensor
could not look into is reported at `info` with that caveat.
*/

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::finding::Place;
use super::human_duration;
use super::matching::{serves, Index};
use super::model::{Finding, Kind, Severity, SpecLocation, Window};
use crate::exchange::format_ts;
use crate::infer::TlsService;
use crate::spec::model::Spec;

/// What the check needs to know about the traffic.
pub struct Context<'a> {
    /// Requests per observed host.
    pub host_requests: &'a BTreeMap<String, u64>,
    /// First and last exchange per observed host (capture timestamps).
    pub host_span: &'a BTreeMap<String, (i64, i64)>,
    /// Per spec (by index), the hosts on which some of its operations were observed.
    pub spec_hosts: &'a BTreeMap<usize, BTreeSet<String>>,
    /// TLS services the sensor could not look into.
    pub tls: &'a BTreeMap<String, TlsService>,
    pub window: &'a Window,
}

/// Adds an `unobserved` finding for each documented operation no endpoint matched, and
/// returns notes for the window on the operations it could not assess.
pub fn check(
    specs: &[Spec],
    index: &Index,
    matched: &BTreeSet<(usize, usize)>,
    ctx: &Context<'_>,
    out: &mut Vec<Finding>,
) -> Vec<String> {
    let mut done: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut blind: BTreeMap<usize, u64> = BTreeMap::new();
    for e in &index.entries {
        let key = (e.spec, e.op);
        if matched.contains(&key) || !done.insert(key) {
            continue;
        }
        let spec = &specs[e.spec];
        let op = &spec.operations[e.op];
        // A server without a host serves any host, but a spec is only held against a host
        // where some of its operations were seen: a host-less spec of one service says
        // nothing of another service's traffic.
        let seen_on = ctx.spec_hosts.get(&e.spec);
        let served = |h: &String| {
            op.servers.iter().any(|s| {
                serves(s, h) && (s.host.is_some() || seen_on.is_some_and(|set| set.contains(h)))
            })
        };
        let reached: u64 = ctx
            .host_requests
            .iter()
            .filter(|(h, _)| served(h))
            .map(|(_, n)| n)
            .sum();
        // The window that matters is the one in which traffic reached these hosts.
        let (first, last) = ctx
            .host_span
            .iter()
            .filter(|(h, _)| served(h))
            .fold((i64::MAX, 0i64), |(f, l), (_, (a, b))| {
                (f.min(*a), l.max(*b))
            });
        let seconds = if first <= last {
            (last - first) as f64 / 1e9
        } else {
            0.0
        };
        if reached == 0 {
            // Blind: nothing reached this operation's hosts. The window notes it.
            *blind.entry(e.spec).or_default() += 1;
            continue;
        }
        let opaque: u64 = ctx
            .tls
            .values()
            .filter(|t| {
                let name = t.sni.as_deref().unwrap_or(&t.server);
                op.servers
                    .iter()
                    .any(|s| s.host.is_some() && serves(s, name))
            })
            .map(|t| t.connections)
            .sum();
        let host = op
            .servers
            .iter()
            .find_map(|s| s.host.clone())
            .or_else(|| {
                ctx.host_requests
                    .keys()
                    .find(|h| op.servers.iter().any(|s| serves(s, h)))
                    .cloned()
            })
            .unwrap_or_else(|| "*".into());
        let mut caveats = Vec::new();
        if opaque > 0 {
            caveats.push(format!(
                "{opaque} TLS connection(s) to this host could not be looked into"
            ));
        }
        let short = seconds < 3600.0;
        if short {
            caveats.push("the window is shorter than an hour".to_string());
        }
        if ctx.window.files_failed > 0 || ctx.window.gaps > 0 {
            caveats.push("the capture lost data".to_string());
        }
        let severity = if opaque > 0 || op.deprecated || short {
            Severity::Info
        } else {
            Severity::Low
        };
        let path = op.full_paths().into_iter().next().unwrap_or_default();
        let place = Place {
            host,
            method: op.method.clone(),
            path: path.clone(),
            requests: 0,
            first_seen: None,
            last_seen: None,
            spec: Some(SpecLocation {
                file: spec.file.display().to_string(),
                line: op.line,
                spec_path: Some(op.spec_path.clone()),
                operation_id: op.operation_id.clone(),
            }),
        };
        let message = format!(
            "{} {} is documented{} but was never called in {} of traffic to its host ({} requests){}",
            op.method,
            path,
            if op.deprecated { " (deprecated)" } else { "" },
            human_duration(seconds),
            reached,
            if caveats.is_empty() {
                String::new()
            } else {
                format!("; {}", caveats.join("; "))
            }
        );
        out.push(place.finding(
            Kind::Unobserved,
            "unobserved.operation",
            "",
            severity,
            message,
            json!({
                "host_window_seconds": seconds,
                "host_first_seen": (first <= last).then(|| format_ts(first)),
                "host_last_seen": (first <= last).then(|| format_ts(last)),
                "window_seconds": ctx.window.seconds,
                "host_requests": reached,
                "tls_opaque_connections": opaque,
                "deprecated": op.deprecated,
                "caveats": caveats,
            }),
        ));
    }
    blind
        .into_iter()
        .map(|(si, n)| {
            let spec = &specs[si];
            let hosts: Vec<String> = spec.servers.iter().filter_map(|s| s.host.clone()).collect();
            format!(
                "{}: no traffic reached {}; {n} of its operations were not assessed as unobserved",
                spec.file.display(),
                if hosts.is_empty() {
                    "its servers".to_string()
                } else {
                    hosts.join(", ")
                }
            )
        })
        .collect()
}
