//! Making an OPTIONS file acceptable to an older RocksDB (e.g. Debian's db_bench 7.8.3, which
//! loads option files strictly and has no flag to skip unknown keys): ask the older library, drop
//! the key (or nested struct field) its error names, and ask again. Every drop is recorded.

use anyhow::{Result, bail};

use super::access::{parse_struct, render_struct};
use super::ini::OptionsDoc;

/// A document an older RocksDB accepts, and what had to go.
#[derive(Debug, Clone)]
pub struct Downgraded {
    pub doc: OptionsDoc,
    /// `[section] key=value` (or `key.field=value`) for each dropped setting.
    pub dropped: Vec<String>,
}

/// Remove what `message` names from `doc`: a `parent.field` of a struct value, or a plain key
/// (from every section holding it). Returns descriptions of what was removed.
fn drop_named(doc: &mut OptionsDoc, message: &str) -> Vec<String> {
    let tokens: Vec<&str> = message
        .split(|c: char| c.is_whitespace() || "'\"`,;()[]".contains(c))
        .map(|t| t.trim_matches(|c: char| c == ':' || c == '.'))
        .filter(|t| !t.is_empty())
        .collect();
    // Longest tokens first: `compaction_options_fifo.x` before `x`.
    let mut ordered = tokens.clone();
    ordered.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for token in ordered {
        let mut removed = Vec::new();
        if let Some((parent, field)) = token.split_once('.') {
            for section in &mut doc.sections {
                let header = section.kind.header();
                for (k, v) in &mut section.entries {
                    if k != parent {
                        continue;
                    }
                    if let Some(mut fields) = parse_struct(v) {
                        let before = fields.len();
                        let old: Vec<String> = fields
                            .iter()
                            .filter(|(f, _)| f == field)
                            .map(|(f, val)| format!("[{header}] {parent}.{f}={val}"))
                            .collect();
                        fields.retain(|(f, _)| f != field);
                        if fields.len() != before {
                            *v = render_struct(&fields);
                            removed.extend(old);
                        }
                    }
                }
            }
        } else {
            for section in &mut doc.sections {
                let header = section.kind.header();
                if let Some(v) = section.remove(token) {
                    removed.push(format!("[{header}] {token}={v}"));
                }
            }
        }
        if !removed.is_empty() {
            return removed;
        }
    }
    Vec::new()
}

/// Drop settings until `accepts` says yes. `accepts` returns the older RocksDB's error text.
/// Fails when an error names no key of the document (nothing left to drop) or after
/// `max_steps` rounds.
pub fn downgrade(
    doc: &OptionsDoc,
    mut accepts: impl FnMut(&OptionsDoc) -> std::result::Result<(), String>,
    max_steps: usize,
) -> Result<Downgraded> {
    let mut doc = doc.clone();
    let mut dropped = Vec::new();
    for _ in 0..max_steps {
        let Err(message) = accepts(&doc) else {
            return Ok(Downgraded { doc, dropped });
        };
        let removed = drop_named(&mut doc, &message);
        if removed.is_empty() {
            bail!(
                "the older RocksDB refuses the file and names no key lsmtune can drop: {message}"
            );
        }
        dropped.extend(removed);
    }
    bail!(
        "gave up after dropping {max_steps} settings: {}",
        dropped.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_plain_keys_and_struct_fields_named_in_errors() {
        let doc = OptionsDoc::parse(
            "[DBOptions]\n a=1\n new_key=2\n[CFOptions \"default\"]\n fifo={x=1;newer=2;}\n",
        )
        .unwrap();
        // A fake older library: refuses `new_key` and the `fifo.newer` field, in that order.
        let result = downgrade(
            &doc,
            |d| {
                if d.get(&crate::options::ini::SectionKind::Db, "new_key")
                    .is_some()
                {
                    return Err("Invalid argument: Could not find option: : new_key".into());
                }
                let fifo = d
                    .get(
                        &crate::options::ini::SectionKind::Cf("default".into()),
                        "fifo",
                    )
                    .unwrap();
                if fifo.contains("newer") {
                    return Err("Invalid argument: Unrecognized option: fifo.newer".into());
                }
                Ok(())
            },
            10,
        )
        .unwrap();
        assert_eq!(
            result.dropped,
            vec![
                "[DBOptions] new_key=2",
                "[CFOptions \"default\"] fifo.newer=2"
            ]
        );
        assert_eq!(
            result.doc.get(
                &crate::options::ini::SectionKind::Cf("default".into()),
                "fifo"
            ),
            Some("{x=1;}")
        );
    }

    #[test]
    fn an_error_naming_nothing_is_reported_not_looped() {
        let doc = OptionsDoc::parse("[DBOptions]\n a=1\n").unwrap();
        let err = downgrade(&doc, |_| Err("Corruption: bad magic".into()), 10).unwrap_err();
        assert!(err.to_string().contains("names no key"));
    }
}
