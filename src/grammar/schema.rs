//! The JSON Schema of a proposal, generated from the option catalog:
//!
//! ```json
//! {"reasoning": "<= N characters", "changes": [{"write_buffer_size": 134217728}, ...]}
//! ```
//!
//! `changes` is a list of at most K single-key objects; each item is one of the catalog's keys
//! (unsafe keys and unsafe enum values only with `allow_unsafe`) with a value of the option's
//! type and range. A list rather than one object because JSON Schema engines (llguidance, and
//! OpenAI's strict mode) cannot bound the number of optional properties of an object, while
//! `maxItems` is supported everywhere.

use serde_json::{Value as J, json};

use crate::options::catalog::Catalog;
use crate::options::spec::Safety;
use crate::options::value::OptionType;

/// What shapes the schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchemaOptions {
    /// At most this many changes per proposal.
    pub max_changes: usize,
    /// Offer options that change durability or semantics.
    pub allow_unsafe: bool,
    /// Longest `reasoning`, in characters.
    pub reasoning_chars: usize,
}

/// Changes per proposal unless `--max-changes` says otherwise (tune, compare, propose and the
/// committed schema alike).
pub const DEFAULT_MAX_CHANGES: usize = 6;
/// Longest `reasoning` unless `--reasoning-chars` says otherwise.
pub const DEFAULT_REASONING_CHARS: usize = 400;

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            max_changes: DEFAULT_MAX_CHANGES,
            allow_unsafe: false,
            reasoning_chars: DEFAULT_REASONING_CHARS,
        }
    }
}

/// The value schema of one option, or `None` when no value of it may be proposed.
fn value_schema(ty: &OptionType, safety: &Safety, allow_unsafe: bool) -> Option<J> {
    if matches!(safety, Safety::Unsafe) && !allow_unsafe {
        return None;
    }
    Some(match ty {
        OptionType::Bool => match safety {
            Safety::UnsafeValues(bad) if !allow_unsafe => {
                let ok: Vec<bool> = [false, true]
                    .into_iter()
                    .filter(|b| !bad.contains(&b.to_string().as_str()))
                    .collect();
                match ok.as_slice() {
                    [] => return None,
                    [only] => json!({"const": only}),
                    _ => json!({"type": "boolean"}),
                }
            }
            _ => json!({"type": "boolean"}),
        },
        OptionType::Int { min, max } | OptionType::Size { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        OptionType::Double { min, max } => {
            json!({"type": "number", "minimum": min, "maximum": max})
        }
        OptionType::Enum { values } => {
            let ok: Vec<&str> = values
                .iter()
                .copied()
                .filter(|v| {
                    allow_unsafe || !matches!(safety, Safety::UnsafeValues(bad) if bad.contains(v))
                })
                .collect();
            if ok.is_empty() {
                return None;
            }
            json!({"enum": ok})
        }
    })
}

/// The keys a proposal may name under `options`, in catalog order.
pub fn proposable_keys(catalog: &Catalog, options: &SchemaOptions) -> Vec<&'static str> {
    catalog
        .entries
        .iter()
        .filter(|e| value_schema(&e.spec.ty, &e.spec.safety, options.allow_unsafe).is_some())
        .map(|e| e.spec.key)
        .collect()
}

/// The proposal schema for this catalog. Deterministic: the same catalog and options give the
/// same bytes (keys in catalog order).
pub fn proposal_schema(catalog: &Catalog, options: &SchemaOptions) -> J {
    let items: Vec<J> = catalog
        .entries
        .iter()
        .filter_map(|e| {
            let v = value_schema(&e.spec.ty, &e.spec.safety, options.allow_unsafe)?;
            Some(json!({
                "type": "object",
                "properties": {e.spec.key: v},
                "required": [e.spec.key],
                "additionalProperties": false
            }))
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "lsmtune proposal",
        "description": format!(
            "Changes to RocksDB {} options: at most {} of them, each key once, values within range.",
            catalog.rocksdb_version, options.max_changes
        ),
        "type": "object",
        "properties": {
            "reasoning": {
                "type": "string",
                "maxLength": options.reasoning_chars,
                "description": "Why these changes, from the measurements (brief)."
            },
            "changes": {
                "type": "array",
                "minItems": 1,
                "maxItems": options.max_changes,
                "items": {"anyOf": items}
            }
        },
        "required": ["reasoning", "changes"],
        "additionalProperties": false
    })
}

/// A proposal schema that offers only given values: for each key (in the order given) the
/// values it may take, as written in the prompt (`"128 MiB"`, `10`, `true`, an enum's name).
/// The tuner narrows every turn's schema this way: no current value, nothing already tried
/// and not kept, nothing outside the options that matter. At most `max_changes` items.
pub fn choice_schema(choices: &[(&str, Vec<J>)], max_changes: usize, reasoning_chars: usize) -> J {
    let items: Vec<J> = choices
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(key, values)| {
            json!({
                "type": "object",
                "properties": {*key: {"enum": values}},
                "required": [key],
                "additionalProperties": false
            })
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "reasoning": {
                "type": "string",
                "maxLength": reasoning_chars,
                "description": "The symptom these changes address (one sentence)."
            },
            "changes": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_changes.max(1),
                "items": {"anyOf": items}
            }
        },
        "required": ["reasoning", "changes"],
        "additionalProperties": false
    })
}

/// The schema as committed under `grammars/`: pretty-printed, newline-terminated.
pub fn render(schema: &J) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Path of the committed default schema, relative to the repository root.
pub const COMMITTED_PATH: &str = "grammars/proposal.schema.json";
