//! What a proposer is given for one proposal: the catalog, the machine, the workload and the
//! goal, the start and the best so far with its last measurement, every finished iteration,
//! the memory budget and the proposal schema.

use crate::bench::Workload;
use crate::bench::measure::Diagnostics;
use crate::grammar::schema::SchemaOptions;
use crate::options::{Catalog, Config};
use crate::sysinfo::Facts;
use crate::tune::journal::Iteration;

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
}
