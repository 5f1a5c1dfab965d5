//! Clean and correct a proposal: resolve keys (`resolve`), coerce values, clamp ranges, fence
//! unsafe options, repair dependencies between options (`rules`), fit the memory budget
//! (`memory`), and let RocksDB have the last word (`verdict`). Every change the calibrator makes
//! is a `Correction` (`correction`) that goes back to the proposer as feedback. A calibrated
//! config that RocksDB refuses cannot come out of here: the final step opens a database from it
//! and backs out changes until one opens. `validate` checks a configuration without changing it.
//!
//! The steps share the working state in `work`; this module holds the API and the pipeline, and
//! no step uses it.

mod correction;
mod memory;
mod resolve;
mod rules;
mod validate;
mod verdict;
mod work;

use std::collections::BTreeMap;

use anyhow::Result;

use super::access::same_value;
use super::catalog::Catalog;
use super::config::Config;
use super::ini::OptionsDoc;
use super::proposal::{self, RawProposal};
use super::spec::Storage;
use super::value::{RawValue, Value, clamp, coerce, show_exact};

pub use correction::{Correction, Rule};
pub use memory::{MemoryEstimate, estimate_memory};
pub use validate::{Finding, validate};

use memory::fit_memory_budget;
use resolve::{Resolution, resolve};
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
        let mut chosen: Vec<(&'static str, Value)> = Vec::new();
        for entry in &proposal.entries {
            let raw_display = entry.value.to_string();
            let ce = match resolve(self.catalog, &entry.key, entry.scope) {
                Resolution::Found(ce, renamed) => {
                    if let Some(rule) = renamed {
                        work.corrections.push(Correction {
                            key: ce.spec.key.into(),
                            from: Some(entry.key.clone()),
                            to: Some(ce.spec.key.into()),
                            rule,
                            reason: format!("`{}` read as `{}`", entry.key, ce.spec.key),
                        });
                    }
                    ce
                }
                Resolution::NotTunable => {
                    work.corrections.push(Correction {
                        key: entry.key.clone(),
                        from: Some(raw_display),
                        to: None,
                        rule: Rule::NotTunable,
                        reason: "a RocksDB option lsmtune does not tune".into(),
                    });
                    continue;
                }
                Resolution::Unknown(suggestion) => {
                    let hint = suggestion
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    work.corrections.push(Correction {
                        key: entry.key.clone(),
                        from: Some(raw_display),
                        to: None,
                        rule: Rule::UnknownKey,
                        reason: format!(
                            "not an option of RocksDB {}{hint}",
                            self.catalog.rocksdb_version
                        ),
                    });
                    continue;
                }
            };
            let key = ce.spec.key;
            let coerced = match coerce(&ce.spec.ty, &entry.value) {
                Ok(c) => c,
                Err(e) => {
                    // Prose after a value ("4 threads is plenty"): try the first word alone.
                    let first = match &entry.value {
                        RawValue::Text(t) => t
                            .split_whitespace()
                            .next()
                            .filter(|w| *w != t.trim())
                            .and_then(|w| coerce(&ce.spec.ty, &RawValue::Text(w.into())).ok()),
                        _ => None,
                    };
                    match first {
                        Some(mut c) => {
                            c.note = Some(format!("read the leading word of {raw_display}"));
                            c
                        }
                        None => {
                            work.corrections.push(Correction {
                                key: key.into(),
                                from: Some(raw_display),
                                to: None,
                                rule: Rule::Unparsable,
                                reason: format!("{} (expected {})", e.0, ce.spec.ty.describe()),
                            });
                            continue;
                        }
                    }
                }
            };
            let mut value = coerced.value;
            if let Some(note) = coerced.note {
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(raw_display.clone()),
                    to: Some(show_exact(&ce.spec.ty, &value)),
                    rule: Rule::Type,
                    reason: note,
                });
            }
            if let Some(clamped) = clamp(&ce.spec.ty, &value) {
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(show_exact(&ce.spec.ty, &value)),
                    to: Some(show_exact(&ce.spec.ty, &clamped)),
                    rule: Rule::Range,
                    reason: format!("outside {}", ce.spec.ty.describe()),
                });
                value = clamped;
            }
            if !self.options.allow_unsafe && ce.spec.safety.is_unsafe(&value) {
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(value.to_string()),
                    to: None,
                    rule: Rule::Unsafe,
                    reason: format!(
                        "{} ({}); refused without --allow-unsafe",
                        ce.spec.meaning.trim_end_matches('.'),
                        ce.spec.safety.describe()
                    ),
                });
                continue;
            }
            if let Some(pos) = chosen.iter().position(|(k, _)| *k == key) {
                let (_, old) = chosen.remove(pos);
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(old.to_string()),
                    to: Some(value.to_string()),
                    rule: Rule::Duplicate,
                    reason: "given more than once; the last value wins".into(),
                });
            }
            chosen.push((key, value));
        }
        chosen.retain(|(key, value)| {
            let entry = self
                .catalog
                .get(key)
                .expect("resolved keys are in the catalog");
            let current = base.get(entry);
            let same = same_value(&current, value);
            if same {
                work.corrections.push(Correction {
                    key: key.to_string(),
                    from: Some(value.to_string()),
                    to: None,
                    rule: Rule::NoChange,
                    reason: "already the current value".into(),
                });
            }
            !same
        });
        if chosen.len() > self.options.max_changes {
            for (key, value) in chosen.drain(self.options.max_changes..) {
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(value.to_string()),
                    to: None,
                    rule: Rule::TooMany,
                    reason: format!(
                        "a proposal carries at most {} changes",
                        self.options.max_changes
                    ),
                });
            }
        }
        // Filter kind after filter bits, so `bits` then `kind` compose.
        chosen.sort_by_key(|(k, _)| {
            matches!(
                self.catalog.get(k).map(|e| e.spec.storage),
                Some(Storage::FilterKind)
            )
        });
        for (key, value) in &chosen {
            let entry = self
                .catalog
                .get(key)
                .expect("resolved keys are in the catalog");
            work.cand.set(entry, value);
            work.touched.push(*key);
        }
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
