/*!
The inventory as table rows, the same for every backend: [`Rows::encode`] turns an
[`Inventory`] into the rows of `nodes`, `observations`, `tls_services` and `endpoints`,
[`Rows::decode`] reads them back, and [`Rows::diff`] says which rows a merge changed, so
a backend writes only those.
*/

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::infer::endpoint::EndpointStats;
use crate::infer::segment::Shape;
use crate::infer::sketch::{Examples, Sketch};
use crate::infer::template::{Fold, Node, Param, Template, Tree};
use crate::infer::{Inventory, TlsService};

/// The columns of the `runs` table as both backends read them back, in this order.
pub const RUN_COLUMNS: &str = "id, started_at, finished_at, specter_version, command, inputs, \
     files, files_failed, packets, bytes, exchanges, inventoried, tls_connections, skipped, \
     stats, errors, origin";

/// A `nodes` row: a template tree node (`param` set for parameter nodes).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub host: String,
    pub path: String,
    pub fold: Option<String>,
    pub param: Option<String>,
}

/// An `observations` row: one method's statistics at a node.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsRow {
    pub host: String,
    pub path: String,
    pub method: String,
    pub requests: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub stats: String,
}

/// A `tls_services` row.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsRow {
    pub server: String,
    pub sni: String,
    pub connections: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub detail: String,
}

/// An `endpoints` row: a template as the last write derived it, for SQL users.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRow {
    pub host: String,
    pub method: String,
    pub path: String,
    pub requests: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub confidence: f64,
    pub status: String,
    pub auth: String,
    pub pii: String,
}

/// A `runs` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRow {
    /// The row id in its own inventory (ignored when writing: the database assigns it).
    pub id: i64,
    pub started_at: String,
    pub finished_at: String,
    pub specter_version: String,
    pub command: String,
    pub inputs: String,
    pub files: i64,
    pub files_failed: i64,
    pub packets: i64,
    pub bytes: i64,
    pub exchanges: i64,
    pub inventoried: i64,
    pub tls_connections: i64,
    pub skipped: String,
    pub stats: String,
    pub errors: String,
    /// `INVENTORY-ID/RUN-ID` of the run this row was merged from (`specter merge`);
    /// None for a run of this inventory.
    pub origin: Option<String>,
}

impl RunRow {
    /// The run's identity across inventories: its origin, or `inventory/id` for a run
    /// made here.
    pub fn identity(&self, inventory: &str) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| format!("{inventory}/{}", self.id))
    }
}

/// Key of a `nodes` or `tls_services` row.
pub type Key2 = (String, String);
/// Key of an `observations` or `endpoints` row.
pub type Key3 = (String, String, String);

/// The inventory tables' rows, by primary key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub nodes: BTreeMap<Key2, NodeRow>,
    pub observations: BTreeMap<Key3, ObsRow>,
    pub tls: BTreeMap<Key2, TlsRow>,
    pub endpoints: BTreeMap<Key3, EndpointRow>,
}

/// What a write changes: rows to insert or replace, and keys to delete.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub nodes: Vec<NodeRow>,
    pub nodes_gone: Vec<Key2>,
    pub observations: Vec<ObsRow>,
    pub observations_gone: Vec<Key3>,
    pub tls: Vec<TlsRow>,
    pub tls_gone: Vec<Key2>,
    pub endpoints: Vec<EndpointRow>,
    pub endpoints_gone: Vec<Key3>,
}

impl Changes {
    /// Rows written or deleted.
    pub fn len(&self) -> usize {
        self.nodes.len()
            + self.nodes_gone.len()
            + self.observations.len()
            + self.observations_gone.len()
            + self.tls.len()
            + self.tls_gone.len()
            + self.endpoints.len()
            + self.endpoints_gone.len()
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The parameter evidence of a `nodes` row.
#[derive(Serialize, Deserialize)]
struct ParamRow {
    shapes: BTreeMap<Shape, u64>,
    values: Sketch,
    examples: Examples,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default)]
    rest: bool,
}

/// Escapes a literal segment for the `path` column (`{}` marks parameters, `{}.json` a
/// parameter with a format extension). NUL, which PostgreSQL text cannot hold, is
/// escaped too.
fn escape(seg: &str) -> String {
    seg.replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('/', "%2F")
        .replace('\0', "%00")
}

fn unescape(seg: &str) -> String {
    seg.replace("%00", "\0")
        .replace("%7D", "}")
        .replace("%7B", "{")
        .replace("%2F", "/")
        .replace("%25", "%")
}

