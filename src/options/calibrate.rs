//! Clean and correct a proposal: resolve keys, coerce values, clamp ranges, fence unsafe options,
//! repair dependencies between options, fit the memory budget, and let RocksDB have the last word.
//! Every change the calibrator makes is a `Correction` (key, from, to, rule, reason) that goes back
//! to the proposer as feedback. A calibrated config that RocksDB refuses cannot come out of here:
//! the final step opens a database from it and backs out changes until one opens.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::access::{same_value, storage_key};
use super::catalog::{Catalog, CatalogEntry};
use super::config::Config;
use super::ini::{OptionsDoc, SectionKind};
use super::proposal::{self, RawProposal};
use super::rocks;
use super::spec::{Scope, Storage, raw_key_of};
use super::value::{OptionType, Value, coerce, human_bytes};

/// Why a correction was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Key spelled with other case, a section prefix, or dashes: read as the catalog key.
    Key,
    /// A known alias (e.g. a db_bench flag name) mapped to the catalog key.
    Alias,
    /// No such option; dropped (with the nearest known key when there is one).
    UnknownKey,
    /// A real RocksDB option that lsmtune does not tune; dropped.
    NotTunable,
    /// The same option twice; the last value wins.
    Duplicate,
    /// Value given in another type or with units, read as the option's type.
    Type,
    /// Value could not be read as the option's type; dropped.
    Unparsable,
    /// Value outside the allowed range; clamped.
    Range,
    /// Changes durability or semantics; refused without --allow-unsafe.
    Unsafe,
    /// Already the current value; nothing to change.
    NoChange,
    /// More changes than a proposal may carry; the rest dropped.
    TooMany,
    /// Adjusted so options agree with each other.
    Dependency,
    /// Scaled down to fit the memory budget.
    MemoryBudget,
    /// RocksDB itself refused it; backed out.
    RocksdbRejected,
}

impl Rule {
    /// Whether the rule fixes something wrong with the proposal itself (a key that is not a
    /// tunable option, a value of the wrong type or out of range, an unsafe change), as opposed
    /// to adjusting a valid change to the rest of the configuration.
    pub fn marks_invalid_entry(self) -> bool {
        matches!(
            self,
            Rule::UnknownKey
                | Rule::NotTunable
                | Rule::Type
                | Rule::Unparsable
                | Rule::Range
                | Rule::Unsafe
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::Key => "key",
            Rule::Alias => "alias",
            Rule::UnknownKey => "unknown_key",
            Rule::NotTunable => "not_tunable",
            Rule::Duplicate => "duplicate",
            Rule::Type => "type",
            Rule::Unparsable => "unparsable",
            Rule::Range => "range",
            Rule::Unsafe => "unsafe",
            Rule::NoChange => "no_change",
            Rule::TooMany => "too_many",
            Rule::Dependency => "dependency",
            Rule::MemoryBudget => "memory_budget",
            Rule::RocksdbRejected => "rocksdb_rejected",
        }
    }
}

/// One thing the calibrator changed, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub rule: Rule,
    pub reason: String,
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from.as_deref().unwrap_or("-");
        let to = self.to.as_deref().unwrap_or("(dropped)");
        write!(
            f,
            "[{}] {}: {} -> {}: {}",
            self.rule.name(),
            self.key,
            from,
            to,
            self.reason
        )
    }
}

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

