//! How each option is read from and written to an OPTIONS document, through its `Storage`: plain
//! keys, and the virtual options RocksDB keeps inside other values (the block cache capacity in
//! `block_cache`, filter bits and kind in `filter_policy`, fields of nested structs).

use super::ini::{OptionsDoc, unescape};
use super::spec::{OptionSpec, Storage, raw_key_of};
use super::value::{RawValue, Value, coerce};

/// Split a nested struct value `{a=1;b={x=2;};}` into its fields, in order.
pub fn parse_struct(value: &str) -> Option<Vec<(String, String)>> {
    let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut fields = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes = inner.as_bytes();
    let mut push = |part: &str| {
        let part = part.trim();
        if part.is_empty() {
            return true;
        }
        match part.split_once('=') {
            Some((k, v)) => {
                fields.push((k.trim().to_string(), v.trim().to_string()));
                true
            }
            None => false,
        }
    };
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b';' if depth == 0 => {
                if !push(&inner[start..i]) {
                    return None;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if !push(&inner[start..]) {
        return None;
    }
    Some(fields)
}

/// Render fields as RocksDB writes a nested struct: `{a=1;b=2;}`.
pub fn render_struct(fields: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (k, v) in fields {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push(';');
    }
    s.push('}');
    s
}

/// Parse the capacity out of a `block_cache` value: `1073741824`, `1G`, or `{capacity=1G;...}`.
fn block_cache_capacity(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let text = if raw.starts_with('{') {
        parse_struct(raw)?
            .into_iter()
            .find(|(k, _)| k == "capacity")?
            .1
    } else {
        raw.to_string()
    };
    super::value::parse_number(&text).map(|(v, _)| v as i64)
}

/// `(kind, bits)` of a `filter_policy` value; `None` for an unreadable one.
/// `nullptr` is (bloom, 0). The legacy `rocksdb.BuiltinBloomFilter` records no bits.
fn parse_filter_policy(raw: &str) -> Option<(&'static str, f64)> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "nullptr" {
        return Some(("bloom", 0.0));
    }
    let mut parts = raw.split(':');
    let name = parts.next()?;
    let kind = match name {
        "bloomfilter"
        | "rocksdb.BloomFilter"
        | "rocksdb.internal.FastLocalBloomFilter"
        | "rocksdb.internal.LegacyBloomFilter" => "bloom",
        "ribbonfilter" | "rocksdb.RibbonFilter" | "rocksdb.internal.Standard128RibbonFilter" => {
            "ribbon"
        }
        _ => return None,
    };
    let bits: f64 = parts.next()?.trim().parse().ok()?;
    Some((kind, bits))
}

fn filter_policy_string(kind: &str, bits: f64) -> String {
    if bits <= 0.0 {
        return "nullptr".into();
    }
    let bits = trim_float(bits);
    match kind {
        "ribbon" => format!("ribbonfilter:{bits}:-1"),
        _ => format!("bloomfilter:{bits}:false"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The raw key (in the spec's section) whose value stores the spec.
pub fn storage_key(spec: &OptionSpec) -> &'static str {
    match spec.storage {
        Storage::Plain => raw_key_of(spec.key),
        Storage::Field { parent, .. } => parent,
        Storage::BlockCacheCapacity => "block_cache",
        Storage::FilterBits | Storage::FilterKind => "filter_policy",
    }
}

/// The raw string stored for a spec, if the document has one.
pub fn read_raw(doc: &OptionsDoc, spec: &OptionSpec) -> Option<String> {
    let section = spec.scope.section();
    match spec.storage {
        Storage::Plain => doc.get(&section, raw_key_of(spec.key)).map(unescape),
        Storage::Field { parent, field } => {
            let fields = parse_struct(&unescape(doc.get(&section, parent)?))?;
            fields.into_iter().find(|(k, _)| k == field).map(|(_, v)| v)
        }
        Storage::BlockCacheCapacity => doc.get(&section, "block_cache").map(unescape),
        Storage::FilterBits | Storage::FilterKind => {
            doc.get(&section, "filter_policy").map(unescape)
        }
    }
}

/// Read a catalog option from a document as a typed value, or `None` when the document does not
/// set it (or sets something unreadable).
pub fn read_typed(doc: &OptionsDoc, spec: &OptionSpec) -> Option<Value> {
    let raw = read_raw(doc, spec)?;
    match spec.storage {
        Storage::BlockCacheCapacity => block_cache_capacity(&raw).map(Value::Int),
        Storage::FilterBits => parse_filter_policy(&raw).map(|(_, bits)| Value::Double(bits)),
        Storage::FilterKind => {
            parse_filter_policy(&raw).map(|(kind, _)| Value::Str(kind.to_string()))
        }
        Storage::Plain | Storage::Field { .. } => {
            coerce(&spec.ty, &RawValue::Text(raw)).ok().map(|c| c.value)
        }
    }
}

/// Write a typed value of a catalog option into a document.
pub fn write_typed(doc: &mut OptionsDoc, spec: &OptionSpec, value: &Value) {
    let section = spec.scope.section();
    match spec.storage {
        Storage::Plain => doc.set(&section, raw_key_of(spec.key), &value.to_string()),
        Storage::Field { parent, field } => {
            let mut fields = doc
                .get(&section, parent)
                .and_then(|v| parse_struct(&unescape(v)))
                .unwrap_or_default();
            match fields.iter_mut().find(|(k, _)| k == field) {
                Some(slot) => slot.1 = value.to_string(),
                None => fields.push((field.to_string(), value.to_string())),
            }
            doc.set(&section, parent, &render_struct(&fields));
        }
        Storage::BlockCacheCapacity => doc.set(&section, "block_cache", &value.to_string()),
        Storage::FilterBits => {
            let kind = doc
                .get(&section, "filter_policy")
                .and_then(parse_filter_policy)
                .map(|(k, _)| k)
                .unwrap_or("bloom");
            let bits = value.as_f64().unwrap_or(0.0);
            doc.set(&section, "filter_policy", &filter_policy_string(kind, bits));
        }
        Storage::FilterKind => {
            let bits = doc
                .get(&section, "filter_policy")
                .and_then(parse_filter_policy)
                .map(|(_, b)| b)
                .unwrap_or(0.0);
            let kind = value.as_str().unwrap_or("bloom");
            doc.set(&section, "filter_policy", &filter_policy_string(kind, bits));
        }
    }
}

/// Two values are the same setting (10 == 10.000000, 1 == 1.0).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}
