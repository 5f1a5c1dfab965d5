//! `validate`: check a configuration without changing it, and report every problem RocksDB or
//! lsmtune sees (RocksDB's verdict on each key and on the whole file, lsmtune's ranges, and what
//! the dependency rules would change).

use serde::Serialize;

use super::rules::apply_dependencies;
use super::work::Work;
use crate::options::catalog::Catalog;
use crate::options::config::Config;
use crate::options::ini::{self, OptionsDoc, SectionKind};
use crate::options::rocks;
use crate::options::spec::Scope;
use crate::options::value::{RawValue, clamp, coerce};

/// One problem `validate` found.
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
                        ini::clip(k),
                        ini::clip(v),
                        ini::clip(&e.to_string())
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
            if let Ok(c) = coerce(&entry.spec.ty, &RawValue::Text(ini::unescape(v)))
                && clamp(&entry.spec.ty, &c.value).is_some()
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
