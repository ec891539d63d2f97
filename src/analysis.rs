/*!
One analysis against a stored inventory: what `specter analyze` does between opening the
inventory and writing it back, shared with the live sensor (which writes back every flush
interval instead of once).

[`Analysis::open`] reads the inventory with its configuration (salt, the user's hints, the
templates of the specs given), [`Analysis::observe`] adds exchanges to it, and
[`Analysis::save`] writes it back with a record of the run in one transaction.
*/

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::exchange::Exchange;
use crate::infer::endpoint::EndpointStats;
use crate::infer::template::{self, Hint, Template};
use crate::infer::{self, Inventory, Observed};
use crate::spec::SpecError;
use crate::stats::Stats;
use crate::store::{RunRecord, Store};

/// An endpoint's identity: host, method, path template.
type EndpointKey = (String, String, String);

/// An inventory being extended.
pub struct Analysis {
    store: Store,
    /// Salt, hints (the user's and the specs' templates) and limits of inference.
    pub config: infer::Config,
    /// The inventory: what was stored plus what this analysis observed.
    pub inventory: Inventory,
    /// What this analysis observed (counts of exchanges inventoried and skipped).
    pub observed: Observed,
    /// The user's hints, stored with the inventory (the specs' are not: they apply to the
    /// runs given that spec).
    user_hints: Vec<Hint>,
    /// The endpoints known when the analysis began, to count what is new.
    before: BTreeSet<EndpointKey>,
    started_at: String,
}

/// What [`Analysis::save`] wrote.
pub struct Saved {
    /// The id of the run record.
    pub run_id: i64,
    /// The inventory's endpoints as templates.
    pub endpoints: Vec<(String, Template<EndpointStats>)>,
    /// Distinct hosts among them.
    pub hosts: usize,
    /// Endpoints not known when the analysis began.
    pub new: usize,
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

/// Opens the inventory and the configuration stored in it (salt, hints).
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
        let mut inventory = store.load()?;
        inventory.apply_hints(&config);
        // Nothing is known before a first run; deriving templates walks every endpoint.
        let before = if inventory.hosts.is_empty() {
            BTreeSet::new()
        } else {
            inventory
                .endpoints(&config)
                .into_iter()
                .map(|(h, t)| (h, t.method.clone(), t.path()))
                .collect()
        };
        let analysis = Analysis {
            store,
            config,
            inventory,
            observed: Observed::default(),
            user_hints,
            before,
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

    /// Writes the inventory back with a run record (`command`, each input with `ok` or its
    /// error, the pipeline's counters) in one transaction.
    pub fn save(
        &mut self,
        command: String,
        inputs: Vec<(String, String)>,
        stats: Stats,
    ) -> Result<Saved, crate::store::StoreError> {
        let endpoints = self.inventory.endpoints(&self.config);
        let run = RunRecord {
            started_at: self.started_at.clone(),
            finished_at: now_text(),
            command,
            inputs,
            stats,
            observed: self.observed.clone(),
        };
        let run_id = self
            .store
            .save(&self.inventory, &endpoints, &self.user_hints, &run)?;
        let hosts: BTreeSet<&str> = endpoints.iter().map(|(h, _)| h.as_str()).collect();
        let new = endpoints
            .iter()
            .filter(|(h, t)| {
                !self
                    .before
                    .contains(&(h.clone(), t.method.clone(), t.path()))
            })
            .count();
        let hosts = hosts.len();
        Ok(Saved {
            run_id,
            endpoints,
            hosts,
            new,
        })
    }

    /// Ends the analysis, giving back the inventory, its configuration and the store.
    pub fn into_parts(self) -> (Inventory, infer::Config, Store) {
        (self.inventory, self.config, self.store)
    }
}
