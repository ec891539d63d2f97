/*!
The SQLite inventory (docs/inventory.md has the schema).

The file holds the template trees (`nodes`), the statistics of every endpoint as learnt
(`observations`, one row per tree node and method), the opaque TLS services, the user's
path hints, a `runs` table saying what each analysis saw and skipped, and `endpoints`:
the templates as the last analysis derived them, for people who query the file with SQL.

An analysis loads the inventory, merges what it learnt and writes it back in one
transaction (WAL journal): a crash leaves the previous state, never half of one.
Schema changes are migrations keyed by `PRAGMA user_version`.
*/

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::infer::endpoint::EndpointStats;
use crate::infer::segment::Shape;
use crate::infer::sketch::{Examples, Sketch};
use crate::infer::template::{Fold, Hint, Node, Param, Template, Tree};
use crate::infer::{Inventory, TlsService};

/// An inventory file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: inventory schema version {found} is newer than this specter understands ({known}); upgrade specter")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: row {what} is damaged: {why}")]
    Damaged {
        path: PathBuf,
        what: String,
        why: String,
    },
}

/// Migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: the first inventory.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        specter_version TEXT NOT NULL,
        command TEXT NOT NULL,
        inputs TEXT NOT NULL,
        files INTEGER NOT NULL,
        files_failed INTEGER NOT NULL,
        packets INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        exchanges INTEGER NOT NULL,
        inventoried INTEGER NOT NULL,
        tls_connections INTEGER NOT NULL,
        skipped TEXT NOT NULL,
        stats TEXT NOT NULL,
        errors TEXT NOT NULL);
     CREATE TABLE nodes (
        host TEXT NOT NULL,
        path TEXT NOT NULL,
        fold TEXT,
        param TEXT,
        PRIMARY KEY (host, path)) WITHOUT ROWID;
     CREATE TABLE observations (
        host TEXT NOT NULL,
        path TEXT NOT NULL,
        method TEXT NOT NULL,
        requests INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        stats TEXT NOT NULL,
        PRIMARY KEY (host, path, method)) WITHOUT ROWID;
     CREATE TABLE tls_services (
        server TEXT NOT NULL,
        sni TEXT NOT NULL,
        connections INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (server, sni)) WITHOUT ROWID;
     CREATE TABLE hints (pattern TEXT PRIMARY KEY, added_at TEXT NOT NULL);
     CREATE TABLE endpoints (
        host TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        requests INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        confidence REAL NOT NULL,
        status TEXT NOT NULL,
        auth TEXT NOT NULL,
        pii TEXT NOT NULL,
        PRIMARY KEY (host, method, path)) WITHOUT ROWID;",
];

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

/// What one analysis did, for the `runs` table.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub started_at: String,
    pub finished_at: String,
    pub command: String,
    /// Each input with `ok` or its error.
    pub inputs: Vec<(String, String)>,
    pub stats: crate::stats::Stats,
    pub observed: crate::infer::Observed,
}

/// A fresh random salt for identity hashes (32 hex digits), for an inventory that has
/// none yet or one that is never stored (`specter ci`).
pub fn new_salt() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut salt = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        salt.push_str(&format!("{:016x}", h.finish()));
    }
    salt
}

/// An open inventory.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Escapes a literal segment for the `path` column (`{}` marks parameters).
fn escape(seg: &str) -> String {
    seg.replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('/', "%2F")
}

fn unescape(seg: &str) -> String {
    seg.replace("%7D", "}")
        .replace("%7B", "{")
        .replace("%2F", "/")
        .replace("%25", "%")
}

fn fold_name(f: Option<Fold>) -> Option<&'static str> {
    f.map(Fold::as_str)
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