fn fold_from(s: Option<&str>) -> Option<Fold> {
    match s? {
        "cap" => Some(Fold::Cap),
        "budget" => Some(Fold::Budget),
        "hint" => Some(Fold::Hint),
        "learned" => Some(Fold::Learned),
        _ => None,
    }
}

/// A node waiting to be encoded: its path, itself, and its parameter record if it is one.
type Pending<'a> = (
    String,
    &'a Node<EndpointStats>,
    Option<&'a Param<EndpointStats>>,
);

/// Finds or creates the parameter child of `node` for a format extension (`.json` of a
/// `{}.json` segment; empty for `{}`).
fn param_of<'t>(node: &'t mut Node<EndpointStats>, ext: &str) -> &'t mut Param<EndpointStats> {
    match ext {
        "" => node.param.get_or_insert_with(Default::default),
        ext => node.suffixed.entry(unescape(ext)).or_default(),
    }
}

/// Finds or creates the node a `path` column names.
fn node_at<'t>(tree: &'t mut Tree<EndpointStats>, path: &str) -> &'t mut Node<EndpointStats> {
    let mut node = &mut tree.root;
    for s in path.split('/').filter(|s| !s.is_empty()) {
        // Escaped literals never start with `{`.
        node = if let Some(ext) = s.strip_prefix("{}") {
            &mut param_of(node, ext).node
        } else {
            node.literals.entry(unescape(s)).or_default()
        };
    }
    node
}

/// The parameter a `path` column ending in `/{}` or `/{}.ext` names.
fn param_at<'t>(
    tree: &'t mut Tree<EndpointStats>,
    path: &str,
) -> Option<&'t mut Param<EndpointStats>> {
    let (parent, last) = path.rsplit_once('/')?;
    let ext = last.strip_prefix("{}")?;
    Some(param_of(node_at(tree, parent), ext))
}

/// A row that could not be read back: which, and why.
#[derive(Debug)]
pub struct Damage {
    pub what: String,
    pub why: String,
}

impl Rows {
    /// The rows of an inventory and of its `endpoints` (as [`Inventory::endpoints`]
    /// derives them).
    pub fn encode(inv: &Inventory, endpoints: &[(String, Template<EndpointStats>)]) -> Rows {
        let mut rows = Rows::default();
        for (host, tree) in &inv.hosts {
            let mut stack: Vec<Pending<'_>> = vec![(String::from("/"), &tree.root, None)];
            while let Some((path, node, param)) = stack.pop() {
                let param_json = param.map(|p| {
                    serde_json::to_string(&ParamRow {
                        shapes: p.shapes.clone(),
                        values: p.values.clone(),
                        examples: p.examples.clone(),
                        name: p.name.clone(),
                        rest: p.rest,
                    })
                    .unwrap_or_default()
                });
                rows.nodes.insert(
                    (host.clone(), path.clone()),
                    NodeRow {
                        host: host.clone(),
                        path: path.clone(),
                        fold: node.fold.map(|f| f.as_str().to_string()),
                        param: param_json,
                    },
                );
                for (m, s) in &node.methods {
                    rows.observations.insert(
                        (host.clone(), path.clone(), m.clone()),
                        ObsRow {
                            host: host.clone(),
                            path: path.clone(),
                            method: m.clone(),
                            requests: s.requests as i64,
                            first_seen: s.first_seen,
                            last_seen: s.last_seen,
                            stats: serde_json::to_string(s).unwrap_or_default(),
                        },
                    );
                }
                let base = if path == "/" {
                    String::new()
                } else {
                    path.clone()
                };
                for (k, child) in &node.literals {
                    stack.push((format!("{base}/{}", escape(k)), child, None));
                }
                if let Some(p) = &node.param {
                    stack.push((format!("{base}/{{}}"), &p.node, Some(p)));
                }
                for (ext, p) in &node.suffixed {
                    stack.push((format!("{base}/{{}}{}", escape(ext)), &p.node, Some(p)));
                }
            }
        }
        for s in inv.tls.values() {
            let sni = s.sni.clone().unwrap_or_default();
            rows.tls.insert(
                (s.server.clone(), sni.clone()),
                TlsRow {
                    server: s.server.clone(),
                    sni,
                    connections: s.connections as i64,
                    first_seen: s.first_seen,
                    last_seen: s.last_seen,
                    detail: serde_json::to_string(s).unwrap_or_default(),
                },
            );
        }
        for (host, t) in endpoints {
            let s = &t.stats;
            let status: BTreeMap<String, u64> =
                s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let kinds: Vec<&str> = s.pii_kinds().iter().map(|k| k.as_str()).collect();
            let path = t.path();
            rows.endpoints.insert(
                (host.clone(), t.method.clone(), path.clone()),
                EndpointRow {
                    host: host.clone(),
                    method: t.method.clone(),
                    path,
                    requests: s.requests as i64,
                    first_seen: crate::exchange::format_ts(s.first_seen),
                    last_seen: crate::exchange::format_ts(s.last_seen),
                    confidence: t.confidence(),
                    status: serde_json::to_string(&status).unwrap_or_default(),
                    auth: serde_json::to_string(&s.auth_schemes()).unwrap_or_default(),
                    pii: serde_json::to_string(&kinds).unwrap_or_default(),
                },
            );
        }
        rows
    }

