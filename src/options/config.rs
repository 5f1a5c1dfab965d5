//! A configuration: an OPTIONS document with a typed view of the catalog options in it.
//!
//! The document stays the single source of truth (unknown keys, other column families and
//! everything lsmtune does not tune ride along verbatim); catalog values are read from and written
//! to it through each option's `Storage`, so the virtual options (block cache capacity, filter
//! bits and kind, fields of nested structs) live where RocksDB expects them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::access::{read_typed, same_value, write_typed};
use super::catalog::{Catalog, CatalogEntry};
use super::ini::OptionsDoc;
use super::value::Value;

/// A configuration: a full OPTIONS document.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub doc: OptionsDoc,
}

impl Config {
    pub fn new(doc: OptionsDoc) -> Config {
        Config { doc }
    }

    /// The effective value of a catalog option: as set in the document, or the default.
    pub fn get(&self, entry: &CatalogEntry) -> Value {
        read_typed(&self.doc, &entry.spec).unwrap_or_else(|| entry.default.clone())
    }

    /// Effective value by catalog key (panics on a key not in the catalog: a programming error).
    pub fn value(&self, catalog: &Catalog, key: &str) -> Value {
        let entry = catalog
            .get(key)
            .unwrap_or_else(|| panic!("`{key}` is not in the catalog"));
        self.get(entry)
    }

    pub fn int(&self, catalog: &Catalog, key: &str) -> i64 {
        let v = self.value(catalog, key);
        v.as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .unwrap_or(0)
    }

    pub fn float(&self, catalog: &Catalog, key: &str) -> f64 {
        self.value(catalog, key).as_f64().unwrap_or(0.0)
    }

    pub fn flag(&self, catalog: &Catalog, key: &str) -> bool {
        self.value(catalog, key).as_bool().unwrap_or(false)
    }

    pub fn text(&self, catalog: &Catalog, key: &str) -> String {
        self.value(catalog, key).to_string()
    }

    pub fn set(&mut self, entry: &CatalogEntry, value: &Value) {
        write_typed(&mut self.doc, &entry.spec, value);
    }

    pub fn set_key(&mut self, catalog: &Catalog, key: &str, value: Value) {
        let entry = catalog
            .get(key)
            .unwrap_or_else(|| panic!("`{key}` is not in the catalog"));
        self.set(entry, &value);
    }

    /// Every catalog option whose effective value differs between `self` and `other`:
    /// key → (self's value, other's value).
    pub fn diff(&self, other: &Config, catalog: &Catalog) -> BTreeMap<String, (Value, Value)> {
        catalog
            .entries
            .iter()
            .filter_map(|e| {
                let (a, b) = (self.get(e), other.get(e));
                (!same_value(&a, &b)).then(|| (e.spec.key.to_string(), (a, b)))
            })
            .collect()
    }
}

/// A difference between two documents at the level of raw keys (for `options diff`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawDiff {
    pub section: String,
    pub key: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

/// Every raw key whose value differs between two documents, section by section. Numbers that
/// are equal (`10` and `10.000000`) are not differences.
pub fn raw_diff(a: &OptionsDoc, b: &OptionsDoc) -> Vec<RawDiff> {
    let mut kinds: Vec<_> = a.sections.iter().map(|s| s.kind.clone()).collect();
    for s in &b.sections {
        if !kinds.contains(&s.kind) {
            kinds.push(s.kind.clone());
        }
    }
    let mut out = Vec::new();
    for kind in kinds {
        if kind == super::ini::SectionKind::Version {
            continue;
        }
        let left = a.section(&kind);
        let right = b.section(&kind);
        let mut keys: Vec<&str> = Vec::new();
        for s in [left, right].into_iter().flatten() {
            for (k, _) in &s.entries {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        for key in keys {
            let l = left.and_then(|s| s.get(key));
            let r = right.and_then(|s| s.get(key));
            let equal = match (l, r) {
                (Some(x), Some(y)) => {
                    x == y
                        || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p == q)
                }
                (None, None) => true,
                _ => false,
            };
            if !equal {
                out.push(RawDiff {
                    section: kind.header(),
                    key: key.to_string(),
                    left: l.map(str::to_string),
                    right: r.map(str::to_string),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::access::{parse_struct, render_struct};
    use crate::options::ini::SectionKind;
    use crate::options::spec::{OptionSpec, Scope, specs};

    fn spec(key: &str) -> OptionSpec {
        specs().into_iter().find(|s| s.key == key).unwrap()
    }

    #[test]
    fn nested_structs_round_trip() {
        let v = "{allow_compaction=false;age_for_warm=0;file_temperature_age_thresholds=;max_table_files_size=1073741824;}";
        let fields = parse_struct(v).unwrap();
        assert_eq!(fields.len(), 4);
        assert_eq!(
            fields[2],
            ("file_temperature_age_thresholds".into(), "".into())
        );
        assert_eq!(render_struct(&fields), v);
        let nested = parse_struct("{a={x=1;y=2;};b=3}").unwrap();
        assert_eq!(nested[0], ("a".into(), "{x=1;y=2;}".into()));
        assert!(parse_struct("not a struct").is_none());
    }

    #[test]
    fn virtual_options_live_where_rocksdb_reads_them() {
        let mut doc = OptionsDoc::default();
        let table = Scope::Table.section();
        doc.set(&table, "filter_policy", "nullptr");
        assert_eq!(
            read_typed(&doc, &spec("table.filter_bits_per_key")),
            Some(Value::Double(0.0))
        );
        write_typed(
            &mut doc,
            &spec("table.filter_bits_per_key"),
            &Value::Double(10.0),
        );
        assert_eq!(
            doc.get(&table, "filter_policy"),
            Some("bloomfilter:10:false")
        );
        write_typed(
            &mut doc,
            &spec("table.filter_type"),
            &Value::Str("ribbon".into()),
        );
        assert_eq!(doc.get(&table, "filter_policy"), Some("ribbonfilter:10:-1"));
        assert_eq!(
            read_typed(&doc, &spec("table.filter_type")),
            Some(Value::Str("ribbon".into()))
        );

        write_typed(
            &mut doc,
            &spec("table.block_cache_size"),
            &Value::Int(1 << 30),
        );
        assert_eq!(doc.get(&table, "block_cache"), Some("1073741824"));
        doc.set(&table, "block_cache", "{capacity=2G;num_shard_bits=4;}");
        assert_eq!(
            read_typed(&doc, &spec("table.block_cache_size")),
            Some(Value::Int(2 << 30))
        );

        let cf = SectionKind::Cf("default".into());
        doc.set(
            &cf,
            "compaction_options_universal",
            "{size_ratio=1;min_merge_width=2;}",
        );
        let sr = spec("compaction_options_universal.size_ratio");
        assert_eq!(read_typed(&doc, &sr), Some(Value::Int(1)));
        write_typed(&mut doc, &sr, &Value::Int(10));
        assert_eq!(
            doc.get(&cf, "compaction_options_universal"),
            Some("{size_ratio=10;min_merge_width=2;}")
        );
    }

    #[test]
    fn raw_diff_ignores_equal_numbers() {
        let a = OptionsDoc::parse("[CFOptions \"default\"]\n x=10\n y=1\n z=a\n").unwrap();
        let b = OptionsDoc::parse("[CFOptions \"default\"]\n x=10.000000\n y=2\n w=1\n").unwrap();
        let d = raw_diff(&a, &b);
        let keys: Vec<&str> = d.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["y", "z", "w"]);
    }
}