/// Explicit aliases: db_bench flag names and common misnamings.
const ALIASES: &[(&str, &str)] = &[
    ("compression_type", "compression"),
    ("bottommost_compression_type", "bottommost_compression"),
    ("cache_size", "table.block_cache_size"),
    ("block_cache", "table.block_cache_size"),
    ("block_cache_capacity", "table.block_cache_size"),
    ("lru_cache_size", "table.block_cache_size"),
    ("bloom_bits", "table.filter_bits_per_key"),
    ("bloom_bits_per_key", "table.filter_bits_per_key"),
    ("bits_per_key", "table.filter_bits_per_key"),
    ("filter_bits", "table.filter_bits_per_key"),
    ("bloom_filter_bits", "table.filter_bits_per_key"),
    ("filter_policy_bits", "table.filter_bits_per_key"),
    ("write_buffer_number", "max_write_buffer_number"),
    ("max_write_buffers", "max_write_buffer_number"),
    ("memtable_size", "write_buffer_size"),
    ("background_jobs", "max_background_jobs"),
    ("subcompactions", "max_subcompactions"),
    ("open_files", "max_open_files"),
    (
        "l0_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "level0_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "l0_file_num_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "l0_slowdown_writes_trigger",
        "level0_slowdown_writes_trigger",
    ),
    ("l0_stop_writes_trigger", "level0_stop_writes_trigger"),
    ("target_file_size", "target_file_size_base"),
    ("max_bytes_for_level", "max_bytes_for_level_base"),
    ("level_multiplier", "max_bytes_for_level_multiplier"),
    (
        "memtable_bloom_size_ratio",
        "memtable_prefix_bloom_size_ratio",
    ),
    (
        "universal_size_ratio",
        "compaction_options_universal.size_ratio",
    ),
    (
        "universal_min_merge_width",
        "compaction_options_universal.min_merge_width",
    ),
    (
        "universal_max_merge_width",
        "compaction_options_universal.max_merge_width",
    ),
    (
        "universal_max_size_amplification_percent",
        "compaction_options_universal.max_size_amplification_percent",
    ),
    ("compression_level", "compression_opts.level"),
    (
        "compression_max_dict_bytes",
        "compression_opts.max_dict_bytes",
    ),
    ("filter_type", "table.filter_type"),
    ("use_ribbon_filter", "table.filter_type"),
    ("mmap_read", "allow_mmap_reads"),
    ("mmap_write", "allow_mmap_writes"),
];

/// Prefixes that name a section (or nothing) in front of a key.
const PREFIXES: &[(&str, Option<Scope>)] = &[
    ("rocksdb.", None),
    ("options.", None),
    ("dboptions.", Some(Scope::Db)),
    ("db_options.", Some(Scope::Db)),
    ("db.", Some(Scope::Db)),
    ("cfoptions.", Some(Scope::Cf)),
    ("cf_options.", Some(Scope::Cf)),
    ("columnfamilyoptions.", Some(Scope::Cf)),
    ("column_family_options.", Some(Scope::Cf)),
    ("cf.", Some(Scope::Cf)),
    ("default.", Some(Scope::Cf)),
    ("tableoptions/blockbasedtable.", Some(Scope::Table)),
    ("tableoptions.", Some(Scope::Table)),
    ("table_options.", Some(Scope::Table)),
    ("blockbasedtable.", Some(Scope::Table)),
    ("blockbasedtableoptions.", Some(Scope::Table)),
    ("block_based_table_factory.", Some(Scope::Table)),
    ("block_based_table_options.", Some(Scope::Table)),
    ("bbto.", Some(Scope::Table)),
    ("table.", Some(Scope::Table)),
];

enum Resolution<'c> {
    Found(&'c CatalogEntry, Option<Rule>),
    NotTunable,
    Unknown(Option<&'static str>),
}

/// Clamp a value into its type's range; `Some(new)` when it moved.
fn clamp(ty: &OptionType, v: &Value) -> Option<Value> {
    match (ty, v) {
        (OptionType::Int { min, max } | OptionType::Size { min, max }, Value::Int(i)) => {
            let c = (*i).clamp(*min, *max);
            (c != *i).then_some(Value::Int(c))
        }
        (OptionType::Double { min, max }, Value::Double(d)) => {
            let c = d.clamp(*min, *max);
            (c != *d).then_some(Value::Double(c))
        }
        _ => None,
    }
}

fn show(ty: &OptionType, v: &Value) -> String {
    match (ty, v) {
        (OptionType::Size { .. }, Value::Int(i)) if *i >= 1024 => {
            format!("{i} ({})", human_bytes(*i))
        }
        _ => v.to_string(),
    }
}

/// The calibrator for one catalog (one linked RocksDB).
pub struct Calibrator<'c> {
    pub catalog: &'c Catalog,
    pub options: CalibrateOptions,
}

/// Working state of one calibration.
struct Work<'c> {
    cat: &'c Catalog,
    base: &'c Config,
    cand: Config,
    /// Catalog keys changed by the proposal or by the calibrator, in order.
    touched: Vec<&'static str>,
    corrections: Vec<Correction>,
}

impl<'c> Work<'c> {
    fn val(&self, key: &str) -> Option<Value> {
        self.cat.get(key).map(|e| self.cand.get(e))
    }
    fn int(&self, key: &str) -> Option<i64> {
        self.val(key).and_then(|v| v.as_i64())
    }
    fn float(&self, key: &str) -> Option<f64> {
        self.val(key).and_then(|v| v.as_f64())
    }
    fn flag(&self, key: &str) -> Option<bool> {
        self.val(key).and_then(|v| v.as_bool())
    }
    fn text(&self, key: &str) -> Option<String> {
        self.val(key).map(|v| v.to_string())
    }
    fn is_touched(&self, key: &str) -> bool {
        self.touched.contains(&key)
    }

