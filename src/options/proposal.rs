//! Turning whatever a proposer wrote into raw `(key, value)` entries: a JSON object (possibly
//! wrapped in prose or a code fence, possibly `{"changes": {...}}` or nested by section), a whole
//! OPTIONS file, or `key=value` / `key: value` / `--flag=value` lines. Nothing is judged here;
//! the calibrator decides what each entry means.

use serde_json::Value as J;

use super::ini::{OptionsDoc, SectionKind, unescape};
use super::spec::Scope;
use super::value::RawValue;

/// One proposed change as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub key: String,
    pub value: RawValue,
    /// Section the entry came from, when the source said (OPTIONS section, JSON nesting).
    pub scope: Option<Scope>,
}

/// A proposal as parsed, before calibration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawProposal {
    pub entries: Vec<RawEntry>,
    pub reasoning: Option<String>,
    /// Which form the text was read as: `json`, `options-file`, `lines` or `empty`.
    pub format: &'static str,
    /// Things skipped while reading (other column families, lines that are not settings).
    pub skipped: Vec<String>,
}

const REASONING_KEYS: &[&str] = &[
    "reasoning",
    "rationale",
    "reason",
    "explanation",
    "analysis",
    "thoughts",
];

/// Words that, as a JSON object key, name a section rather than an option.
fn section_scope(key: &str) -> Option<Option<Scope>> {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match k.as_str() {
        "dboptions" | "db" | "database" => Some(Some(Scope::Db)),
        "cfoptions" | "cf" | "columnfamilyoptions" | "columnfamily" | "default" => {
            Some(Some(Scope::Cf))
        }
        "tableoptions"
        | "table"
        | "blockbasedtable"
        | "blockbasedtablefactory"
        | "blockbasedtableoptions"
        | "tableoptionsblockbasedtable"
        | "bbto" => Some(Some(Scope::Table)),
        "changes" | "options" | "config" | "configuration" | "settings" | "proposal"
        | "recommendations" | "parameters" => Some(None),
        _ => None,
    }
}

fn push_json_entries(
    obj: &serde_json::Map<String, J>,
    scope: Option<Scope>,
    prefix: &str,
    out: &mut RawProposal,
) {
    for (k, v) in obj {
        if prefix.is_empty() && REASONING_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
            if let J::String(s) = v {
                out.reasoning = Some(s.clone());
            }
            continue;
        }
        match v {
            J::Object(inner) => match (prefix.is_empty(), section_scope(k)) {
                (true, Some(s)) => push_json_entries(inner, s.or(scope), "", out),
                _ => {
                    let nested = format!("{prefix}{k}.");
                    push_json_entries(inner, scope, &nested, out)
                }
            },
            J::Array(items) if prefix.is_empty() && section_scope(k).is_some() => {
                // "changes": [{"key": .., "value": ..}, ...] or [{"key": value}, ...]
                for item in items {
                    let Some(o) = item.as_object() else {
                        out.skipped
                            .push(format!("array item that is not an object: {item}"));
                        continue;
                    };
                    let key = ["key", "option", "name", "parameter"]
                        .iter()
                        .find_map(|n| o.get(*n).and_then(J::as_str));
                    let value = ["value", "new_value", "to", "setting"]
                        .iter()
                        .find_map(|n| o.get(*n));
                    match (key, value) {
                        (Some(key), Some(value)) => out.entries.push(RawEntry {
                            key: key.to_string(),
                            value: RawValue::Json(value.clone()),
                            scope,
                        }),
                        // [{"write_buffer_size": 67108864}, ...]: the grammar's own form.
                        _ if o.len() == 1 => {
                            push_json_entries(o, scope, prefix, out);
                        }
                        _ => out
                            .skipped
                            .push(format!("array item without key/value: {item}")),
                    }
                }
            }
            _ => out.entries.push(RawEntry {
                key: format!("{prefix}{k}"),
                value: RawValue::Json(v.clone()),
                scope,
            }),
        }
    }
}

/// The first JSON object in the text that parses, from any `{`.
fn first_json_object(text: &str) -> Option<serde_json::Map<String, J>> {
    for (i, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<J>();
        if let Some(Ok(J::Object(obj))) = stream.next() {
            return Some(obj);
        }
    }
    None
}

fn looks_like_options_file(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("[DBOptions]")
            || l.starts_with("[CFOptions")
            || l.starts_with("[TableOptions")
    })
}

/// Strip list bullets, numbering and markdown from the start of a line.
fn strip_bullet(line: &str) -> &str {
    let mut l = line.trim();
    loop {
        let before = l;
        for b in ["- ", "* ", "• ", "> "] {
            if let Some(rest) = l.strip_prefix(b) {
                l = rest.trim_start();
            }
        }
        let digits = l.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && l[digits..].starts_with(['.', ')']) {
            l = l[digits + 1..].trim_start();
        }
        if before == l {
            return l;
        }
    }
}

/// Cut explanations after the value: `128MB  # fewer flushes`, `4 (was 2)`, `true // faster`.
fn strip_value_comment(v: &str) -> &str {
    let mut end = v.len();
    for marker in [" #", " //", " (", " -- ", " — ", " because ", ". "] {
        if let Some(i) = v.find(marker) {
            end = end.min(i);
        }
    }
    v[..end].trim()
}

fn is_key_like(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 80
        && k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
}

