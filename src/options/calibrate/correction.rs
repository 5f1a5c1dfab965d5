//! What the calibrator reports: each change it makes is a [`Correction`] (key, from, to, rule,
//! reason) under one [`Rule`], and goes back to the proposer as feedback.

use std::fmt;

use serde::{Deserialize, Serialize};

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
