//! The catalog: the option specs ([`super::spec`]) resolved against the defaults of the RocksDB
//! this binary links (see `rocks::linked_defaults`), so it follows the linked version, and an
//! option that version does not know is left out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ini::OptionsDoc;
use super::spec::{OptionSpec, Scope, Storage, raw_key_of, specs};
use super::value::Value;

/// A catalog entry: the spec plus the default of the linked RocksDB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    #[serde(flatten)]
    pub spec: OptionSpec,
    pub default: Value,
}

/// The catalog: specs resolved against the linked RocksDB's defaults.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// Version of the RocksDB the defaults came from.
    pub rocksdb_version: String,
    pub entries: Vec<CatalogEntry>,
    /// Spec keys whose option the linked RocksDB does not know (left out of `entries`).
    pub missing: Vec<&'static str>,
    #[serde(skip)]
    index: BTreeMap<&'static str, usize>,
}

impl Catalog {
    /// Resolve every spec against `defaults`, the OPTIONS file the linked RocksDB writes for a
    /// default DB (plus `block_cache=<capacity>` as the linked RocksDB reports it).
    pub fn from_defaults(defaults: &OptionsDoc) -> Catalog {
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for spec in specs() {
            match super::access::read_typed(defaults, &spec) {
                Some(default) => entries.push(CatalogEntry { spec, default }),
                None => missing.push(spec.key),
            }
        }
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec.key, i))
            .collect();
        Catalog {
            rocksdb_version: defaults.rocksdb_version().unwrap_or("unknown").to_string(),
            entries,
            missing,
            index,
        }
    }

    pub fn get(&self, key: &str) -> Option<&CatalogEntry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The catalog entry stored at (section, raw key) of a file, for plain entries.
    pub fn by_raw(&self, scope: Scope, raw_key: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| {
            e.spec.scope == scope
                && e.spec.storage == Storage::Plain
                && raw_key_of(e.spec.key) == raw_key
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::value::OptionType;
    use std::collections::HashSet;

    #[test]
    fn spec_keys_are_unique_and_well_formed() {
        let specs = specs();
        let mut seen = HashSet::new();
        for s in &specs {
            assert!(seen.insert(s.key), "duplicate key {}", s.key);
            assert_eq!(
                s.key.starts_with("table."),
                s.scope == Scope::Table,
                "{}",
                s.key
            );
            assert!(!s.meaning.is_empty() && s.meaning.len() <= 110, "{}", s.key);
            match &s.ty {
                OptionType::Int { min, max } | OptionType::Size { min, max } => {
                    assert!(min < max, "{}", s.key)
                }
                OptionType::Double { min, max } => assert!(min < max, "{}", s.key),
                OptionType::Enum { values } => assert!(values.len() >= 2, "{}", s.key),
                OptionType::Bool => {}
            }
        }
        assert!(specs.len() >= 80, "only {} specs", specs.len());
    }

    #[test]
    fn unsafe_values_are_recognised() {
        let specs = specs();
        let get = |k: &str| specs.iter().find(|s| s.key == k).unwrap().safety;
        assert!(get("paranoid_checks").is_unsafe(&Value::Bool(false)));
        assert!(!get("paranoid_checks").is_unsafe(&Value::Bool(true)));
        assert!(get("unordered_write").is_unsafe(&Value::Bool(true)));
        assert!(get("compaction_style").is_unsafe(&Value::Str("kCompactionStyleFIFO".into())));
        assert!(!get("compaction_style").is_unsafe(&Value::Str("kCompactionStyleLevel".into())));
        assert!(!get("write_buffer_size").is_unsafe(&Value::Int(1)));
    }
}
