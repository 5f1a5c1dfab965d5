//! Clean and correct a proposal: admit its entries as changes (`admit`: resolve keys with
//! `resolve`, coerce values, clamp ranges, fence unsafe options, drop duplicates, no-ops and
//! changes beyond the limit), repair dependencies between options (`rules`), fit the memory
//! budget (`memory`), and let RocksDB have the last word (`verdict`). Every change the
//! calibrator makes is a `Correction` (`correction`) that goes back to the proposer as feedback.
//! A calibrated config that RocksDB refuses cannot come out of here: the final step opens a
//! database from it and backs out changes until one opens. `validate` checks a configuration
//! without changing it.
//!
//! The steps share the working state in `work`; this module holds the API and the pipeline
//! that runs the steps in order, and no step lives here.

mod admit;
mod correction;
mod memory;
mod resolve;
mod rules;
mod validate;
mod verdict;
mod work;

use std::collections::BTreeMap;

use anyhow::Result;

use super::catalog::Catalog;
use super::config::Config;
use super::ini::OptionsDoc;
use super::proposal::{self, RawProposal};
use super::value::Value;

pub use correction::{Correction, Rule};
pub use memory::{MemoryEstimate, estimate_memory};
pub use validate::{Finding, validate};

use admit::admit;
use memory::fit_memory_budget;
use rules::apply_dependencies;
use verdict::rocksdb_last_word;
use work::Work;

/// Settings of a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// Bytes RocksDB may use (block cache + memtables).
    pub memory_budget: u64,
    /// Accept options that change durability or semantics.
    pub allow_unsafe: bool,
    /// At most this many changes per proposal.
    pub max_changes: usize,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            memory_budget: crate::sysinfo::default_memory_budget(),
            allow_unsafe: false,
            max_changes: 16,
        }
    }
}

/// A calibrated proposal.
#[derive(Debug, Clone)]
pub struct Calibrated {
    /// The full configuration: base plus the accepted changes.
    pub config: Config,
    /// Catalog options whose effective value differs from the base, with the new value.
    pub changes: BTreeMap<String, Value>,
    pub corrections: Vec<Correction>,
    pub reasoning: Option<String>,
    /// How the proposal text was read (`json`, `lines`, `options-file`, `empty`).
    pub format: &'static str,
    /// Entries the proposal carried (before any correction).
    pub proposed: usize,
}

impl Calibrated {
    /// Corrections that fixed an invalid entry of the proposal (see [`Rule::marks_invalid_entry`]).
    pub fn invalid_entries(&self) -> usize {
        self.corrections
            .iter()
            .filter(|c| c.rule.marks_invalid_entry())
            .count()
    }
}

/// The calibrator for one catalog (one linked RocksDB).
pub struct Calibrator<'c> {
    pub catalog: &'c Catalog,
    pub options: CalibrateOptions,
}

impl<'c> Calibrator<'c> {
    pub fn new(catalog: &'c Catalog, options: CalibrateOptions) -> Self {
        Calibrator { catalog, options }
    }

    /// Make a base configuration usable: drop sections and keys the linked RocksDB refuses
    /// (each a correction), stamp the version, and make sure a database opens from it.
    pub fn prepare_base(&self, doc: OptionsDoc) -> Result<(Config, Vec<Correction>)> {
        verdict::prepare_base(self.catalog, doc)
    }

    /// Parse and calibrate proposal text against a prepared base.
    pub fn calibrate_text(&self, base: &Config, text: &str) -> Calibrated {
        self.calibrate(base, &proposal::parse(text))
    }

    /// Calibrate a parsed proposal against a prepared base (see `prepare_base`).
    pub fn calibrate(&self, base: &Config, proposal: &RawProposal) -> Calibrated {
        let mut work = Work {
            cat: self.catalog,
            base,
            cand: base.clone(),
            touched: Vec::new(),
            corrections: Vec::new(),
        };
        admit(&mut work, proposal, &self.options);
        apply_dependencies(&mut work);
        fit_memory_budget(&mut work, self.options.memory_budget);
        rocksdb_last_word(&mut work);
        // A change RocksDB refused may have been what kept memory down (no_block_cache, say):
        // fit again, and let RocksDB judge the result.
        if estimate_memory(self.catalog, &work.cand).total > self.options.memory_budget {
            fit_memory_budget(&mut work, self.options.memory_budget);
            rocksdb_last_word(&mut work);
        }
        let changes = base
            .diff(&work.cand, self.catalog)
            .into_iter()
            .map(|(k, (_, new))| (k, new))
            .collect();
        Calibrated {
            config: work.cand,
            changes,
            corrections: work.corrections,
            reasoning: proposal.reasoning.clone(),
            format: proposal.format,
            proposed: proposal.entries.len(),
        }
    }
}
