/*!
One analysis against a stored inventory: what `specter analyze` does between opening the
inventory and writing it back, shared with the live sensor (which writes back every flush
interval instead of once).

[`Analysis::open`] reads the inventory's configuration (salt, the user's hints, the
templates of the specs given), [`Analysis::observe`] adds exchanges to a batch (the
inventory of what was observed since the last save), and [`Analysis::save`] merges the
batch into the stored inventory with a record of the run in one transaction, then starts
a fresh batch. Any number of analyses and sensors may save into one inventory at once.
*/

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::exchange::Exchange;
use crate::infer::endpoint::EndpointStats;
use crate::infer::template::{self, Fold, Hint, Template};
use crate::infer::{self, Inventory, Observed};
use crate::spec::SpecError;
use crate::stats::Stats;
use crate::store::{RunRecord, Store};

/// An inventory being extended.
pub struct Analysis {
    store: Store,
    /// Salt, hints (the user's and the specs' templates) and limits of inference.
    pub config: infer::Config,
    /// The batch: what was observed since the analysis began or last saved (not the
    /// stored inventory: [`Saved::inventory`] is the whole one after a save, and
    /// [`Analysis::endpoints_known`] counts its endpoints).
    pub inventory: Inventory,
    /// What was observed since the analysis began or last saved (counts of exchanges
    /// inventoried and skipped); [`Saved::observed`] keeps what a save wrote.
    pub observed: Observed,
    /// The user's hints, stored with the inventory (the specs' are not: they apply to the
    /// runs given that spec).
    user_hints: Vec<Hint>,
    /// Endpoints in the stored inventory as last read or written.
    known: u64,
    started_at: String,
}

/// What [`Analysis::save`] wrote.
pub struct Saved {
    /// The id of the run record.
    pub run_id: i64,
    /// The stored inventory's endpoints as templates, after the merge.
    pub endpoints: Vec<(String, Template<EndpointStats>)>,
    /// Distinct hosts among them.
    pub hosts: usize,
    /// Endpoints the stored inventory did not have before this save.
    pub new: usize,
    /// The whole stored inventory after the merge.
    pub inventory: Inventory,
    /// What the saved batch observed.
    pub observed: Observed,
    /// Words folded into one parameter while observing the batch: host and node path
    /// (`api.example.com/users`) and why, each once.
    pub folds: Vec<(String, Fold)>,
    /// Inventory rows written or deleted by the merge.
    pub rows_written: usize,
}

/// Why an analysis could not begin.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {why}")]
    Hints { path: PathBuf, why: String },
}

/// The current time in the exchange timestamp format.
pub fn now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    crate::exchange::format_ts(now)
}

/// Opens the inventory (a SQLite file or a `postgres://` URL) and the configuration
/// stored in it (salt, hints).
pub fn open_inventory(db: &Path) -> Result<(Store, infer::Config), crate::store::StoreError> {
    let store = Store::open(db)?;
    let config = infer::Config {
        hints: store.hints()?,
        salt: store.salt()?,
        ..Default::default()
    };
    Ok((store, config))
}

fn add_hints(config: &mut infer::Config, new: Vec<Hint>) {
    for h in new {
        if !config.hints.contains(&h) {
            config.hints.push(h);
        }
    }
}

impl Analysis {
    /// Opens (or creates) the inventory at `db`, adds the hints in `hints_file` (kept with
    /// the inventory) and the templates of `specs` (for this analysis only). A spec that
    /// cannot be read is returned beside the analysis: its templates are only a help.
    pub fn open(
        db: &Path,
        hints_file: Option<&Path>,
        specs: &[PathBuf],
    ) -> Result<(Analysis, Vec<SpecError>), OpenError> {
        let started_at = now_text();
        let (store, mut config) = open_inventory(db)?;
        if let Some(file) = hints_file {
            let hints_error = |why: String| OpenError::Hints {
                path: file.to_path_buf(),
                why,
            };
            let text = std::fs::read_to_string(file).map_err(|e| hints_error(e.to_string()))?;
            let new = template::parse_hints(&text).map_err(|e| hints_error(e.to_string()))?;
            add_hints(&mut config, new);
        }
        let user_hints = config.hints.clone();
        let mut spec_errors = Vec::new();
        for file in specs {
            match crate::spec::hints(file) {
                Ok(hints) => add_hints(&mut config, hints),
                Err(e) => spec_errors.push(e),
            }
        }
        // The stored inventory is read at each save, under the write lock: only the
        // count of endpoints is needed now.
        let known = store.endpoints_known()?;
        let analysis = Analysis {
            store,
            config,
            inventory: Inventory::default(),
            observed: Observed::default(),
            user_hints,
            known,
            started_at,
        };
        Ok((analysis, spec_errors))
    }

    /// Adds one exchange to the inventory.
    pub fn observe(&mut self, ex: &Exchange) {
        self.inventory.observe(ex, &self.config, &mut self.observed);
    }

    /// The store the inventory is written to (for the diff's traffic window).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Endpoints in the stored inventory when the analysis began or last saved.
    pub fn endpoints_known(&self) -> u64 {
        self.known
    }

    /// Merges the batch into the stored inventory with a run record (`command`, each
    /// input with `ok` or its error, the pipeline's counters for this batch only: runs
    /// are summed) in one transaction, then starts a fresh batch. On error the batch is
    /// kept, so a later save retries it.
    pub fn save(
        &mut self,
        command: String,
        inputs: Vec<(String, String)>,
        stats: Stats,
    ) -> Result<Saved, crate::store::StoreError> {
        let finished_at = now_text();
        let run = RunRecord {
            started_at: self.started_at.clone(),
            finished_at: finished_at.clone(),
            command,
            inputs,
            stats,
            observed: self.observed.clone(),
        };
        let merged = self
            .store
            .merge(&self.inventory, &self.config, &self.user_hints, &run)?;
        let batch = std::mem::take(&mut self.inventory);
        let observed = std::mem::take(&mut self.observed);
        self.started_at = finished_at;
        self.known = merged.endpoints.len() as u64;
        let mut folds: Vec<(String, Fold)> = batch
            .hosts
            .into_iter()
            .flat_map(|(host, t)| {
                t.folds
                    .into_iter()
                    .map(move |(p, why)| (format!("{host}{p}"), why))
            })
            .collect();
        folds.sort();
        folds.dedup();
        let hosts: BTreeSet<&str> = merged.endpoints.iter().map(|(h, _)| h.as_str()).collect();
        let hosts = hosts.len();
        Ok(Saved {
            run_id: merged.run_ids.first().copied().unwrap_or_default(),
            endpoints: merged.endpoints,
            hosts,
            new: merged.new,
            inventory: merged.inventory,
            observed,
            folds,
            rows_written: merged.rows_written,
        })
    }

    /// Ends the analysis, giving back the unsaved batch, the configuration and the store.
    pub fn into_parts(self) -> (Inventory, infer::Config, Store) {
        (self.inventory, self.config, self.store)
    }
}
