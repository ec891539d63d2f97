/*!
The stored inventory (docs/inventory.md has the schema), behind one [`Backend`] trait with
two implementations: an embedded SQLite file ([`sqlite`], the default) and a PostgreSQL
database shared by a fleet of sensors ([`postgres`], chosen by a `postgres://` or
`postgresql://` URL where a file would go).

Both hold the same tables: the template trees (`nodes`), the statistics of every endpoint
(`observations`, one row per tree node and method), the opaque TLS services, the user's
path hints, a `runs` table saying what each analysis saw and skipped, and `endpoints`: the
templates as the last write derived them, for people who query with SQL.

Writers never overwrite each other: [`Store::merge`] adds a batch (what an analysis or a
sensor observed since its last write) to what is stored in one transaction that holds the
inventory's write lock only for itself: read the stored rows, merge in memory with
[`Inventory::merge`] (commutative), write the rows that changed, add the run record,
commit. A writer killed mid-batch leaves the database without any of its batch.
*/

pub mod postgres;
pub mod rows;
pub mod sqlite;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::infer::endpoint::EndpointStats;
use crate::infer::template::{Hint, Template};
use crate::infer::{Config, Inventory};
use rows::{Changes, Rows, RunRow};

/// An inventory that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{target}: {source}")]
    Postgres {
        /// The URL without its password.
        target: String,
        #[source]
        source: ::postgres::Error,
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
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

/// What one analysis (or one sensor flush) did, for the `runs` table.
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

impl RunRecord {
    /// The `runs` row of this record.
    pub fn row(&self) -> RunRow {
        let inputs: Vec<serde_json::Value> = self
            .inputs
            .iter()
            .map(|(n, r)| serde_json::json!({"input": n, "result": r}))
            .collect();
        let errors: Vec<&String> = self
            .inputs
            .iter()
            .filter(|(_, r)| r != "ok")
            .map(|(_, r)| r)
            .collect();
        RunRow {
            id: 0,
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            specter_version: env!("CARGO_PKG_VERSION").to_string(),
            command: self.command.clone(),
            inputs: serde_json::to_string(&inputs).unwrap_or_default(),
            files: self.stats.files as i64,
            files_failed: self.stats.files_failed as i64,
            packets: self.stats.packets as i64,
            bytes: self.stats.bytes as i64,
            exchanges: self.observed.exchanges as i64,
            inventoried: self.observed.inventoried as i64,
            tls_connections: self.observed.tls_connections as i64,
            skipped: serde_json::to_string(&self.observed.skipped).unwrap_or_default(),
            stats: serde_json::to_string(&self.stats).unwrap_or_default(),
            errors: serde_json::to_string(&errors).unwrap_or_default(),
            origin: None,
        }
    }
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

/// What one write transaction stores, decided by the caller from the rows it found.
#[derive(Debug, Default)]
pub struct Write {
    /// Inventory rows to write and delete.
    pub changes: Changes,
    /// User hints to keep (added if absent).
    pub hints: Vec<String>,
    /// Run records to add (their ids are assigned by the database).
    pub runs: Vec<RunRow>,
}

/// Decides a [`Write`] from the stored rows and the run origins already present
/// (`None` writes nothing).
pub type Decide<'a> = dyn FnMut(&Rows, &BTreeSet<String>) -> Result<Option<Write>, StoreError> + 'a;

/// A database that holds an inventory. Every method is one transaction.
pub trait Backend: Send {
    /// The value of a `meta` key, set to `make` first if absent (whoever sets it first
    /// wins; every caller gets the stored value).
    fn meta(&self, key: &str, make: &str) -> Result<String, StoreError>;
    /// The stored path hints.
    fn hints(&self) -> Result<Vec<String>, StoreError>;
    /// The inventory rows, read consistently.
    fn rows(&self) -> Result<Rows, StoreError>;
    /// Every run record.
    fn runs(&self) -> Result<Vec<RunRow>, StoreError>;
    /// Rows of the `endpoints` table.
    fn count_endpoints(&self) -> Result<u64, StoreError>;
    /// Deletes this inventory's own run records (not those merged from elsewhere, which
    /// keep `specter merge` idempotent) that finished before `before` (RFC 3339 text,
    /// compared as text: `2026-01-01` works). Returns how many.
    fn prune_runs(&self, before: &str) -> Result<u64, StoreError>;
    /// In one transaction holding the inventory's write lock: finds which of `origins`
    /// are stored runs already, reads the rows, asks `decide` what to write, writes it
    /// and commits. Returns the ids of the runs added.
    fn write(&self, origins: &[String], decide: &mut Decide<'_>) -> Result<Vec<i64>, StoreError>;
}

/// Test hook: with `SPECTER_TEST_PAUSE_IN_WRITE=FILE`, a write creates FILE once its rows
/// are written and waits a minute before it commits, so a test can kill the writer in
/// the middle of its transaction.
pub(crate) fn test_pause() {
    if let Some(marker) = std::env::var_os("SPECTER_TEST_PAUSE_IN_WRITE") {
        let _ = std::fs::write(marker, b"in transaction\n");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &Path) -> bool {
    db.to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// An open inventory.
pub struct Store {
    backend: Box<dyn Backend>,
    name: String,
}

/// What [`Store::merge`] did.
pub struct Merged {
    /// Ids of the run records added.
    pub run_ids: Vec<i64>,
    /// The whole inventory after the merge (hints applied).
    pub inventory: Inventory,
    /// Its endpoints as templates.
    pub endpoints: Vec<(String, Template<EndpointStats>)>,
    /// Endpoints that were not in the `endpoints` table before.
    pub new: usize,
    /// Rows written or deleted.
    pub rows_written: usize,
}

/// What [`Store::merge_from`] did.
pub enum MergedFrom {
    /// The source's runs were all merged before: nothing was written.
    AlreadyMerged { runs: usize },
    /// The source had no runs: nothing to merge.
    Empty,
    /// The source was merged.
    Merged(Merged),
}

impl Store {
    /// Opens (creating if needed) the inventory `db` names, a SQLite file or a
    /// `postgres://` URL, and brings its schema up to date.
    pub fn open(db: &Path) -> Result<Store, StoreError> {
        if is_url(db) {
            let url = db.to_str().unwrap_or_default();
            Ok(Store {
                name: postgres::redact(url),
                backend: Box::new(postgres::Postgres::open(url)?),
            })
        } else {
            Ok(Store {
                name: db.display().to_string(),
                backend: Box::new(sqlite::Sqlite::open(db)?),
            })
        }
    }

    /// The inventory's name for messages (a URL without its password).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn damaged(&self, d: rows::Damage) -> StoreError {
        StoreError::Damaged {
            path: PathBuf::from(&self.name),
            what: d.what,
            why: d.why,
        }
    }

    /// The inventory's salt for identity hashes, made on first use.
    pub fn salt(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.backend.meta("salt", &new_salt())?.into_bytes())
    }

    /// The inventory's random identity (names its runs when they are merged elsewhere).
    pub fn inventory_id(&self) -> Result<String, StoreError> {
        self.backend.meta("inventory_id", &new_salt())
    }

    /// Path hints stored by earlier analyses.
    pub fn hints(&self) -> Result<Vec<Hint>, StoreError> {
        self.backend
            .hints()?
            .iter()
            .map(|p| {
                Hint::parse(p).map_err(|e| StoreError::Damaged {
                    path: PathBuf::from(&self.name),
                    what: format!("hints `{p}`"),
                    why: e.to_string(),
                })
            })
            .collect()
    }

    /// Reads the whole inventory.
    pub fn load(&self) -> Result<Inventory, StoreError> {
        self.backend.rows()?.decode().map_err(|d| self.damaged(d))
    }

    /// Endpoints as the last write derived them (the `endpoints` table's rows).
    pub fn endpoints_known(&self) -> Result<u64, StoreError> {
        self.backend.count_endpoints()
    }

    /// Deletes the inventory's own run records that finished before `before` (retention:
    /// the inventory keeps what they taught it). Returns how many.
    pub fn prune_runs(&self, before: &str) -> Result<u64, StoreError> {
        self.backend.prune_runs(before)
    }

    /// What the runs behind the inventory saw, summed: for qualifying a diff's claims.
    pub fn traffic(&self) -> Result<crate::diff::Traffic, StoreError> {
        let mut t = crate::diff::Traffic::default();
        for run in self.backend.runs()? {
            let stats: serde_json::Value = serde_json::from_str(&run.stats).unwrap_or_default();
            let count = |k: &str| {
                stats
                    .get(k)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            t.runs += 1;
            t.exchanges += run.exchanges.max(0) as u64;
            t.files_failed += run.files_failed.max(0) as u64;
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

    /// Merges `stored` rows with `delta` under `config`: the merged inventory, its
    /// endpoints, how many are new and the rows that change.
    fn combine(
        &self,
        stored: &Rows,
        delta: &Inventory,
        config: &Config,
    ) -> Result<(Merged, Changes), StoreError> {
        let mut inv = stored.decode().map_err(|d| self.damaged(d))?;
        inv.apply_hints(config);
        inv.merge(delta.clone(), config);
        let endpoints = inv.endpoints(config);
        let new_rows = Rows::encode(&inv, &endpoints);
        let new = new_rows
            .endpoints
            .keys()
            .filter(|k| !stored.endpoints.contains_key(*k))
            .count();
        let changes = Rows::diff(stored, &new_rows);
        let merged = Merged {
            run_ids: Vec::new(),
            inventory: inv,
            endpoints,
            new,
            rows_written: changes.len(),
        };
        Ok((merged, changes))
    }

    /// Adds a batch (`delta`: what was observed since the last write) to the stored
    /// inventory with its run record, in one transaction: counts add, first seen takes
    /// the minimum, last seen the maximum, schemas and samples merge as in memory. Any
    /// number of writers may merge at once; none loses another's batch. `hints` are the
    /// user's hints to keep (a spec's templates are not stored).
    pub fn merge(
        &self,
        delta: &Inventory,
        config: &Config,
        hints: &[Hint],
        run: &RunRecord,
    ) -> Result<Merged, StoreError> {
        let mut out = None;
        let run_ids = self.backend.write(&[], &mut |stored, _| {
            let (merged, changes) = self.combine(stored, delta, config)?;
            out = Some(merged);
            Ok(Some(Write {
                changes,
                hints: hints.iter().map(|h| h.text.clone()).collect(),
                runs: vec![run.row()],
            }))
        })?;
        let mut merged = out.ok_or_else(|| StoreError::Invalid {
            path: PathBuf::from(&self.name),
            why: "the write decided nothing".into(),
        })?;
        merged.run_ids = run_ids;
        Ok(merged)
    }

    /// Merges another inventory (`specter merge`): its inventory, hints and run records.
    /// Idempotent: each run is known by its origin (`INVENTORY-ID/RUN-ID`), and a source
    /// whose runs are all here already is skipped. A source of which only some runs are
    /// here is refused: its inventory sums all its runs and cannot be split.
    pub fn merge_from(&self, source: &Store, config: &Config) -> Result<MergedFrom, StoreError> {
        let source_id = source.inventory_id()?;
        let mut runs = source.backend.runs()?;
        if runs.is_empty() {
            return Ok(MergedFrom::Empty);
        }
        for r in &mut runs {
            r.origin = Some(r.identity(&source_id));
        }
        let own = format!("{}/", self.inventory_id()?);
        let origins: Vec<String> = runs.iter().filter_map(|r| r.origin.clone()).collect();
        let delta = source.load()?;
        let mut config = config.clone();
        let source_hints = source.hints()?;
        for h in &source_hints {
            if !config.hints.contains(h) {
                config.hints.push(h.clone());
            }
        }
        let mut out = None;
        let mut already = 0;
        let run_ids = self.backend.write(&origins, &mut |stored, present| {
            let here = |o: &String| present.contains(o) || o.starts_with(&own);
            already = origins.iter().filter(|o| here(o)).count();
            if already == origins.len() {
                return Ok(None);
            }
            if already > 0 {
                return Err(StoreError::Invalid {
                    path: PathBuf::from(&source.name),
                    why: format!(
                        "{already} of its {} runs were merged into {} before, the others not; \
                         its inventory sums them all and cannot be split, so merging it would \
                         count those runs twice",
                        origins.len(),
                        self.name
                    ),
                });
            }
            let (merged, changes) = self.combine(stored, &delta, &config)?;
            out = Some(merged);
            Ok(Some(Write {
                changes,
                hints: source_hints.iter().map(|h| h.text.clone()).collect(),
                runs: runs.clone(),
            }))
        })?;
        Ok(match out {
            None => MergedFrom::AlreadyMerged { runs: already },
            Some(mut m) => {
                m.run_ids = run_ids;
                MergedFrom::Merged(m)
            }
        })
    }
}
