//! Option value types and the forgiving parser that turns what a model or a person writes
//! ("64MB", "1<<20", "yes", "\"4\"", "lz4") into a typed value, saying what it had to coerce,
//! and clamps it into its type's range. Also the one place for byte units and value display:
//! sizes are read with any unit (`parse_number`), written in binary units (`human_bytes`), and
//! rounded to what people write (`round_size`); a value is shown to people and models by `show`,
//! and in a correction, exactly, by `show_exact`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of a catalog option, with its allowed range or values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OptionType {
    Bool,
    /// An integer count or id, inclusive range.
    Int {
        min: i64,
        max: i64,
    },
    /// A size in bytes, inclusive range.
    Size {
        min: i64,
        max: i64,
    },
    /// A floating-point number, inclusive range.
    Double {
        min: f64,
        max: f64,
    },
    /// One of RocksDB's spellings, e.g. `kLZ4Compression`.
    Enum {
        values: &'static [&'static str],
    },
}

impl OptionType {
    /// A short human description: `bool`, `int 1..=64`, `size 64 KiB..=1 GiB`, `enum {a|b}`.
    pub fn describe(&self) -> String {
        match self {
            OptionType::Bool => "bool".into(),
            OptionType::Int { min, max } => format!("int {min}..={max}"),
            OptionType::Size { min, max } => {
                format!("size {}..={}", human_bytes(*min), human_bytes(*max))
            }
            OptionType::Double { min, max } => format!("double {min}..={max}"),
            OptionType::Enum { values } => format!("enum {{{}}}", values.join("|")),
        }
    }
}

/// A typed option value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Double(v) if v.fract() == 0.0 => Some(*v as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Double(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// RocksDB's spelling: what goes after `=` in an OPTIONS file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d:.6}"),
            Value::Str(s) => write!(f, "{s}"),
        }
    }
}

/// `1073741824` → `1 GiB`, `1000` → `1000 B`.
pub fn human_bytes(v: i64) -> String {
    const UNITS: [(&str, i64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if v.abs() >= unit {
            return if v % unit == 0 {
                format!("{} {name}", v / unit)
            } else {
                format!("{:.1} {name}", v as f64 / unit as f64)
            };
        }
    }
    format!("{v} B")
}

/// Round a size to a value people write: a whole number of MiB (or KiB, from 1 KiB to 1 MiB).
pub fn round_size(v: i64) -> i64 {
    const MIB: i64 = 1 << 20;
    if v >= MIB {
        (v + MIB / 2) / MIB * MIB
    } else if v >= 1024 {
        (v + 512) / 1024 * 1024
    } else {
        v
    }
}

/// A value as lsmtune shows it to people and models (prompts, tables, journal notes), and as a
/// proposal may write it back: sizes of 1 KiB and up in binary units (`128 MiB`), numbers with
/// RocksDB's precision and without trailing zeros (`0.1`, `10`), anything else in RocksDB's
/// spelling.
pub fn show(ty: &OptionType, v: &Value) -> String {
    match (ty, v) {
        (OptionType::Size { .. }, Value::Int(b)) if *b >= 1024 => human_bytes(*b),
        (_, Value::Double(d)) => {
            let s = format!("{d:.6}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => v.to_string(),
    }
}

/// A value as journaled (RocksDB's spelling) back to a typed value.
pub fn value_of(ty: &OptionType, text: &str) -> Option<Value> {
    Some(match ty {
        OptionType::Bool => Value::Bool(text.parse().ok()?),
        OptionType::Int { .. } | OptionType::Size { .. } => Value::Int(text.parse().ok()?),
        OptionType::Double { .. } => Value::Double(text.parse().ok()?),
        OptionType::Enum { .. } => Value::Str(text.to_string()),
    })
}

/// A value in a correction: exactly RocksDB's spelling, with sizes of 1 KiB and up also in
/// binary units (`134217728 (128 MiB)`).
pub fn show_exact(ty: &OptionType, v: &Value) -> String {
    match (ty, v) {
        (OptionType::Size { .. }, Value::Int(i)) if *i >= 1024 => {
            format!("{i} ({})", human_bytes(*i))
        }
        _ => v.to_string(),
    }
}

/// A value as it arrived: JSON scalar or text.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Json(serde_json::Value),
    Text(String),
}

impl fmt::Display for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Json(serde_json::Value::String(s)) => write!(f, "\"{s}\""),
            RawValue::Json(v) => write!(f, "{v}"),
            RawValue::Text(s) => write!(f, "{s}"),
        }
    }
}