    /// The inventory these rows hold (`endpoints` rows are derived: not read).
    pub fn decode(&self) -> Result<Inventory, Damage> {
        let mut inv = Inventory::default();
        let damaged = |what: String, why: String| Damage { what, why };
        for r in self.nodes.values() {
            let (host, path) = (&r.host, &r.path);
            let tree = inv.hosts.entry(host.clone()).or_default();
            let fold = fold_from(r.fold.as_deref());
            if let Some(json) = &r.param {
                let row: ParamRow = serde_json::from_str(json)
                    .map_err(|e| damaged(format!("nodes {host} {path}"), e.to_string()))?;
                let Some(p) = param_at(tree, path) else {
                    return Err(damaged(
                        format!("nodes {host} {path}"),
                        "a parameter row whose path does not end in /{} or /{}.ext".into(),
                    ));
                };
                p.node.fold = fold;
                p.shapes = row.shapes;
                p.values = row.values;
                p.examples = row.examples;
                p.name = row.name;
                p.rest = row.rest;
            } else {
                node_at(tree, path).fold = fold;
            }
        }
        for r in self.observations.values() {
            let what = || format!("observations {} {} {}", r.host, r.method, r.path);
            let stats: EndpointStats =
                serde_json::from_str(&r.stats).map_err(|e| damaged(what(), e.to_string()))?;
            let tree = inv.hosts.entry(r.host.clone()).or_default();
            node_at(tree, &r.path)
                .methods
                .insert(r.method.clone(), stats);
        }
        for t in inv.hosts.values_mut() {
            t.nodes = t.root.count();
        }
        for r in self.tls.values() {
            let s: TlsService = serde_json::from_str(&r.detail)
                .map_err(|e| damaged("tls_services".into(), e.to_string()))?;
            inv.tls.insert(
                format!("{}|{}", s.server, s.sni.as_deref().unwrap_or("")),
                s,
            );
        }
        Ok(inv)
    }

    /// The rows to write and delete to turn `old` into `new`.
    pub fn diff(old: &Rows, new: &Rows) -> Changes {
        let mut c = Changes::default();
        changed(&old.nodes, &new.nodes, &mut c.nodes, &mut c.nodes_gone);
        changed(
            &old.observations,
            &new.observations,
            &mut c.observations,
            &mut c.observations_gone,
        );
        changed(&old.tls, &new.tls, &mut c.tls, &mut c.tls_gone);
        changed(
            &old.endpoints,
            &new.endpoints,
            &mut c.endpoints,
            &mut c.endpoints_gone,
        );
        c
    }
}

fn changed<K: Ord + Clone, V: PartialEq + Clone>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    write: &mut Vec<V>,
    gone: &mut Vec<K>,
) {
    for (k, v) in new {
        if old.get(k) != Some(v) {
            write.push(v.clone());
        }
    }
    gone.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_with_an_extension_come_back() {
        use crate::infer::template::Limits;
        let mut inv = Inventory::default();
        let tree = inv.hosts.entry("api.example.com".into()).or_default();
        let l = Limits::default();
        for p in [
            "/orders/1.json",
            "/orders/2.json",
            "/orders/3",
            "/orders/4.xml/items",
        ] {
            tree.insert(p, "GET", &[], &l).requests += 1;
        }
        let rows = Rows::encode(&inv, &[]);
        let paths: Vec<&str> = rows.nodes.keys().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/orders",
                "/orders/{}",
                "/orders/{}.json",
                "/orders/{}.xml",
                "/orders/{}.xml/items"
            ]
        );
        let back = rows
            .decode()
            .unwrap_or_else(|d| panic!("{}: {}", d.what, d.why));
        assert_eq!(back.hosts, inv.hosts);
        assert_eq!(Rows::encode(&back, &[]), rows);
    }

    #[test]
    fn segments_escape_and_come_back() {
        for s in ["a%b", "{x}", "a/b", "nul\0here", "%00", "%7B"] {
            assert_eq!(unescape(&escape(s)), s);
        }
    }
}
