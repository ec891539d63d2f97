/*!
The SQLite backend: one file, WAL journal, schema version in `PRAGMA user_version`.
Writers serialise on SQLite's write lock (`BEGIN IMMEDIATE`), taken for one batch at a
time; readers are never blocked.
*/

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{EndpointRow, NodeRow, ObsRow, Rows, RunRow, TlsRow, RUN_COLUMNS};
use super::{Backend, Decide, StoreError};

/// Migrations, in order; `user_version` is the number applied. PostgreSQL has the same
/// ones in its dialect (`postgres::MIGRATIONS`).
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
    // 2: runs merged from other inventories (`specter merge`) name where they came from.
    "ALTER TABLE runs ADD COLUMN origin TEXT;
     CREATE UNIQUE INDEX runs_origin ON runs (origin);",
    // 3: `nodes.path` may hold `{}.json` segments, parameters with a format extension,
    // which older versions would misread as literals: nothing to convert, but the
    // version tells them the inventory is too new for them.
    "UPDATE nodes SET fold = fold WHERE 1 = 0;",
];

/// The schema version this specter writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An inventory in a SQLite file.
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Opens (creating if needed) an inventory file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        // Writers queue for the lock one batch at a time: wait long rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(300))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        let store = Sqlite {
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

    fn version(&self) -> rusqlite::Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let too_new = |found| StoreError::TooNew {
            path: self.path.clone(),
            found,
            known: SCHEMA_VERSION,
        };
        let version = self.version().map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(too_new(version));
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        // Another process may be migrating the same file: decide under the write lock.
        self.in_write(|| {
            let version = self.version().map_err(|e| self.err(e))?;
            if version > SCHEMA_VERSION {
                return Err(too_new(version));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                self.conn
                    .execute_batch(sql)
                    .and_then(|_| self.conn.pragma_update(None, "user_version", i as i64 + 1))
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// Runs `f` in a transaction that holds the write lock from its start, committing
    /// if it succeeds and rolling back if not.
    fn in_write<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        match f() {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs a query without parameters and maps every row.
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

    fn read_rows(&self) -> Result<Rows, StoreError> {
        let mut rows = Rows::default();
        for r in self.query_all("SELECT host, path, fold, param FROM nodes", |r| {
            Ok(NodeRow {
                host: r.get(0)?,
                path: r.get(1)?,
                fold: r.get(2)?,
                param: r.get(3)?,
            })
        })? {
            rows.nodes.insert((r.host.clone(), r.path.clone()), r);
        }
        for r in self.query_all(
            "SELECT host, path, method, requests, first_seen, last_seen, stats FROM observations",
            |r| {
                Ok(ObsRow {
                    host: r.get(0)?,
                    path: r.get(1)?,
                    method: r.get(2)?,
                    requests: r.get(3)?,
                    first_seen: r.get(4)?,
                    last_seen: r.get(5)?,
                    stats: r.get(6)?,
                })
            },
        )? {
            let key = (r.host.clone(), r.path.clone(), r.method.clone());
            rows.observations.insert(key, r);
        }
        for r in self.query_all(
            "SELECT server, sni, connections, first_seen, last_seen, detail FROM tls_services",
            |r| {
                Ok(TlsRow {
                    server: r.get(0)?,
                    sni: r.get(1)?,
                    connections: r.get(2)?,
                    first_seen: r.get(3)?,
                    last_seen: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
        )? {
            rows.tls.insert((r.server.clone(), r.sni.clone()), r);
        }
        for r in self.query_all(
            "SELECT host, method, path, requests, first_seen, last_seen, confidence, status, auth, pii
             FROM endpoints",
            |r| {
                Ok(EndpointRow {
                    host: r.get(0)?,
                    method: r.get(1)?,
                    path: r.get(2)?,
                    requests: r.get(3)?,
                    first_seen: r.get(4)?,
                    last_seen: r.get(5)?,
                    confidence: r.get(6)?,
                    status: r.get(7)?,
                    auth: r.get(8)?,
                    pii: r.get(9)?,
                })
            },
        )? {
            let key = (r.host.clone(), r.method.clone(), r.path.clone());
            rows.endpoints.insert(key, r);
        }
        Ok(rows)
    }

    fn present(&self, origins: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let mut found = BTreeSet::new();
        if origins.is_empty() {
            return Ok(found);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT 1 FROM runs WHERE origin = ?1")
            .map_err(|e| self.err(e))?;
        for o in origins {
            if stmt.exists([o]).map_err(|e| self.err(e))? {
                found.insert(o.clone());
            }
        }
        Ok(found)
    }

    fn apply(&self, w: &super::Write) -> rusqlite::Result<Vec<i64>> {
        let c = &w.changes;
        let tx = &self.conn;
        let mut st = tx.prepare_cached("DELETE FROM nodes WHERE host = ?1 AND path = ?2")?;
        for (h, p) in &c.nodes_gone {
            st.execute(params![h, p])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO nodes (host, path, fold, param) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for r in &c.nodes {
            st.execute(params![r.host, r.path, r.fold, r.param])?;
        }
        let mut st = tx.prepare_cached(
            "DELETE FROM observations WHERE host = ?1 AND path = ?2 AND method = ?3",
        )?;
        for (h, p, m) in &c.observations_gone {
            st.execute(params![h, p, m])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO observations (host, path, method, requests, first_seen, last_seen, stats)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in &c.observations {
            st.execute(params![
                r.host,
                r.path,
                r.method,
                r.requests,
                r.first_seen,
                r.last_seen,
                r.stats
            ])?;
        }
        let mut st =
            tx.prepare_cached("DELETE FROM tls_services WHERE server = ?1 AND sni = ?2")?;
        for (s, n) in &c.tls_gone {
            st.execute(params![s, n])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO tls_services (server, sni, connections, first_seen, last_seen, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in &c.tls {
            st.execute(params![
                r.server,
                r.sni,
                r.connections,
                r.first_seen,
                r.last_seen,
                r.detail
            ])?;
        }
        let mut st = tx.prepare_cached(
            "DELETE FROM endpoints WHERE host = ?1 AND method = ?2 AND path = ?3",
        )?;
        for (h, m, p) in &c.endpoints_gone {
            st.execute(params![h, m, p])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO endpoints (host, method, path, requests, first_seen, last_seen, confidence, status, auth, pii)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in &c.endpoints {
            st.execute(params![
                r.host,
                r.method,
                r.path,
                r.requests,
                r.first_seen,
                r.last_seen,
                r.confidence,
                r.status,
                r.auth,
                r.pii
            ])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO hints (pattern, added_at) VALUES (?1, datetime('now'))",
        )?;
        for h in &w.hints {
            st.execute([h])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT INTO runs (started_at, finished_at, specter_version, command, inputs, files,
                files_failed, packets, bytes, exchanges, inventoried, tls_connections, skipped,
                stats, errors, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        let mut ids = Vec::new();
        for r in &w.runs {
            st.execute(params![
                r.started_at,
                r.finished_at,
                r.specter_version,
                r.command,
                r.inputs,
                r.files,
                r.files_failed,
                r.packets,
                r.bytes,
                r.exchanges,
                r.inventoried,
                r.tls_connections,
                r.skipped,
                r.stats,
                r.errors,
                r.origin
            ])?;
            ids.push(tx.last_insert_rowid());
        }
        Ok(ids)
    }
}

impl Backend for Sqlite {
    fn meta(&self, key: &str, make: &str) -> Result<String, StoreError> {
        let get = || {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
                .map_err(|e| self.err(e))
        };
        if let Some(v) = get()? {
            return Ok(v);
        }
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                [key, make],
            )
            .map_err(|e| self.err(e))?;
        // Another writer may have won the race: read back what is stored.
        get()?.ok_or_else(|| StoreError::Invalid {
            path: self.path.clone(),
            why: format!("meta key {key} could not be stored"),
        })
    }

    fn hints(&self) -> Result<Vec<String>, StoreError> {
        self.query_all("SELECT pattern FROM hints ORDER BY pattern", |r| r.get(0))
    }

    fn rows(&self) -> Result<Rows, StoreError> {
        // One read transaction: the tables as one write left them.
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(|e| self.err(e))?;
        let rows = self.read_rows();
        let _ = self.conn.execute_batch("COMMIT");
        rows
    }

    fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.query_all(
            &format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"),
            |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    specter_version: r.get(3)?,
                    command: r.get(4)?,
                    inputs: r.get(5)?,
                    files: r.get(6)?,
                    files_failed: r.get(7)?,
                    packets: r.get(8)?,
                    bytes: r.get(9)?,
                    exchanges: r.get(10)?,
                    inventoried: r.get(11)?,
                    tls_connections: r.get(12)?,
                    skipped: r.get(13)?,
                    stats: r.get(14)?,
                    errors: r.get(15)?,
                    origin: r.get(16)?,
                })
            },
        )
    }

    fn count_endpoints(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM endpoints", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn prune_runs(&self, before: &str) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "DELETE FROM runs WHERE origin IS NULL AND finished_at < ?1",
                [before],
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    fn write(&self, origins: &[String], decide: &mut Decide<'_>) -> Result<Vec<i64>, StoreError> {
        self.in_write(|| {
            let present = self.present(origins)?;
            let rows = self.read_rows()?;
            let Some(w) = decide(&rows, &present)? else {
                return Ok(Vec::new());
            };
            let ids = self.apply(&w).map_err(|e| self.err(e))?;
            super::test_pause();
            Ok(ids)
        })
    }
}
