//! What a language-model proposer is told: the system message (its role and the answer's
//! form) and the first user turn (machine facts, workload, memory budget, and every option it
//! may change with its current value and range). Kept compact: small local models read it on a
//! 2-core CPU, so each option is one short line.

use crate::bench::workload::Workload;
use crate::grammar::schema::{SchemaOptions, proposable_keys};
use crate::options::value::{OptionType, Value, human_bytes};
use crate::options::{Catalog, Config};
use crate::sysinfo::Facts;

/// The system message.
pub fn system(options: &SchemaOptions) -> String {
    format!(
        "You are a RocksDB performance engineer. You tune a RocksDB configuration for one machine \
         and one workload, a few options at a time, from benchmark measurements. Answer with JSON \
         only: {{\"reasoning\": \"why, briefly\", \"changes\": [{{\"option_name\": value}}, ...]}} \
         with at most {} changes, option names exactly as listed, sizes in bytes, enums as \
         spelled. Prefer changes that address what the measurements show.",
        options.max_changes
    )
}

/// How a value reads in a prompt: sizes with binary units.
fn show(ty: &OptionType, v: &Value) -> String {
    match (ty, v) {
        (OptionType::Size { .. }, Value::Int(b)) if *b >= 1024 => {
            format!("{b} ({})", human_bytes(*b))
        }
        _ => v.to_string(),
    }
}

fn range(ty: &OptionType) -> String {
    match ty {
        OptionType::Bool => "bool".into(),
        OptionType::Int { min, max } => format!("{min}..{max}"),
        OptionType::Size { min, max } => {
            format!("bytes {}..{}", human_bytes(*min), human_bytes(*max))
        }
        OptionType::Double { min, max } => format!("{min}..{max}"),
        OptionType::Enum { values } => values.join("|"),
    }
}

/// Everything the proposer needs for the first proposal.
pub struct FirstTurn<'a> {
    pub facts: &'a Facts,
    pub workload: &'a Workload,
    pub catalog: &'a Catalog,
    pub config: &'a Config,
    pub schema: &'a SchemaOptions,
    pub memory_budget: u64,
}

impl FirstTurn<'_> {
    /// The first user message.
    pub fn render(&self) -> String {
        let w = self.workload;
        let mut s = String::new();
        s.push_str("Machine:\n");
        s.push_str(&self.facts.describe());
        s.push_str(&format!(
            "\n\nWorkload: {} ({}), {} keys of {} B with {} B values, {} thread(s).\n",
            w.kind.name(),
            w.kind.describe(),
            w.num,
            w.key_size,
            w.value_size,
            w.threads
        ));
        s.push_str(&format!(
            "Memory budget for RocksDB (block cache + memtables): {}.\n\n",
            human_bytes(self.memory_budget as i64)
        ));
        s.push_str("Options you may change (name = current value; allowed range):\n");
        for key in proposable_keys(self.catalog, self.schema) {
            let Some(entry) = self.catalog.get(key) else {
                continue;
            };
            let current = self.config.get(entry);
            s.push_str(&format!(
                "{key} = {}; {}\n",
                show(&entry.spec.ty, &current),
                range(&entry.spec.ty)
            ));
        }
        s.push_str(
            "\nPropose the changes you expect to raise throughput the most for this workload.",
        );
        s
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "n/a".into())
}

/// The processed diagnostics of a measurement, one line: what a small model can reason with.
pub fn diagnostics_line(d: &crate::bench::measure::Diagnostics) -> String {
    format!(
        "write stalls {} of the time; write amplification {}; block cache hit rate {}; bloom filter skipped {} of reads it was asked about (false positives {}); {} L0 files",
        pct(d.stall_share),
        d.write_amplification
            .map(|w| format!("{w:.1}"))
            .unwrap_or_else(|| "n/a".into()),
        pct(d.block_cache_hit_rate),
        pct(d.bloom_usefulness),
        pct(d.bloom_false_positive_rate),
        d.l0_files
    )
}

/// The user turn after an iteration: what was applied (after calibration), what the calibrator
/// had to fix, the measured effect with its interval, a failure's error text, and the
/// diagnostics of the best configuration, then the ask for the next proposal.
pub fn feedback(
    it: &crate::tune::journal::Iteration,
    ctx: &crate::tune::proposer::Context,
) -> String {
    use crate::tune::journal::Decision;
    let mut s = format!("Iteration {} result: ", it.iteration);
    if it.changes.is_empty() {
        s.push_str("nothing to apply");
    } else {
        let applied: Vec<String> = it.changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!("applied {}", applied.join(", ")));
    }
    s.push_str(".\n");
    let fixes: Vec<&String> = it
        .corrections
        .iter()
        .filter(|c| !c.starts_with("[no_change]"))
        .take(6)
        .collect();
    if !fixes.is_empty() {
        s.push_str("Calibrator corrections (fix these in your next answer):\n");
        for c in fixes {
            s.push_str(&format!("- {c}\n"));
        }
    }
    if it.changes.is_empty() && it.corrections.iter().any(|c| c.starts_with("[no_change]")) {
        s.push_str("Every value you proposed was already the current value.\n");
    }
    match (it.decision, &it.comparison, &it.failure) {
        (Decision::Failed, _, Some(f)) => {
            s.push_str(&format!("It FAILED: {f}\nAvoid what caused this.\n"))
        }
        (_, Some(c), _) => s.push_str(&format!(
            "Throughput {:+.1}% vs the best so far (95% interval {:+.1}% to {:+.1}%): {}.\n",
            c.effect * 100.0,
            c.effect_low * 100.0,
            c.effect_high * 100.0,
            match it.decision {
                Decision::Accepted => "KEPT as the new best",
                _ => "not kept (not significantly better)",
            }
        )),
        _ => {}
    }
    s.push_str(&format!(
        "Best so far: {:.0} ops/s ({:+.1}% vs the start).\n",
        ctx.best_ops,
        (ctx.best_ops / ctx.baseline_ops.max(1e-9) - 1.0) * 100.0
    ));
    if let Some(d) = &ctx.best_diagnostics {
        s.push_str(&format!(
            "Diagnostics of the best: {}.\n",
            diagnostics_line(d)
        ));
    }
    let changed = ctx.best.diff(ctx.base, ctx.catalog);
    if !changed.is_empty() {
        let list: Vec<String> = changed
            .iter()
            .map(|(k, (now, _))| format!("{k}={now}"))
            .collect();
        s.push_str(&format!(
            "The best configuration changes: {}.\n",
            list.join(", ")
        ));
    }
    s.push_str("Propose the next changes to the best configuration.");
    s
}