impl Store {
    /// Opens (creating if needed) an inventory file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "user_version", i as i64 + 1))
                .and_then(|_| tx.commit())
                .map_err(|e| StoreError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// The inventory's salt for identity hashes, made on first use.
    pub fn salt(&self) -> Result<Vec<u8>, StoreError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(s) = found {
            return Ok(s.into_bytes());
        }
        let salt = new_salt();
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?1)",
                [&salt],
            )
            .map_err(|e| self.err(e))?;
        // Another writer may have won the race: read back what is stored.
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
                r.get::<_, String>(0)
            })
            .map(String::into_bytes)
            .map_err(|e| self.err(e))
    }

    /// Path hints stored by earlier analyses.
    pub fn hints(&self) -> Result<Vec<Hint>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT pattern FROM hints ORDER BY pattern")
            .map_err(|e| self.err(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|p| {
                Hint::parse(p).map_err(|e| StoreError::Damaged {
                    path: self.path.clone(),
                    what: format!("hints `{p}`"),
                    why: e.to_string(),
                })
            })
            .collect()
    }

    /// Runs a query without parameters and maps every row (the inventory is bounded by
    /// the tree limits, so its rows fit in memory).
    fn query_all<T>(
        &self,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], row)
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Reads the whole inventory.
    pub fn load(&self) -> Result<Inventory, StoreError> {
        let mut inv = Inventory::default();
        let damaged = |what: String, why: String| StoreError::Damaged {
            path: self.path.clone(),
            what,
            why,
        };
        let rows = self.query_all(
            "SELECT host, path, fold, param FROM nodes ORDER BY host, path",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )?;
        for (host, path, fold, param) in rows {
            let tree = inv.hosts.entry(host.clone()).or_default();
            let fold = fold_from(fold.as_deref());
            if let Some(json) = param {
                let row: ParamRow = serde_json::from_str(&json)
                    .map_err(|e| damaged(format!("nodes {host} {path}"), e.to_string()))?;
                let Some(p) = param_at(tree, &path) else {
                    return Err(damaged(
                        format!("nodes {host} {path}"),
                        "a parameter row whose path does not end in /{}".into(),
                    ));
                };
                p.node.fold = fold;
                p.shapes = row.shapes;
                p.values = row.values;
                p.examples = row.examples;
                p.name = row.name;
                p.rest = row.rest;
            } else {
                node_at(tree, &path).fold = fold;
            }
        }
        let rows = self.query_all("SELECT host, path, method, stats FROM observations", |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for (host, path, method, json) in rows {
            let what = || format!("observations {host} {method} {path}");
            let stats: EndpointStats =
                serde_json::from_str(&json).map_err(|e| damaged(what(), e.to_string()))?;
            let tree = inv.hosts.entry(host.clone()).or_default();
            node_at(tree, &path).methods.insert(method, stats);
        }
        for t in inv.hosts.values_mut() {
            t.nodes = t.root.count();
        }
        let rows: Vec<String> = self.query_all("SELECT detail FROM tls_services", |r| r.get(0))?;
        for json in rows {
            let s: TlsService = serde_json::from_str(&json)
                .map_err(|e| damaged("tls_services".into(), e.to_string()))?;
            inv.tls.insert(
                format!("{}|{}", s.server, s.sni.as_deref().unwrap_or("")),
                s,
            );
        }
        Ok(inv)
    }

    /// What the runs behind the inventory saw, summed: for qualifying a diff's claims.
    pub fn traffic(&self) -> Result<crate::diff::Traffic, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT exchanges, files_failed, stats FROM runs")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut t = crate::diff::Traffic::default();
        for row in rows {
            let (exchanges, failed, stats) = row.map_err(|e| self.err(e))?;
            let stats: serde_json::Value = serde_json::from_str(&stats).unwrap_or_default();
            let count = |k: &str| {
                stats
                    .get(k)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            t.runs += 1;
            t.exchanges += exchanges.max(0) as u64;
            t.files_failed += failed.max(0) as u64;
            t.tcp_gaps += count("tcp_gaps");
            t.flows_evicted += count("flows_evicted");
            t.undecodable += stats
                .get("undecodable")
                .and_then(serde_json::Value::as_object)
                .map_or(0, |m| {
                    m.values().filter_map(serde_json::Value::as_u64).sum()
                });
        }
        Ok(t)
    }

    /// Writes the inventory, the hints and a run record in one transaction.
    /// `endpoints` are the inventory's templates as [`Inventory::endpoints`] derives them
    /// (the caller has them already: deriving them walks and copies every endpoint).
    /// `hints` are the user's hints to keep (a spec's templates are not stored: they
    /// apply to the runs given that spec).
    pub fn save(
        &mut self,
        inv: &Inventory,
        endpoints: &[(String, Template<EndpointStats>)],
        hints: &[Hint],
        run: &RunRecord,
    ) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        write_inventory(&tx, inv, endpoints, hints).map_err(e)?;
        let run_id = write_run(&tx, run).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(run_id)
    }
}

/// Finds or creates the node a `path` column names (`{}` segments are parameters).
fn node_at<'t>(tree: &'t mut Tree<EndpointStats>, path: &str) -> &'t mut Node<EndpointStats> {
    let mut node = &mut tree.root;
    for s in path.split('/').filter(|s| !s.is_empty()) {
        node = if s == "{}" {
            &mut node.param.get_or_insert_with(Default::default).node
        } else {
            node.literals.entry(unescape(s)).or_default()
        };
    }
    node
}

