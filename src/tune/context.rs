//! What a proposer is given for one proposal: the catalog, the machine, the workload and the
//! goal, the start and the best so far with its last measurement, every finished iteration,
//! the memory budget and the proposal schema; and the one way it is built from a tune's
//! settings and where the tune stands ([`Context::new`]), used by the loop, by `propose` (one
//! turn of it) and by `llm turns`. The settings' calibrator and proposal schema are here too.

use crate::bench::Workload;
use crate::bench::measure::Diagnostics;
use crate::bench::sample::{Sample, mean};
use crate::grammar::schema::SchemaOptions;
use crate::options::{CalibrateOptions, Calibrator, Catalog, Config, Correction, OptionsDoc};
use crate::sysinfo::Facts;
use crate::tune::journal::{Iteration, Settings};

/// What a proposer knows when it proposes.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub facts: &'a Facts,
    pub workload: &'a Workload,
    /// The starting configuration and the best so far.
    pub base: &'a Config,
    pub best: &'a Config,
    /// Diagnostics and throughput of the best configuration, as last measured.
    pub best_diagnostics: Option<Diagnostics>,
    pub best_ops: f64,
    /// Latency of the best configuration, as last measured (microseconds).
    pub best_p50_us: Option<f64>,
    pub best_p99_us: Option<f64>,
    pub baseline_ops: f64,
    /// Every finished iteration, oldest first.
    pub history: &'a [Iteration],
    pub memory_budget: u64,
    pub schema: &'a SchemaOptions,
    /// 1-based number of the iteration being proposed.
    pub iteration: usize,
    /// Why the proposer is asked again within one iteration (its replies repeated measured
    /// configurations or changed nothing).
    pub note: Option<&'a str>,
    /// What the tune optimizes and the constraints it must keep.
    pub goal: &'a crate::tune::objective::Goal,
    /// The smallest relative gain that counts: a change measured within it either way measured
    /// nothing.
    pub min_effect: f64,
    /// The nearest similar past tunes from the history (a warm start), if any were read.
    pub past: Option<&'a crate::history::Warm>,
}

/// Where a tune stands before a turn: what it runs on, the start and the best so far with their
/// measurements, and every finished iteration.
pub struct Standing<'a> {
    pub catalog: &'a Catalog,
    pub facts: &'a Facts,
    pub schema: &'a SchemaOptions,
    pub base: &'a Config,
    pub best: &'a Config,
    /// The best configuration's last measurement.
    pub best_sample: &'a Sample,
    /// The starting configuration's measurement.
    pub baseline: &'a Sample,
    pub history: &'a [Iteration],
    /// The tune's warm start (journaled with its start).
    pub past: Option<&'a crate::history::Warm>,
}

impl<'a> Context<'a> {
    /// The context of turn `iteration` (1-based) of a tune with `settings`, standing at `at`.
    pub fn new(settings: &'a Settings, at: &Standing<'a>, iteration: usize) -> Context<'a> {
        Context {
            goal: &settings.goal,
            catalog: at.catalog,
            facts: at.facts,
            workload: &settings.workload,
            base: at.base,
            best: at.best,
            best_diagnostics: at.best_sample.diagnostics,
            best_ops: mean(&at.best_sample.ops_per_sec),
            best_p50_us: at.best_sample.p50_us,
            best_p99_us: at.best_sample.p99_us,
            baseline_ops: mean(&at.baseline.ops_per_sec),
            history: at.history,
            memory_budget: settings.memory_budget,
            schema: at.schema,
            iteration,
            note: None,
            min_effect: settings.min_effect,
            past: at.past,
        }
    }
}

impl Settings {
    /// The calibrator these settings ask for: the memory budget, unsafe options, most changes.
    pub fn calibrator<'c>(&self, catalog: &'c Catalog) -> Calibrator<'c> {
        Calibrator::new(
            catalog,
            CalibrateOptions {
                memory_budget: self.memory_budget,
                allow_unsafe: self.allow_unsafe,
                max_changes: self.max_changes,
            },
        )
    }

    /// The starting configuration (`base_file`, else the linked RocksDB's defaults) prepared by
    /// `calibrator`, and the corrections preparing it took.
    pub fn base(&self, calibrator: &Calibrator) -> anyhow::Result<(Config, Vec<Correction>)> {
        let doc = match &self.base_file {
            Some(p) => OptionsDoc::read(p)?,
            None => crate::options::rocks::linked_defaults()?.clone(),
        };
        calibrator.prepare_base(doc)
    }

    /// The proposal schema these settings ask for.
    pub fn schema(&self) -> SchemaOptions {
        SchemaOptions {
            max_changes: self.max_changes,
            allow_unsafe: self.allow_unsafe,
            reasoning_chars: self.reasoning_chars,
        }
    }
}
