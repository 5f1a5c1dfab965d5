//! RocksDB's own verdict, asked of the linked RocksDB (through `rocks`): a base configuration is
//! made one RocksDB loads and opens, and a calibrated candidate keeps only the changes RocksDB
//! accepts, each refusal backed out as a `rocksdb_rejected` correction.

use anyhow::{Result, bail};

use super::correction::{Correction, Rule};
use super::work::{Work, copy_storage};
use crate::options::access::storage_key;
use crate::options::catalog::Catalog;
use crate::options::config::Config;
use crate::options::ini::{OptionsDoc, SectionKind};
use crate::options::rocks;
use crate::options::spec::Scope;

/// Make a base configuration usable: drop sections and keys the linked RocksDB refuses
/// (each a correction), stamp the version, and make sure a database opens from it.
pub(super) fn prepare_base(
    catalog: &Catalog,
    mut doc: OptionsDoc,
) -> Result<(Config, Vec<Correction>)> {
    let mut corrections = Vec::new();
    doc.set(
        &SectionKind::Version,
        "rocksdb_version",
        &catalog.rocksdb_version,
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
                            reason: format!("RocksDB {} refuses it: {e}", catalog.rocksdb_version),
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
        candidates.sort_by_key(|(si, ki)| !err.contains(doc.sections[*si].entries[*ki].0.as_str()));
        let culprit = candidates.into_iter().find(|(si, ki)| {
            let mut trial = doc.clone();
            trial.sections[*si].entries.remove(*ki);
            rocks::check_open(&trial).is_ok()
        });
        let Some((si, ki)) = culprit else {
            bail!(
                "RocksDB {} cannot open a database from this configuration: {err}",
                catalog.rocksdb_version
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
        catalog.rocksdb_version
    )
}

/// RocksDB decides: first each touched option alone through its parser, then the whole file
/// through its loader and `DB::Open`. Refused changes are backed out to the base.
pub(super) fn rocksdb_last_word(w: &mut Work) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::value::Value;

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
}
