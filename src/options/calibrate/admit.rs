//! The first step of a calibration: which of a proposal's entries become changes, and as what
//! value. Each entry's key is resolved to a catalog option, its value coerced to the option's
//! type (or its leading word, when prose follows) and clamped to its range, and an unsafe value
//! refused without `--allow-unsafe`; of an option given twice the last value wins; changes to
//! the value an option already has, and changes beyond the proposal limit, are dropped. What is
//! left is applied to the candidate, every step on the way a correction.

use super::CalibrateOptions;
use super::correction::{Correction, Rule};
use super::resolve::{Resolution, resolve};
use super::work::Work;
use crate::options::access::same_value;
use crate::options::catalog::CatalogEntry;
use crate::options::proposal::{RawEntry, RawProposal};
use crate::options::spec::Storage;
use crate::options::value::{RawValue, Value, clamp, coerce, show_exact};

/// Admit `proposal`'s entries as changes of `work`'s candidate.
pub(super) fn admit(work: &mut Work, proposal: &RawProposal, options: &CalibrateOptions) {
    let mut chosen: Vec<(&'static str, Value)> = Vec::new();
    for entry in &proposal.entries {
        let Some((key, value)) = change_of(work, entry, options.allow_unsafe) else {
            continue;
        };
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
        let current = work.base.get(catalog_entry(work, key));
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
    if chosen.len() > options.max_changes {
        for (key, value) in chosen.drain(options.max_changes..) {
            work.corrections.push(Correction {
                key: key.into(),
                from: Some(value.to_string()),
                to: None,
                rule: Rule::TooMany,
                reason: format!("a proposal carries at most {} changes", options.max_changes),
            });
        }
    }
    // Filter kind after filter bits, so `bits` then `kind` compose.
    chosen.sort_by_key(|(k, _)| {
        matches!(
            work.cat.get(k).map(|e| e.spec.storage),
            Some(Storage::FilterKind)
        )
    });
    for (key, value) in &chosen {
        let entry = catalog_entry(work, key);
        work.cand.set(entry, value);
        work.touched.push(*key);
    }
}

fn catalog_entry<'c>(work: &Work<'c>, key: &str) -> &'c CatalogEntry {
    work.cat.get(key).expect("resolved keys are in the catalog")
}

/// One entry as a change: its option and the value, typed, in range and safe; None (with the
/// correction saying why) when it cannot be one.
fn change_of(
    work: &mut Work,
    entry: &RawEntry,
    allow_unsafe: bool,
) -> Option<(&'static str, Value)> {
    let ce = option_of(work, entry)?;
    let key = ce.spec.key;
    let mut value = typed_value(work, ce, entry)?;
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
    if !allow_unsafe && ce.spec.safety.is_unsafe(&value) {
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
        return None;
    }
    Some((key, value))
}

/// The catalog option an entry's key names (a rename noted), or None with the correction
/// saying it is not tunable or unknown.
fn option_of<'c>(work: &mut Work<'c>, entry: &RawEntry) -> Option<&'c CatalogEntry> {
    let raw_display = entry.value.to_string();
    match resolve(work.cat, &entry.key, entry.scope) {
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
            Some(ce)
        }
        Resolution::NotTunable => {
            work.corrections.push(Correction {
                key: entry.key.clone(),
                from: Some(raw_display),
                to: None,
                rule: Rule::NotTunable,
                reason: "a RocksDB option lsmtune does not tune".into(),
            });
            None
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
                    work.cat.rocksdb_version
                ),
            });
            None
        }
    }
}

/// An entry's value in its option's type: as written, else its leading word when prose
/// follows ("4 threads is plenty"), a coercion noted; None with the correction when neither
/// reads.
fn typed_value(work: &mut Work, ce: &CatalogEntry, entry: &RawEntry) -> Option<Value> {
    let key = ce.spec.key;
    let raw_display = entry.value.to_string();
    let coerced = match coerce(&ce.spec.ty, &entry.value) {
        Ok(c) => c,
        Err(e) => {
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
                    return None;
                }
            }
        }
    };
    if let Some(note) = coerced.note {
        work.corrections.push(Correction {
            key: key.into(),
            from: Some(raw_display),
            to: Some(show_exact(&ce.spec.ty, &coerced.value)),
            rule: Rule::Type,
            reason: note,
        });
    }
    Some(coerced.value)
}