/// The outcome of coercing a raw value to an option type.
#[derive(Debug, Clone, PartialEq)]
pub struct Coerced {
    pub value: Value,
    /// Why the value was not already in canonical form (None when it was).
    pub note: Option<String>,
}

/// Why a value could not be read at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Unparsable(pub String);

fn strip_text(s: &str) -> &str {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`')
        .trim()
        .trim_end_matches([',', ';', '.'])
        .trim()
}

/// Parse a boolean the way people write them.
pub fn parse_bool(s: &str) -> Option<bool> {
    match strip_text(s).to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" | "enable" | "enabled" => Some(true),
        "false" | "0" | "no" | "n" | "off" | "disable" | "disabled" => Some(false),
        _ => None,
    }
}

fn unit_multiplier(unit: &str) -> Option<f64> {
    let u = unit.trim().to_ascii_lowercase();
    let m = match u.as_str() {
        "" | "b" | "byte" | "bytes" => 1.0,
        "k" | "kb" | "kib" | "kbyte" | "kbytes" => 1024.0,
        "m" | "mb" | "mib" | "mbyte" | "mbytes" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" | "gbyte" | "gbytes" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(m)
}

/// A number with optional unit suffix, thousands separators, `a<<b`, `a*b*c`, `2^20`.
/// Returns the number and whether any non-plain syntax was used.
pub fn parse_number(s: &str) -> Option<(f64, bool)> {
    let s = strip_text(s);
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some((v, false));
    }
    if let Some((a, b)) = s.split_once("<<") {
        let (a, _) = parse_number(a)?;
        let (b, _) = parse_number(b)?;
        if !(0.0..=62.0).contains(&b) || b.fract() != 0.0 {
            return None;
        }
        return Some((a * 2f64.powi(b as i32), true));
    }
    if let Some((a, b)) = s.split_once('^') {
        let (a, _) = parse_number(a)?;
        let (b, _) = parse_number(b)?;
        if !(0.0..=62.0).contains(&b) {
            return None;
        }
        return Some((a.powf(b), true));
    }
    if s.contains('*') {
        let mut product = 1.0;
        for part in s.split('*') {
            product *= parse_number(part)?.0;
        }
        return product.is_finite().then_some((product, true));
    }
    let cleaned: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
    if cleaned != s {
        return parse_number(&cleaned).map(|(v, _)| (v, true));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.trim().parse().ok()?;
    let m = unit_multiplier(unit)?;
    let r = v * m;
    r.is_finite().then_some((r, true))
}

fn describe_raw(raw: &RawValue) -> String {
    raw.to_string()
}

fn enum_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Match an enum spelling: exact, case-insensitive, or the value without RocksDB's `k` prefix and
/// common suffixes (`lz4` → `kLZ4Compression`, `level` → `kCompactionStyleLevel`).
pub fn match_enum(values: &[&'static str], s: &str) -> Option<&'static str> {
    let s = strip_text(s);
    if let Some(v) = values.iter().find(|v| **v == s) {
        return Some(v);
    }
    let want = enum_key(s);
    if want.is_empty() {
        return None;
    }
    if let Some(v) = values.iter().find(|v| enum_key(v) == want) {
        return Some(v);
    }
    // Core of each value: drop the `k` prefix and the words the family shares.
    let core = |v: &str| {
        let k = enum_key(v);
        let k = k.strip_prefix('k').unwrap_or(&k).to_string();
        k.replace("compressionstyle", "")
            .replace("compactionstyle", "")
            .replace("compression", "")
            .replace("compactionpri", "")
            .replace("factory", "")
            .replace("rep", "")
    };
    let want_core = core(s);
    let hits: Vec<&'static str> = values
        .iter()
        .copied()
        .filter(|v| !want_core.is_empty() && core(v) == want_core)
        .collect();
    if hits.len() == 1 {
        return Some(hits[0]);
    }
    // Common plain-language synonyms.
    let synonym = match want.as_str() {
        "none" | "no" | "off" | "disabled" | "false" | "uncompressed" => "kNoCompression",
        "zstandard" => "kZSTD",
        "bzip" | "bz2" => "kBZip2Compression",
        "gzip" | "deflate" => "kZlibCompression",
        "leveled" | "leveling" => "kCompactionStyleLevel",
        "tiered" => "kCompactionStyleUniversal",
        _ => "",
    };
    values.iter().copied().find(|v| *v == synonym)
}

/// Clamp a value into its type's range; `Some(new)` when it moved.
pub fn clamp(ty: &OptionType, v: &Value) -> Option<Value> {
    match (ty, v) {
        (OptionType::Int { min, max } | OptionType::Size { min, max }, Value::Int(i)) => {
            let c = (*i).clamp(*min, *max);
            (c != *i).then_some(Value::Int(c))
        }
        (OptionType::Double { min, max }, Value::Double(d)) => {
            let c = d.clamp(*min, *max);
            (c != *d).then_some(Value::Double(c))
        }
        _ => None,
    }
}

/// Coerce a raw value to `ty`. Range is not checked here (see [`clamp`]).
pub fn coerce(ty: &OptionType, raw: &RawValue) -> Result<Coerced, Unparsable> {
    use serde_json::Value as J;
    let fail = |why: &str| Err(Unparsable(format!("{} {why}", describe_raw(raw))));
    match ty {
        OptionType::Bool => match raw {
            RawValue::Json(J::Bool(b)) => Ok(Coerced {
                value: Value::Bool(*b),
                note: None,
            }),
            RawValue::Json(J::Number(n)) => match n.as_f64() {
                Some(v) if v == 0.0 || v == 1.0 => Ok(Coerced {
                    value: Value::Bool(v == 1.0),
                    note: Some(format!("number {n} read as a boolean")),
                }),
                _ => fail("is not a boolean"),
            },
            RawValue::Json(J::String(s)) | RawValue::Text(s) => match parse_bool(s) {
                Some(b) => {
                    let canonical = matches!(raw, RawValue::Text(t) if t.trim() == b.to_string());
                    Ok(Coerced {
                        value: Value::Bool(b),
                        note: (!canonical).then(|| format!("text {s:?} read as {b}")),
                    })
                }
                None => fail("is not a boolean"),
            },
            _ => fail("is not a boolean"),
        },
        OptionType::Int { .. } | OptionType::Size { .. } => {
            let (v, note) = match raw {
                RawValue::Json(J::Number(n)) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => (i as f64, None),
                    (None, Some(f)) => (f, Some(format!("number {n} rounded to an integer"))),
                    _ => return fail("is not a number"),
                },
                RawValue::Json(J::Bool(b)) => (
                    if *b { 1.0 } else { 0.0 },
                    Some(format!("boolean {b} read as a number")),
                ),
                RawValue::Json(J::String(s)) => match parse_number(s) {
                    // A size written as lsmtune writes it ("128 MiB", what the tuner's schema
                    // offers) is a canonical spelling, not a type correction.
                    Some((v, _))
                        if matches!(ty, OptionType::Size { .. })
                            && v.fract() == 0.0
                            && human_bytes(v as i64) == s.trim() =>
                    {
                        (v, None)
                    }
                    Some((v, _)) => (v, Some(format!("text {s:?} read as a number"))),
                    None => return fail("is not a number"),
                },
                RawValue::Text(s) => match parse_number(s) {
                    Some((v, fancy)) => (v, fancy.then(|| format!("{s:?} read as {v:.0}"))),
                    None => return fail("is not a number"),
                },
                _ => return fail("is not a number"),
            };
            let rounded = v.round();
            let note = if note.is_none() && rounded != v {
                Some(format!("{v} rounded to {rounded}"))
            } else {
                note
            };
            if rounded.abs() > 9.0e18 {
                return fail("is too large");
            }
            Ok(Coerced {
                value: Value::Int(rounded as i64),
                note,
            })
        }
        OptionType::Double { .. } => {
            let (v, note) = match raw {
                RawValue::Json(J::Number(n)) => match n.as_f64() {
                    Some(f) => (f, None),
                    None => return fail("is not a number"),
                },
                RawValue::Json(J::String(s)) => match parse_number(s) {
                    Some((v, _)) => (v, Some(format!("text {s:?} read as a number"))),
                    None => return fail("is not a number"),
                },
                RawValue::Text(s) => match parse_number(s) {
                    Some((v, fancy)) => (v, fancy.then(|| format!("{s:?} read as {v}"))),
                    None => return fail("is not a number"),
                },
                _ => return fail("is not a number"),
            };
            Ok(Coerced {
                value: Value::Double(v),
                note,
            })
        }
        OptionType::Enum { values } => {
            let text = match raw {
                RawValue::Json(J::String(s)) | RawValue::Text(s) => s.clone(),
                RawValue::Json(J::Bool(b)) => b.to_string(),
                RawValue::Json(J::Number(n)) => n.to_string(),
                _ => return fail("is not one of the allowed values"),
            };
            match match_enum(values, &text) {
                Some(v) => Ok(Coerced {
                    value: Value::Str(v.to_string()),
                    note: (v != text.trim()).then(|| format!("{text:?} read as {v}")),
                }),
                None => Err(Unparsable(format!(
                    "{} is not one of {}",
                    describe_raw(raw),
                    values.join(", ")
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.to_string())
    }

    #[test]
    fn numbers_with_units_and_expressions() {
        let cases = [
            ("64MB", 64.0 * 1048576.0),
            ("64 MiB", 64.0 * 1048576.0),
            ("1G", 1073741824.0),
            ("1.5k", 1536.0),
            ("1<<20", 1048576.0),
            ("4*1024*1024", 4194304.0),
            ("2^10", 1024.0),
            ("1,000,000", 1e6),
            ("1_000", 1000.0),
            ("\"4096\"", 4096.0),
            ("1e6", 1e6),
            ("128 bytes", 128.0),
        ];
        for (s, want) in cases {
            assert_eq!(parse_number(s).map(|x| x.0), Some(want), "{s}");
        }
        for bad in ["", "lots", "1<<99", "12 parsecs", "NaN", "inf"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["true", "1", "yes", "On", "ENABLED", "\"true\""] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "0", "no", "off", "disabled"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn coercion_notes_only_non_canonical_input() {
        let size = OptionType::Size {
            min: 0,
            max: 1 << 40,
        };
        let c = coerce(&size, &RawValue::Json(json!(4096))).unwrap();
        assert_eq!((c.value, c.note), (Value::Int(4096), None));
        let c = coerce(&size, &text("64MB")).unwrap();
        assert_eq!(c.value, Value::Int(64 << 20));
        assert!(c.note.is_some());
        let c = coerce(&size, &RawValue::Json(json!("4096"))).unwrap();
        assert!(c.note.unwrap().contains("text"));
        assert!(coerce(&size, &RawValue::Json(json!([1]))).is_err());
        assert!(coerce(&size, &text("big")).is_err());

        let b = OptionType::Bool;
        assert_eq!(coerce(&b, &text("true")).unwrap().note, None);
        assert!(coerce(&b, &text("yes")).unwrap().note.is_some());
        assert_eq!(
            coerce(&b, &RawValue::Json(json!(1))).unwrap().value,
            Value::Bool(true)
        );
        assert!(coerce(&b, &RawValue::Json(json!(7))).is_err());

        let d = OptionType::Double {
            min: 0.0,
            max: 100.0,
        };
        assert_eq!(
            coerce(&d, &RawValue::Json(json!(10))).unwrap().value,
            Value::Double(10.0)
        );
    }

    #[test]
    fn enums_match_loosely_but_never_ambiguously() {
        const COMP: &[&str] = crate::options::spec::COMPRESSIONS;
        assert_eq!(match_enum(COMP, "kLZ4Compression"), Some("kLZ4Compression"));
        assert_eq!(match_enum(COMP, "lz4"), Some("kLZ4Compression"));
        assert_eq!(match_enum(COMP, "LZ4HC"), Some("kLZ4HCCompression"));
        assert_eq!(match_enum(COMP, "zstd"), Some("kZSTD"));
        assert_eq!(match_enum(COMP, "none"), Some("kNoCompression"));
        assert_eq!(match_enum(COMP, "snappy"), Some("kSnappyCompression"));
        assert_eq!(match_enum(COMP, "brotli"), None);
        const STYLE: &[&str] = &["kCompactionStyleLevel", "kCompactionStyleUniversal"];
        assert_eq!(
            match_enum(STYLE, "universal"),
            Some("kCompactionStyleUniversal")
        );
        assert_eq!(match_enum(STYLE, "leveled"), Some("kCompactionStyleLevel"));
    }

    #[test]
    fn sizes_written_as_lsmtune_writes_them_need_no_correction() {
        let ty = OptionType::Size {
            min: 0,
            max: 1 << 40,
        };
        let c = coerce(&ty, &RawValue::Json(serde_json::json!("128 MiB"))).unwrap();
        assert_eq!((c.value, c.note), (Value::Int(128 << 20), None));
        let c = coerce(&ty, &RawValue::Json(serde_json::json!("128MB"))).unwrap();
        assert_eq!(c.value, Value::Int(128 << 20));
        assert!(c.note.is_some(), "other spellings are still noted");
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(64 << 10), "64 KiB");
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(1_500_000), "1.4 MiB");
        assert_eq!(human_bytes(45228 << 10), "44.2 MiB");
        assert_eq!(human_bytes(1536 << 10), "1.5 MiB");
    }

    #[test]
    fn clamp_moves_only_out_of_range_values() {
        let ty = OptionType::Int { min: 1, max: 10 };
        assert_eq!(clamp(&ty, &Value::Int(0)), Some(Value::Int(1)));
        assert_eq!(clamp(&ty, &Value::Int(5)), None);
        assert_eq!(clamp(&ty, &Value::Int(99)), Some(Value::Int(10)));
        let d = OptionType::Double { min: 0.0, max: 1.0 };
        assert_eq!(clamp(&d, &Value::Double(2.0)), Some(Value::Double(1.0)));
    }

    #[test]
    fn values_are_shown_one_way() {
        let size = OptionType::Size {
            min: 0,
            max: 1 << 40,
        };
        let d = OptionType::Double {
            min: 0.0,
            max: 100.0,
        };
        assert_eq!(show(&size, &Value::Int(128 << 20)), "128 MiB");
        assert_eq!(show(&size, &Value::Int(1000)), "1000");
        assert_eq!(show(&d, &Value::Double(10.0)), "10");
        assert_eq!(show(&d, &Value::Double(0.1)), "0.1");
        assert_eq!(show(&d, &Value::Double(0.1 + 0.2)), "0.3");
        assert_eq!(show(&OptionType::Bool, &Value::Bool(true)), "true");
        assert_eq!(
            show_exact(&size, &Value::Int(128 << 20)),
            "134217728 (128 MiB)"
        );
        assert_eq!(show_exact(&d, &Value::Double(0.1)), "0.100000");
        assert_eq!(round_size((64 << 20) + 1234), 64 << 20);
        assert_eq!(round_size(16_000), 16 << 10);
        assert_eq!(round_size(1000), 1000);
    }
}