fn parse_lines(text: &str, out: &mut RawProposal) {
    let mut scope = None;
    for raw in text.lines() {
        let line = strip_bullet(raw).trim_matches('`').trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            scope = section_scope(h.split('"').next().unwrap_or(h)).flatten();
            continue;
        }
        let line = line.strip_prefix("--").unwrap_or(line);
        let split = [line.find('='), line.find(':')].into_iter().flatten().min();
        let Some(pos) = split else {
            out.skipped.push(line.to_string());
            continue;
        };
        let key = line[..pos]
            .trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == '`' || c == '*')
            .trim();
        let value = line[pos + 1..].trim().trim_end_matches(',').trim();
        let value = strip_value_comment(value).trim_matches('`');
        if !is_key_like(key) || value.is_empty() {
            out.skipped.push(line.to_string());
            continue;
        }
        out.entries.push(RawEntry {
            key: key.to_string(),
            value: RawValue::Text(value.to_string()),
            scope,
        });
    }
}

/// Parse any proposal text.
pub fn parse(text: &str) -> RawProposal {
    let mut out = RawProposal::default();
    if looks_like_options_file(text)
        && let Ok(doc) = OptionsDoc::parse(text)
    {
        out.format = "options-file";
        for section in &doc.sections {
            match Scope::tuned(&section.kind) {
                Some(scope) => {
                    for (k, v) in &section.entries {
                        out.entries.push(RawEntry {
                            key: k.clone(),
                            value: RawValue::Text(unescape(v)),
                            scope: Some(scope),
                        });
                    }
                }
                None if section.kind == SectionKind::Version => {}
                None => out.skipped.push(format!(
                    "section [{}] (only the default column family is tuned)",
                    section.kind.header()
                )),
            }
        }
        return out;
    }
    if let Some(obj) = first_json_object(text) {
        out.format = "json";
        push_json_entries(&obj, None, "", &mut out);
        if !out.entries.is_empty() {
            return out;
        }
    }
    out.format = "lines";
    parse_lines(text, &mut out);
    if out.entries.is_empty() {
        out.format = "empty";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(p: &RawProposal) -> Vec<&str> {
        p.entries.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn schema_shaped_json_with_prose_around_it() {
        let p = parse(
            "Sure! Here is my proposal:\n```json\n{\"reasoning\": \"more memtable\", \"changes\": {\"write_buffer_size\": 134217728, \"table.block_size\": 16384}}\n```\nGood luck.",
        );
        assert_eq!(p.format, "json");
        assert_eq!(p.reasoning.as_deref(), Some("more memtable"));
        assert_eq!(keys(&p), vec!["write_buffer_size", "table.block_size"]);
        assert_eq!(p.entries[0].value, RawValue::Json(json!(134217728)));
    }

    #[test]
    fn json_nested_by_section_and_struct() {
        let p = parse(
            r#"{"DBOptions": {"max_background_jobs": 4}, "block_based_table_factory": {"block_size": "16KB"}, "compaction_options_universal": {"size_ratio": 10}}"#,
        );
        assert_eq!(p.entries[0].scope, Some(Scope::Db));
        assert_eq!(p.entries[1].scope, Some(Scope::Table));
        assert_eq!(p.entries[1].key, "block_size");
        assert_eq!(p.entries[2].key, "compaction_options_universal.size_ratio");
    }

    #[test]
    fn the_grammar_form_a_list_of_single_key_objects() {
        let p = parse(
            r#"{"reasoning": "stalls", "changes": [{"write_buffer_size": 134217728}, {"table.filter_bits_per_key": 10.0}, {"compression": "kLZ4Compression"}]}"#,
        );
        assert_eq!(p.reasoning.as_deref(), Some("stalls"));
        assert_eq!(
            keys(&p),
            vec![
                "write_buffer_size",
                "table.filter_bits_per_key",
                "compression"
            ]
        );
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn json_change_list() {
        let p = parse(
            r#"{"changes": [{"option": "compression", "value": "lz4"}, {"key": "max_open_files", "value": -1}, 3]}"#,
        );
        assert_eq!(keys(&p), vec!["compression", "max_open_files"]);
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn lines_in_many_styles() {
        let text = "I suggest:\n1. write_buffer_size = 128MB (fewer flushes)\n- `max_background_jobs: 4`\n* **compression**: lz4\n--bloom_bits=10\n\"level0_slowdown_writes_trigger\": 30,\nThis line is prose.\n";
        let p = parse(text);
        assert_eq!(p.format, "lines");
        assert_eq!(
            keys(&p),
            vec![
                "write_buffer_size",
                "max_background_jobs",
                "compression",
                "bloom_bits",
                "level0_slowdown_writes_trigger"
            ]
        );
        assert_eq!(p.entries[0].value, RawValue::Text("128MB".into()));
        assert_eq!(p.entries[2].value, RawValue::Text("lz4".into()));
    }

    #[test]
    fn whole_options_file_keeps_sections() {
        let text = "[Version]\n rocksdb_version=8.8.1\n[DBOptions]\n max_background_jobs=8\n[CFOptions \"default\"]\n write_buffer_size=1\n[CFOptions \"other\"]\n write_buffer_size=2\n[TableOptions/BlockBasedTable \"default\"]\n block_size=8192\n";
        let p = parse(text);
        assert_eq!(p.format, "options-file");
        assert_eq!(
            keys(&p),
            vec!["max_background_jobs", "write_buffer_size", "block_size"]
        );
        assert_eq!(p.entries[2].scope, Some(Scope::Table));
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn nothing_usable_is_empty_not_an_error() {
        for text in ["", "just words", "{", "}}}{{{", "\u{0}\u{1}"] {
            let p = parse(text);
            assert!(p.entries.is_empty(), "{text:?}");
        }
    }
}
