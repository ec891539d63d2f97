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
use crate::infer::TlsService;
use crate::spec::model::Spec;

/// What the check needs to know about the traffic.
pub struct Context<'a> {
    /// Requests per observed host.
    pub host_requests: &'a BTreeMap<String, u64>,
    /// TLS services the sensor could not look into.
    pub tls: &'a BTreeMap<String, TlsService>,
    pub window: &'a Window,
}

/// Adds an `unobserved` finding for each documented operation no endpoint matched.
pub fn check(
    specs: &[Spec],
    index: &Index,
    matched: &BTreeSet<(usize, usize)>,
    ctx: &Context<'_>,
    out: &mut Vec<Finding>,
) {
    let mut done: BTreeSet<(usize, usize)> = BTreeSet::new();
    for e in &index.entries {
        let key = (e.spec, e.op);
        if matched.contains(&key) || !done.insert(key) {
            continue;
        }
        let spec = &specs[e.spec];
        let op = &spec.operations[e.op];
        let reached: u64 = ctx
            .host_requests
            .iter()
            .filter(|(h, _)| op.servers.iter().any(|s| serves(s, h)))
            .map(|(_, n)| n)
            .sum();
        if reached == 0 {
            // Blind: nothing reached this operation's hosts. The window notes it.
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
        if ctx.window.seconds < 3600.0 {
            caveats.push(format!(
                "the window is only {} long",
                human_duration(ctx.window.seconds)
            ));
        }
        if ctx.window.files_failed > 0 || ctx.window.gaps > 0 {
            caveats.push("the capture lost data".to_string());
        }
        let severity = if opaque > 0 || op.deprecated {
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
            "{} {} is documented{} but was never called in {} of traffic ({} requests reached its host){}",
            op.method,
            path,
            if op.deprecated { " (deprecated)" } else { "" },
            human_duration(ctx.window.seconds),
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
                "window_seconds": ctx.window.seconds,
                "window_first_seen": ctx.window.first_seen,
                "window_last_seen": ctx.window.last_seen,
                "host_requests": reached,
                "tls_opaque_connections": opaque,
                "deprecated": op.deprecated,
                "caveats": caveats,
            }),
        ));
    }
}