    /// Set `key` to `value` as a calibrator decision, recording it.
    fn adjust(&mut self, key: &str, value: Value, rule: Rule, reason: String) {
        let Some(entry) = self.cat.get(key) else {
            return;
        };
        let old = self.cand.get(entry);
        if same_value(&old, &value) {
            return;
        }
        self.cand.set(entry, &value);
        if !self.touched.contains(&entry.spec.key) {
            self.touched.push(entry.spec.key);
        }
        self.corrections.push(Correction {
            key: key.to_string(),
            from: Some(show(&entry.spec.ty, &old)),
            to: Some(show(&entry.spec.ty, &value)),
            rule,
            reason,
        });
    }

    /// Put `key` back to the base's setting.
    fn revert(&mut self, key: &'static str, reason: String) {
        let Some(entry) = self.cat.get(key) else {
            return;
        };
        let from = self.cand.get(entry);
        copy_storage(&self.base.doc, &mut self.cand.doc, entry);
        let to = self.cand.get(entry);
        self.corrections.push(Correction {
            key: key.to_string(),
            from: Some(show(&entry.spec.ty, &from)),
            to: Some(show(&entry.spec.ty, &to)),
            rule: Rule::RocksdbRejected,
            reason,
        });
    }
}

/// Copy whatever stores `entry` from one document to another (or remove it when absent).
fn copy_storage(from: &OptionsDoc, to: &mut OptionsDoc, entry: &CatalogEntry) {
    let section = entry.spec.scope.section();
    let key = storage_key(&entry.spec);
    match from.get(&section, key) {
        Some(v) => {
            let v = v.to_string();
            to.set(&section, key, &v)
        }
        None => {
            if let Some(s) = to.section_mut(&section) {
                s.remove(key);
            }
        }
    }
}

impl<'c> Calibrator<'c> {
    pub fn new(catalog: &'c Catalog, options: CalibrateOptions) -> Self {
        Calibrator { catalog, options }
    }

