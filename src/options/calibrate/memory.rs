//! The memory budget: estimate what a configuration may use (block cache plus memtables of every
//! column family) and scale it down to fit, as `memory_budget` corrections.

use serde::Serialize;

use super::correction::{Correction, Rule};
use super::work::Work;
use crate::options::catalog::Catalog;
use crate::options::config::Config;
use crate::options::ini::SectionKind;
use crate::options::value::{Value, human_bytes};

/// Estimated memory of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryEstimate {
    pub block_cache: u64,
    pub memtables: u64,
    pub total: u64,
}

/// Block cache plus the most memtable memory the configuration allows (every column family).
pub fn estimate_memory(catalog: &Catalog, config: &Config) -> MemoryEstimate {
    let int = |k: &str| {
        catalog
            .get(k)
            .map(|e| config.get(e).as_i64().unwrap_or(0))
            .unwrap_or(0)
    };
    let flag = |k: &str| {
        catalog
            .get(k)
            .is_some_and(|e| config.get(e).as_bool() == Some(true))
    };
    let block_cache = if flag("table.no_block_cache") {
        0
    } else {
        int("table.block_cache_size").max(0) as u64
    };
    let default_wbs = int("write_buffer_size").max(0) as u64;
    let default_n = int("max_write_buffer_number").max(0) as u64;
    let mut memtables = default_wbs * default_n;
    let cfs = config.doc.column_families();
    for cf in cfs.iter().filter(|c| **c != "default") {
        let kind = SectionKind::Cf(cf.to_string());
        let get = |k: &str, d: u64| {
            config
                .doc
                .get(&kind, k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(d)
        };
        memtables +=
            get("write_buffer_size", default_wbs) * get("max_write_buffer_number", default_n);
    }
    let cap = int("db_write_buffer_size").max(0) as u64;
    if cap > 0 {
        memtables = memtables.min(cap);
    }
    MemoryEstimate {
        block_cache,
        memtables,
        total: block_cache + memtables,
    }
}

fn round_down_mib(v: i64) -> i64 {
    if v >= 1 << 20 {
        v & !((1 << 20) - 1)
    } else {
        v
    }
}

/// Scale the block cache, then memtable count, then memtable size, until the estimate fits.
pub(super) fn fit_memory_budget(w: &mut Work, budget: u64) {
    let budget = budget.min(i64::MAX as u64) as i64;
    let estimate = |w: &Work| {
        let e = estimate_memory(w.cat, &w.cand);
        (e.block_cache as i64, e.memtables as i64, e.total as i64)
    };
    let (cache, mem, total) = estimate(w);
    if total <= budget {
        return;
    }
    let why = |total: i64| {
        format!(
            "estimated memory {} exceeds the budget {}",
            human_bytes(total),
            human_bytes(budget)
        )
    };
    let cache_floor = 8 << 20;
    if cache > cache_floor {
        let room = round_down_mib(budget - mem).max(cache_floor);
        if room < cache {
            w.adjust(
                "table.block_cache_size",
                Value::Int(room),
                Rule::MemoryBudget,
                why(total),
            );
        }
    }
    let (cache, _, total) = estimate(w);
    if total <= budget {
        return;
    }
    let (Some(wbs), Some(n), Some(merge)) = (
        w.int("write_buffer_size"),
        w.int("max_write_buffer_number"),
        w.int("min_write_buffer_number_to_merge"),
    ) else {
        return;
    };
    let room = (budget - cache).max(0);
    let floor_n = (merge + 1).max(2);
    let n2 = (room / wbs.max(1)).max(floor_n);
    if n2 < n {
        w.adjust(
            "max_write_buffer_number",
            Value::Int(n2),
            Rule::MemoryBudget,
            why(total),
        );
    }
    let (_, _, total) = estimate(w);
    if total <= budget {
        return;
    }
    let n2 = w.int("max_write_buffer_number").unwrap_or(n).max(1);
    let wbs2 = round_down_mib(room / n2).max(4 << 20);
    if wbs2 < wbs {
        w.adjust(
            "write_buffer_size",
            Value::Int(wbs2),
            Rule::MemoryBudget,
            why(total),
        );
    }
    let (_, _, total) = estimate(w);
    if total > budget {
        w.corrections.push(Correction {
            key: "(memory)".into(),
            from: Some(human_bytes(total)),
            to: None,
            rule: Rule::MemoryBudget,
            reason: format!(
                "cannot fit the budget {} without going below the floors (8 MiB cache, 4 MiB memtables)",
                human_bytes(budget)
            ),
        });
    }
}