/// The parameter a `path` column ending in `/{}` names.
fn param_at<'t>(
    tree: &'t mut Tree<EndpointStats>,
    path: &str,
) -> Option<&'t mut Param<EndpointStats>> {
    let parent = path.strip_suffix("/{}")?;
    let node = node_at(tree, parent);
    Some(node.param.get_or_insert_with(Default::default))
}

/// A node waiting to be written: its path, itself, and its parameter record if it is one.
type Pending<'a> = (
    String,
    &'a Node<EndpointStats>,
    Option<&'a Param<EndpointStats>>,
);

fn write_inventory(
    tx: &Transaction<'_>,
    inv: &Inventory,
    endpoints: &[(String, Template<EndpointStats>)],
    hints: &[Hint],
) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DELETE FROM nodes; DELETE FROM observations; DELETE FROM tls_services; DELETE FROM endpoints;",
    )?;
    {
        let mut node_stmt =
            tx.prepare("INSERT INTO nodes (host, path, fold, param) VALUES (?1, ?2, ?3, ?4)")?;
        let mut obs_stmt = tx.prepare(
            "INSERT INTO observations (host, path, method, requests, first_seen, last_seen, stats)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
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
                node_stmt.execute(params![host, path, fold_name(node.fold), param_json])?;
                for (m, s) in &node.methods {
                    let json = serde_json::to_string(s).unwrap_or_default();
                    obs_stmt.execute(params![
                        host,
                        path,
                        m,
                        s.requests as i64,
                        s.first_seen,
                        s.last_seen,
                        json
                    ])?;
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
            }
        }
        let mut tls_stmt = tx.prepare(
            "INSERT INTO tls_services (server, sni, connections, first_seen, last_seen, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for s in inv.tls.values() {
            tls_stmt.execute(params![
                s.server,
                s.sni.clone().unwrap_or_default(),
                s.connections as i64,
                s.first_seen,
                s.last_seen,
                serde_json::to_string(s).unwrap_or_default()
            ])?;
        }
        let mut hint_stmt = tx.prepare(
            "INSERT OR IGNORE INTO hints (pattern, added_at) VALUES (?1, datetime('now'))",
        )?;
        for h in hints {
            hint_stmt.execute([&h.text])?;
        }
        let mut ep_stmt = tx.prepare(
            "INSERT OR REPLACE INTO endpoints (host, method, path, requests, first_seen, last_seen, confidence, status, auth, pii)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (host, t) in endpoints {
            let s = &t.stats;
            let status: BTreeMap<String, u64> =
                s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let kinds: Vec<&str> = s.pii_kinds().iter().map(|k| k.as_str()).collect();
            ep_stmt.execute(params![
                host,
                t.method,
                t.path(),
                s.requests as i64,
                crate::exchange::format_ts(s.first_seen),
                crate::exchange::format_ts(s.last_seen),
                t.confidence(),
                serde_json::to_string(&status).unwrap_or_default(),
                serde_json::to_string(&s.auth_schemes()).unwrap_or_default(),
                serde_json::to_string(&kinds).unwrap_or_default(),
            ])?;
        }
    }
    Ok(())
}

fn write_run(tx: &Transaction<'_>, run: &RunRecord) -> rusqlite::Result<i64> {
    let inputs: Vec<serde_json::Value> = run
        .inputs
        .iter()
        .map(|(n, r)| serde_json::json!({"input": n, "result": r}))
        .collect();
    let errors: Vec<&String> = run
        .inputs
        .iter()
        .filter(|(_, r)| r != "ok")
        .map(|(_, r)| r)
        .collect();
    tx.execute(
        "INSERT INTO runs (started_at, finished_at, specter_version, command, inputs, files, files_failed,
            packets, bytes, exchanges, inventoried, tls_connections, skipped, stats, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            run.started_at,
            run.finished_at,
            env!("CARGO_PKG_VERSION"),
            run.command,
            serde_json::to_string(&inputs).unwrap_or_default(),
            run.stats.files as i64,
            run.stats.files_failed as i64,
            run.stats.packets as i64,
            run.stats.bytes as i64,
            run.observed.exchanges as i64,
            run.observed.inventoried as i64,
            run.observed.tls_connections as i64,
            serde_json::to_string(&run.observed.skipped).unwrap_or_default(),
            serde_json::to_string(&run.stats).unwrap_or_default(),
            serde_json::to_string(&errors).unwrap_or_default(),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}