    fn resolve(&self, raw_key: &str, scope: Option<Scope>) -> Resolution<'c> {
        let cat = self.catalog;
        let trimmed = raw_key
            .trim()
            .trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c == '*')
            .trim_start_matches('-')
            .trim();
        if let Some(e) = cat.get(trimmed) {
            let renamed = (trimmed != raw_key).then_some(Rule::Key);
            return Resolution::Found(e, renamed);
        }
        let mut k = trimmed.to_ascii_lowercase().replace(['-', ' '], "_");
        let mut scope = scope;
        while let Some((p, s)) = PREFIXES.iter().find(|(p, _)| k.starts_with(p)) {
            k = k[p.len()..].to_string();
            scope = s.or(scope);
        }
        let mut candidates = Vec::new();
        if scope == Some(Scope::Table) {
            candidates.push(format!("table.{k}"));
        }
        candidates.push(k.clone());
        candidates.push(format!("table.{k}"));
        for c in &candidates {
            if let Some(e) = cat.get(c) {
                return Resolution::Found(e, Some(Rule::Key));
            }
        }
        if let Some((_, to)) = ALIASES.iter().find(|(a, _)| *a == k)
            && let Some(e) = cat.get(to)
        {
            return Resolution::Found(e, Some(Rule::Alias));
        }
        // A real option of the linked RocksDB, just not one we tune?
        if let Ok(defaults) = rocks::linked_defaults()
            && defaults
                .sections
                .iter()
                .any(|s| s.get(&k).is_some() || s.get(trimmed).is_some())
        {
            return Resolution::NotTunable;
        }
        let best = cat
            .entries
            .iter()
            .map(|e| {
                let key = e.spec.key;
                let score =
                    strsim::jaro_winkler(&k, key).max(strsim::jaro_winkler(&k, raw_key_of(key)));
                (score, key)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        Resolution::Unknown(best.filter(|(s, _)| *s >= 0.85).map(|(_, k)| k))
    }

    /// Make a base configuration usable: drop sections and keys the linked RocksDB refuses
    /// (each a correction), stamp the version, and make sure a database opens from it.
    pub fn prepare_base(&self, mut doc: OptionsDoc) -> Result<(Config, Vec<Correction>)> {
        let mut corrections = Vec::new();
        doc.set(
            &SectionKind::Version,
            "rocksdb_version",
            &self.catalog.rocksdb_version,
        );
        doc.set(&SectionKind::Version, "options_file_version", "1.1");
        for scope in [Scope::Db, Scope::Cf, Scope::Table] {
            doc.section_or_insert(&scope.section());
        }
        doc.sections.retain(|s| {
            let keep = rocks::known_section(&s.kind);
            if !keep {
                corrections.push(Correction {
                    key: format!("[{}]", s.kind.header()),
                    from: Some(format!("{} entries", s.entries.len())),
                    to: None,
                    rule: Rule::RocksdbRejected,
                    reason: "a section RocksDB's OPTIONS loader does not read".into(),
                });
            }
            keep
        });
        if rocks::check_open(&doc).is_err() {
            for section in &mut doc.sections {
                let Some(scope) = Scope::parsed_as(&section.kind) else {
                    continue;
                };
                let header = section.kind.header();
                section
                    .entries
                    .retain(|(k, v)| match rocks::check_key(scope, k, v) {
                        Ok(()) => true,
                        Err(e) => {
                            corrections.push(Correction {
                                key: format!("[{header}] {k}"),
                                from: Some(v.clone()),
                                to: None,
                                rule: Rule::RocksdbRejected,
                                reason: format!(
                                    "RocksDB {} refuses it: {e}",
                                    self.catalog.rocksdb_version
                                ),
                            });
                            false
                        }
                    });
            }
        }
        // Conflicts only DB::Open sees (e.g. block_align with compression in some column
        // family): drop the one setting whose removal lets the database open, keys the error
        // names first, and repeat.
        for _ in 0..32 {
            let Err(err) = rocks::check_open(&doc) else {
                return Ok((Config::new(doc), corrections));
            };
            let mut candidates: Vec<(usize, usize)> = doc
                .sections
                .iter()
                .enumerate()
                .flat_map(|(si, s)| (0..s.entries.len()).map(move |ki| (si, ki)))
                .filter(|(si, _)| doc.sections[*si].kind != SectionKind::Version)
                .collect();
            candidates
                .sort_by_key(|(si, ki)| !err.contains(doc.sections[*si].entries[*ki].0.as_str()));
            let culprit = candidates.into_iter().find(|(si, ki)| {
                let mut trial = doc.clone();
                trial.sections[*si].entries.remove(*ki);
                rocks::check_open(&trial).is_ok()
            });
            let Some((si, ki)) = culprit else {
                bail!(
                    "RocksDB {} cannot open a database from this configuration: {err}",
                    self.catalog.rocksdb_version
                );
            };
            let header = doc.sections[si].kind.header();
            let (k, v) = doc.sections[si].entries.remove(ki);
            corrections.push(Correction {
                key: format!("[{header}] {k}"),
                from: Some(v),
                to: None,
                rule: Rule::RocksdbRejected,
                reason: format!("DB::Open refuses the file with it: {err}"),
            });
        }
        bail!(
            "RocksDB {} cannot open a database from this configuration even after dropping 32 settings",
            self.catalog.rocksdb_version
        )
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
            let ce = match self.resolve(&entry.key, entry.scope) {
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
                        super::value::RawValue::Text(t) => t
                            .split_whitespace()
                            .next()
                            .filter(|w| *w != t.trim())
                            .and_then(|w| {
                                coerce(&ce.spec.ty, &super::value::RawValue::Text(w.into())).ok()
                            }),
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
                    to: Some(show(&ce.spec.ty, &value)),
                    rule: Rule::Type,
                    reason: note,
                });
            }
            if let Some(clamped) = clamp(&ce.spec.ty, &value) {
                work.corrections.push(Correction {
                    key: key.into(),
                    from: Some(show(&ce.spec.ty, &value)),
                    to: Some(show(&ce.spec.ty, &clamped)),
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

/// Options must agree with each other; each rule keeps what the proposal set explicitly and
/// moves the other side.
fn apply_dependencies(w: &mut Work) {
    use Value::*;
    // L0 triggers: compaction < slowdown < stop, with gaps (equal triggers are legal but make
    // writes stall the moment a compaction is due). Gap: a quarter, at least 2 files.
    if let (Some(trig), Some(slow), Some(stop)) = (
        w.int("level0_file_num_compaction_trigger"),
        w.int("level0_slowdown_writes_trigger"),
        w.int("level0_stop_writes_trigger"),
    ) && !(trig < slow && slow < stop)
    {
        let gap = |v: i64| (v / 4).max(2);
        if w.is_touched("level0_file_num_compaction_trigger")
            || !w.is_touched("level0_slowdown_writes_trigger")
        {
            let slow2 = if slow > trig {
                slow
            } else {
                (trig + gap(trig)).min(1024)
            };
            let stop2 = if stop > slow2 {
                stop
            } else {
                (slow2 + gap(slow2)).min(1024)
            };
            w.adjust(
                "level0_slowdown_writes_trigger",
                Int(slow2),
                Rule::Dependency,
                "must be above level0_file_num_compaction_trigger".into(),
            );
            w.adjust(
                "level0_stop_writes_trigger",
                Int(stop2),
                Rule::Dependency,
                "must be above level0_slowdown_writes_trigger".into(),
            );
        } else {
            // The slowdown/stop side was set on purpose: lower the trigger(s) under it.
            let stop2 = if stop > slow {
                stop
            } else {
                (slow + gap(slow)).min(1024)
            };
            w.adjust(
                "level0_stop_writes_trigger",
                Int(stop2),
                Rule::Dependency,
                "must be above level0_slowdown_writes_trigger".into(),
            );
            let trig2 = if trig < slow {
                trig
            } else {
                (slow - gap(slow)).max(1)
            };
            w.adjust(
                "level0_file_num_compaction_trigger",
                Int(trig2),
                Rule::Dependency,
                "must be below level0_slowdown_writes_trigger".into(),
            );
        }
    }
    // Merging N memtables needs more than N of them.
    if let (Some(merge), Some(n)) = (
        w.int("min_write_buffer_number_to_merge"),
        w.int("max_write_buffer_number"),
    ) && merge >= n
    {
        if w.is_touched("max_write_buffer_number")
            && !w.is_touched("min_write_buffer_number_to_merge")
        {
            w.adjust(
                "min_write_buffer_number_to_merge",
                Int((n - 1).max(1)),
                Rule::Dependency,
                "must be below max_write_buffer_number".into(),
            );
        } else {
            w.adjust(
                "max_write_buffer_number",
                Int((merge + 1).min(32)),
                Rule::Dependency,
                "must exceed min_write_buffer_number_to_merge".into(),
            );
        }
    }
    // Soft pending-compaction limit below the hard one (0 = off).
    if let (Some(soft), Some(hard)) = (
        w.int("soft_pending_compaction_bytes_limit"),
        w.int("hard_pending_compaction_bytes_limit"),
    ) && soft > 0
        && hard > 0
        && soft > hard
    {
        if w.is_touched("hard_pending_compaction_bytes_limit")
            && !w.is_touched("soft_pending_compaction_bytes_limit")
        {
            w.adjust(
                "soft_pending_compaction_bytes_limit",
                Int(hard),
                Rule::Dependency,
                "must be <= hard_pending_compaction_bytes_limit".into(),
            );
        } else {
            w.adjust(
                "hard_pending_compaction_bytes_limit",
                Int(soft),
                Rule::Dependency,
                "must be >= soft_pending_compaction_bytes_limit".into(),
            );
        }
    }
    // L1 should be about the size of L0 (tuning guide): keep it within [L0/4, 8 x L0].
    let level_keys = [
        "max_bytes_for_level_base",
        "write_buffer_size",
        "min_write_buffer_number_to_merge",
        "level0_file_num_compaction_trigger",
    ];
    if level_keys.iter().any(|k| w.is_touched(k))
        && w.text("compaction_style").as_deref() == Some("kCompactionStyleLevel")
        && let (Some(base), Some(wbs), Some(merge), Some(trig)) = (
            w.int("max_bytes_for_level_base"),
            w.int("write_buffer_size"),
            w.int("min_write_buffer_number_to_merge"),
            w.int("level0_file_num_compaction_trigger"),
        )
    {
        let l0 = wbs.saturating_mul(merge).saturating_mul(trig);
        if base < l0 / 4 || base > l0.saturating_mul(8) {
            let target = l0.clamp(1 << 20, 64 << 30);
            w.adjust("max_bytes_for_level_base", Int(target), Rule::Dependency, format!(
                "L1 target should be near the L0 size (write_buffer_size x min_write_buffer_number_to_merge x level0_file_num_compaction_trigger = {})",
                human_bytes(l0)));
        }
    }
    // An SST file bigger than the level it lives in makes no sense.
    if (w.is_touched("target_file_size_base") || w.is_touched("max_bytes_for_level_base"))
        && let (Some(t), Some(b)) = (
            w.int("target_file_size_base"),
            w.int("max_bytes_for_level_base"),
        )
        && t > b
    {
        w.adjust(
            "target_file_size_base",
            Int(b),
            Rule::Dependency,
            "must not exceed max_bytes_for_level_base".into(),
        );
    }
    if (w.is_touched("max_subcompactions") || w.is_touched("max_background_jobs"))
        && let (Some(s), Some(j)) = (w.int("max_subcompactions"), w.int("max_background_jobs"))
        && s > j
    {
        w.adjust(
            "max_subcompactions",
            Int(j),
            Rule::Dependency,
            "more subcompactions than background jobs cannot run at once".into(),
        );
    }
    // mmap and direct I/O exclude each other (DB::Open refuses both).
    for (mmap, direct) in [
        ("allow_mmap_reads", "use_direct_reads"),
        (
            "allow_mmap_writes",
            "use_direct_io_for_flush_and_compaction",
        ),
    ] {
        if w.flag(mmap) == Some(true) && w.flag(direct) == Some(true) {
            if w.is_touched(mmap) && !w.is_touched(direct) {
                w.adjust(
                    direct,
                    Bool(false),
                    Rule::Dependency,
                    format!("cannot be combined with {mmap}"),
                );
            } else {
                w.adjust(
                    mmap,
                    Bool(false),
                    Rule::Dependency,
                    format!("cannot be combined with {direct}"),
                );
            }
        }
    }
    // Concurrent memtable writes need a skiplist memtable and no in-place updates.
    let vector = w.text("memtable_factory").as_deref() == Some("VectorRepFactory");
    let inplace = w.flag("inplace_update_support") == Some(true);
    if (vector || inplace) && w.flag("allow_concurrent_memtable_write") == Some(true) {
        let why = if vector {
            "memtable_factory=VectorRepFactory"
        } else {
            "inplace_update_support"
        };
        w.adjust(
            "allow_concurrent_memtable_write",
            Bool(false),
            Rule::Dependency,
            format!("{why} does not support concurrent memtable writes"),
        );
    }
    if w.flag("unordered_write") == Some(true) && w.flag("enable_pipelined_write") == Some(true) {
        w.adjust(
            "enable_pipelined_write",
            Bool(false),
            Rule::Dependency,
            "unordered_write cannot be combined with pipelined writes".into(),
        );
    }
    // Partitioned filters need the partitioned (two-level) index.
    if w.flag("table.partition_filters") == Some(true)
        && w.text("table.index_type").as_deref() != Some("kTwoLevelIndexSearch")
    {
        if w.is_touched("table.index_type") {
            w.adjust(
                "table.partition_filters",
                Bool(false),
                Rule::Dependency,
                "partitioned filters need index_type=kTwoLevelIndexSearch".into(),
            );
        } else {
            w.adjust(
                "table.index_type",
                Str("kTwoLevelIndexSearch".into()),
                Rule::Dependency,
                "partition_filters needs the two-level index".into(),
            );
        }
    }
    // Block alignment only works without compression.
    if w.flag("table.block_align") == Some(true) {
        let comp = w.text("compression").unwrap_or_default();
        let bottom = w.text("bottommost_compression").unwrap_or_default();
        let compressed = comp != "kNoCompression"
            || !(bottom == "kNoCompression" || bottom == "kDisableCompressionOption");
        if compressed {
            w.adjust(
                "table.block_align",
                Bool(false),
                Rule::Dependency,
                "block_align requires compression=kNoCompression".into(),
            );
        }
    }
    // A per-level compression list overrides `compression`: drop it when compression is changed.
    if w.is_touched("compression") {
        let cf = Scope::Cf.section();
        if let Some(list) = w
            .cand
            .doc
            .get(&cf, "compression_per_level")
            .map(str::to_string)
            && !list.is_empty()
        {
            w.cand.doc.set(&cf, "compression_per_level", "");
            w.corrections.push(Correction {
                key: "compression_per_level".into(),
                from: Some(list),
                to: Some(String::new()),
                rule: Rule::Dependency,
                reason: "a per-level list would override the proposed compression".into(),
            });
        }
    }
    // An arena block above an eighth of the memtable (RocksDB's own choice when it is 0) makes
    // every memtable allocate far ahead of its data: a 244 MiB block cost a write benchmark
    // 99.7% of its throughput.
    if let (Some(arena), Some(wbs)) = (w.int("arena_block_size"), w.int("write_buffer_size"))
        && (w.is_touched("arena_block_size") || w.is_touched("write_buffer_size"))
    {
        let cap = ((wbs / 8) & !4095).max(4096);
        if arena > cap {
            w.adjust(
                "arena_block_size",
                Int(cap),
                Rule::Dependency,
                format!(
                    "at most 1/8 of write_buffer_size ({}): larger blocks allocate memtable memory far ahead of its data",
                    human_bytes(wbs)
                ),
            );
        }
    }
    // The memtable bloom for whole keys needs a size.
    if w.is_touched("memtable_whole_key_filtering")
        && w.flag("memtable_whole_key_filtering") == Some(true)
        && w.float("memtable_prefix_bloom_size_ratio") == Some(0.0)
    {
        w.adjust(
            "memtable_prefix_bloom_size_ratio",
            Double(0.1),
            Rule::Dependency,
            "memtable_whole_key_filtering needs a memtable bloom (ratio > 0)".into(),
        );
    }
    // A filter kind without filter bits has no effect.
    if w.is_touched("table.filter_type") && w.float("table.filter_bits_per_key") == Some(0.0) {
        w.corrections.push(Correction {
            key: "table.filter_type".into(),
            from: w.text("table.filter_type"),
            to: None,
            rule: Rule::Dependency,
            reason: "no effect without table.filter_bits_per_key > 0".into(),
        });
    }
    if let (Some(init), Some(max)) = (
        w.int("table.initial_auto_readahead_size"),
        w.int("table.max_auto_readahead_size"),
    ) && init > max
    {
        w.adjust(
            "table.initial_auto_readahead_size",
            Int(max),
            Rule::Dependency,
            "must not exceed table.max_auto_readahead_size".into(),
        );
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
fn fit_memory_budget(w: &mut Work, budget: u64) {
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

/// RocksDB decides: first each touched option alone through its parser, then the whole file
/// through its loader and `DB::Open`. Refused changes are backed out to the base.
fn rocksdb_last_word(w: &mut Work) {
    let touched = w.touched.clone();
    for key in &touched {
        let entry = w.cat.get(key).expect("touched keys are in the catalog");
        let section = entry.spec.scope.section();
        let raw = storage_key(&entry.spec);
        if let Some(value) = w.cand.doc.get(&section, raw).map(str::to_string)
            && let Err(e) = rocks::check_key(entry.spec.scope, raw, &value)
        {
            w.revert(key, format!("RocksDB refuses {raw}={value}: {e}"));
        }
    }
    for _ in 0..=touched.len() {
        let Err(err) = rocks::check_open(&w.cand.doc) else {
            return;
        };
        // Find one change whose removal makes the database open.
        let culprit = touched.iter().rev().find(|key| {
            let entry = w.cat.get(key).expect("touched keys are in the catalog");
            let mut trial = w.cand.doc.clone();
            copy_storage(&w.base.doc, &mut trial, entry);
            rocks::check_open(&trial).is_ok()
        });
        match culprit {
            Some(key) => w.revert(key, format!("DB::Open refused the configuration: {err}")),
            None => {
                for key in touched.iter().rev() {
                    w.revert(key, format!("DB::Open refused the combination: {err}"));
                }
                w.cand = w.base.clone();
                return;
            }
        }
    }
}

/// Check a configuration without changing it: every problem lsmtune or RocksDB sees.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `error` (RocksDB refuses) or `warning` (lsmtune's range or dependency rules).
    pub level: &'static str,
    pub section: String,
    pub key: String,
    pub message: String,
}

/// Validate a document: RocksDB's verdict on every key and on the whole file, plus lsmtune's
/// ranges and dependency rules for the default column family.
pub fn validate(catalog: &Catalog, doc: &OptionsDoc) -> Vec<Finding> {
    const REFUSED_MAX: usize = 1000;
    let mut out = Vec::new();
    let known: std::collections::HashSet<&str> = rocks::linked_defaults()
        .map(|d| {
            d.sections
                .iter()
                .flat_map(|s| s.entries.iter().map(|(k, _)| k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let (mut refused, mut unchecked) = (0usize, 0usize);
    for section in &doc.sections {
        let scope = match &section.kind {
            SectionKind::Version => continue,
            SectionKind::Db | SectionKind::Cf(_) | SectionKind::Table { .. } => {
                Scope::parsed_as(&section.kind)
            }
            SectionKind::Other(_) => {
                out.push(Finding {
                    level: "error",
                    section: section.kind.header(),
                    key: String::new(),
                    message: "RocksDB's OPTIONS loader does not know this section".into(),
                });
                continue;
            }
        };
        let Some(scope) = scope else { continue };
        for (k, v) in &section.entries {
            // Past REFUSED_MAX refusals, keys the linked RocksDB's own OPTIONS file does not
            // know are counted, not checked one by one (each check costs RocksDB ~0.7 ms; a
            // file of 1.6M unknown keys took 11 CPU-minutes).
            if refused >= REFUSED_MAX && !known.contains(k.as_str()) {
                unchecked += 1;
                continue;
            }
            if let Err(e) = rocks::check_key(scope, k, v) {
                refused += 1;
                out.push(Finding {
                    level: "error",
                    section: section.kind.header(),
                    key: k.clone(),
                    message: format!(
                        "RocksDB {} refuses `{}={}`: {}",
                        catalog.rocksdb_version,
                        super::ini::clip(k),
                        super::ini::clip(v),
                        super::ini::clip(&e.to_string())
                    ),
                });
            }
        }
    }
    if unchecked > 0 {
        out.push(Finding {
            level: "error",
            section: String::new(),
            key: String::new(),
            message: format!(
                "and {unchecked} more keys that RocksDB {}'s own OPTIONS file does not have (not checked one by one after {REFUSED_MAX} refusals)",
                catalog.rocksdb_version
            ),
        });
    }
    for section in &doc.sections {
        let Some(scope) = Scope::tuned(&section.kind) else {
            continue;
        };
        for (k, v) in &section.entries {
            let Some(entry) = catalog.by_raw(scope, k) else {
                continue;
            };
            if let Ok(c) = coerce(
                &entry.spec.ty,
                &super::value::RawValue::Text(super::ini::unescape(v)),
            ) && clamp(&entry.spec.ty, &c.value).is_some()
            {
                out.push(Finding {
                    level: "warning",
                    section: section.kind.header(),
                    key: k.clone(),
                    message: format!(
                        "{v} is outside lsmtune's range {}",
                        entry.spec.ty.describe()
                    ),
                });
            }
        }
    }
    if !out.iter().any(|f| f.level == "error") {
        let mut fixed = doc.clone();
        fixed.set(
            &SectionKind::Version,
            "rocksdb_version",
            &catalog.rocksdb_version,
        );
        if let Err(e) = rocks::check_open(&fixed) {
            out.push(Finding {
                level: "error",
                section: String::new(),
                key: String::new(),
                message: format!(
                    "RocksDB {} cannot open a database from it: {e}",
                    catalog.rocksdb_version
                ),
            });
        } else {
            // Dependency rules, as warnings: what calibration would change.
            let base = Config::new(fixed.clone());
            let mut w = Work {
                cat: catalog,
                base: &base,
                cand: base.clone(),
                touched: catalog.entries.iter().map(|e| e.spec.key).collect(),
                corrections: Vec::new(),
            };
            apply_dependencies(&mut w);
            for c in w.corrections {
                out.push(Finding {
                    level: "warning",
                    section: String::new(),
                    key: c.key.clone(),
                    message: format!(
                        "{} (calibration would set {})",
                        c.reason,
                        c.to.unwrap_or_default()
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last word catches what no rule covers: here mmap + direct reads set behind the
    /// rules' back. DB::Open refuses the pair; backing out one change makes it open.
    #[test]
    fn rocksdb_last_word_backs_out_what_dbopen_refuses() {
        let cat = crate::options::catalog().unwrap();
        let base = Config::new(rocks::linked_defaults().unwrap().clone());
        let mut w = Work {
            cat,
            base: &base,
            cand: base.clone(),
            touched: Vec::new(),
            corrections: Vec::new(),
        };
        for key in ["allow_mmap_reads", "use_direct_reads"] {
            w.cand.set_key(cat, key, Value::Bool(true));
            w.touched.push(cat.get(key).unwrap().spec.key);
        }
        assert!(rocks::check_open(&w.cand.doc).is_err());
        rocksdb_last_word(&mut w);
        rocks::check_open(&w.cand.doc).unwrap();
        assert_eq!(w.corrections.len(), 1, "{:?}", w.corrections);
        assert_eq!(w.corrections[0].rule, Rule::RocksdbRejected);
        assert_eq!(w.corrections[0].key, "use_direct_reads");
        assert!(w.cand.flag(cat, "allow_mmap_reads"));
    }

    #[test]
    fn clamp_moves_only_out_of_range_values() {
        let ty = OptionType::Int { min: 1, max: 10 };
        assert_eq!(clamp(&ty, &Value::Int(0)), Some(Value::Int(1)));
        assert_eq!(clamp(&ty, &Value::Int(5)), None);
        assert_eq!(clamp(&ty, &Value::Int(99)), Some(Value::Int(10)));
        let d = OptionType::Double { min: 0.0, max: 1.0 };
        assert_eq!(clamp(&d, &Value::Double(2.0)), Some(Value::Double(1.0)));
    }
}
