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
