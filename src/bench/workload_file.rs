//! Workload files: a user's service described in TOML or JSON (an operation mix, key
//! popularity, key / value / scan sizes, key count, threads, an optional target rate, load then
//! run), and YCSB's CoreWorkload property files (`workloads/workloada` ...), read into a
//! [`Workload`] whose [`Mix`] the in-process runner draws from. Unknown fields in TOML / JSON are
//! errors that name the field; YCSB properties lsmtune does not use are returned as notes,
//! since YCSB files carry settings for many database bindings.
//!
//! ```toml
//! name = "feed-service"
//! num = 1000000                      # keys in the key space (db_bench --num)
//! threads = 2
//! duration = "30s"                   # or: ops = 100000 (per thread)
//! key_size = 16                      # or a distribution, as value_size
//! value_size = { dist = "pareto", k = 0.2615, sigma = 25.45, min = 10, max = 1024 }
//! rate = 20000                       # optional: ops/s over all threads
//! load = true                        # write every key once before the measured phase
//! [ops]                              # relative weights
//! get = 80
//! put = 15
//! seek = 5                           # seek, then read scan_length entries
//! [keys]
//! dist = "zipfian"                   # uniform | zipfian | latest | hotspot | power
//! theta = 0.99
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::mix::{KeyDist, Mix, OpWeights, Rate, SizeDist};
use super::sampler::mean_size;
use super::workload::{Kind, Workload};
use crate::bounds;
use crate::input::{clip, clip_message, excerpt};

/// The TOML / JSON format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    name: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    num: Option<u64>,
    threads: Option<usize>,
    ops: OpWeights,
    #[serde(rename = "ops_per_thread")]
    ops_per_thread: Option<u64>,
    duration: Option<DurationSpec>,
    key_size: Option<SizeDist>,
    value_size: Option<SizeDist>,
    compression_ratio: Option<f64>,
    #[serde(default)]
    keys: KeyDist,
    scan_length: Option<SizeDist>,
    multiget_size: Option<u32>,
    rate: Option<Rate>,
    load: Option<bool>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationSpec {
    Seconds(f64),
    Text(String),
}

/// A workload read from a file, and what the reader noticed but did not use.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub workload: Workload,
    pub notes: Vec<String>,
}

/// A number and the unit written after it, as it stands (`30s` gives 30 and `s`, `5 ms` gives 5
/// and ` ms`, `-1ms` gives -1 and `ms`, so a negative is refused for what it is); `None` when
/// the number does not parse.
pub fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let sign = usize::from(t.starts_with(['-', '+']));
    let split = t[sign..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(t.len(), |i| i + sign);
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit))
}

/// Parse `30s`, `10m`, `1h`, `500ms` or plain seconds (the one duration syntax of every flag
/// and file), within [`bounds::TIME_SPAN`]; what the duration is for may bound it further
/// ([`bounds::DURATION`] for a measured phase).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (v, unit) = number_and_unit(text).ok_or_else(|| {
        format!(
            "`{}` is not a duration (e.g. 30s, 10m, 1h)",
            clip(text.trim())
        )
    })?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => v,
        "ms" => v / 1000.0,
        "m" | "min" | "mins" => v * 60.0,
        "h" | "hour" | "hours" => v * 3600.0,
        _ => {
            return Err(format!(
                "`{}`: unknown unit `{}` (use ms, s, m or h)",
                clip(text.trim()),
                clip(unit.trim())
            ));
        }
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("`{}` must be positive", clip(text.trim())));
    }
    bounds::TIME_SPAN.check_duration(secs).map_err(|_| {
        format!(
            "`{}` is too long: at most {} s (about 115 days)",
            clip(text.trim()),
            bounds::TIME_SPAN.max
        )
    })
}

/// A workload file as `workload analyze` and `workload from-db` write it: what it was made
/// from, as comments, then the workload.
pub struct Generated<'a> {
    /// Comment lines (text from outside, such as a path, is escaped: it cannot end a comment).
    pub comments: Vec<String>,
    /// The workload's name (any text: it is escaped).
    pub name: &'a str,
    /// Keys in the key space (clamped into `num`'s bounds).
    pub num: u64,
    /// Key size in bytes (clamped into `key_size`'s bounds).
    pub key_size: u64,
    /// Value size in bytes (clamped into `value_size`'s bounds).
    pub value_size: u64,
    /// Operation counts (or any weights): written as they are, or as percentages when a count is
    /// past what a file may hold.
    pub ops: &'a OpWeights,
    /// Key popularity.
    pub keys: &'a KeyDist,
}

/// The `[ops]` table in the order of [`OpWeights`], zero weights left out.
struct Shares(Vec<(&'static str, f64)>);

impl serde::Serialize for Shares {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct GeneratedFile<'a> {
    name: &'a str,
    num: u64,
    key_size: u64,
    value_size: u64,
    ops: Shares,
    keys: &'a KeyDist,
}

/// Text made safe for one comment line: control characters escaped (a newline in a path would
/// end the comment and start a key), clipped to 400 characters.
pub fn comment_text(text: &str) -> String {
    let escaped: String = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    clip_message(&escaped)
}

/// `v` rounded to 4 significant digits (a percentage such as 83.33).
fn round4(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(3 - v.log10().floor() as i32);
    (v * scale).round() / scale
}

/// Render a generated workload file with the toml crate's serializer, so any name is escaped
/// (a name holding a newline or a `"` once injected keys or made a file `workload check`
/// refused) and every number is clamped into the bounds `workload check` reads back with.
pub fn render_generated(g: &Generated) -> Result<String, String> {
    // The counts as they are when a file may hold them, else as percentages (a count of 2^64
    // is past the weights' bound, a share is not).
    let fits = g
        .ops
        .array()
        .iter()
        .all(|(_, w)| bounds::OP_WEIGHT.check(*w).is_ok());
    let shares: Vec<(&'static str, f64)> = if fits {
        g.ops.array().to_vec()
    } else {
        g.ops
            .shares()
            .into_iter()
            .map(|(k, share)| (k, round4(share * 100.0)))
            .collect()
    };
    let shares: Vec<(&'static str, f64)> = shares.into_iter().filter(|(_, w)| *w > 0.0).collect();
    let file = GeneratedFile {
        name: g.name,
        num: g.num.clamp(bounds::NUM.min, bounds::NUM.max),
        key_size: g.key_size.clamp(bounds::KEY_SIZE.min, bounds::KEY_SIZE.max),
        value_size: g
            .value_size
            .clamp(bounds::VALUE_SIZE.min, bounds::VALUE_SIZE.max),
        ops: if shares.is_empty() {
            Shares(vec![("get", 50.0), ("put", 50.0)])
        } else {
            Shares(shares)
        },
        keys: g.keys,
    };
    let body = toml::to_string(&file).map_err(|e| format!("writing the workload file: {e}"))?;
    let mut out = String::new();
    for c in &g.comments {
        for line in c.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// A duration as a person reads it, in the syntax [`parse_duration`] takes: `250 ms`, `1.5 s`,
/// `300 s` (a 1 ms timeout was once reported as "within 0 s").
pub fn human_duration(d: Duration) -> String {
    let trim = |v: f64| {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{} s", trim(secs))
    } else if d >= Duration::from_millis(1) {
        format!("{} ms", trim(secs * 1e3))
    } else {
        format!("{} us", trim(secs * 1e6))
    }
}

/// Whether `text` (a `--workload` argument) names a file rather than a workload.
pub fn looks_like_file(text: &str) -> bool {
    let p = Path::new(text);
    text.contains('/')
        || text.contains('\\')
        || matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("toml" | "json" | "properties")
        )
        || (p.is_file() && text.parse::<Kind>().is_err())
}

/// What `--workload` names: a db_bench / YCSB workload, a workload file, or a trace to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Named(Kind),
    File(std::path::PathBuf),
    Trace(std::path::PathBuf),
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Source, String> {
        if let Some(path) = s.strip_prefix("trace:") {
            if path.is_empty() {
                return Err("trace: needs a file (trace:FILE)".into());
            }
            return Ok(Source::Trace(path.into()));
        }
        if looks_like_file(s) {
            return Ok(Source::File(s.into()));
        }
        s.parse::<Kind>().map(Source::Named).map_err(|e| {
            format!(
                "{e}; or a workload file (.toml, .json, YCSB properties: see docs/workloads) or \
                 trace:FILE"
            )
        })
    }
}

impl Source {
    /// A short name for folders and reports: the workload's name or the file's stem.
    pub fn label(&self) -> String {
        let stem = |p: &Path| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("workload")
                .to_string()
        };
        match self {
            Source::Named(k) => k.name().to_string(),
            Source::File(p) => stem(p),
            Source::Trace(p) => format!("trace-{}", stem(p)),
        }
    }

    /// Whether sizes come from the file or trace (flags then override only when given).
    pub fn sized_by_itself(&self) -> bool {
        !matches!(self, Source::Named(_))
    }

    /// The workload, with what the reader noticed but did not use; `speed` for traces.
    pub fn load(&self, speed: f64) -> Result<Loaded, String> {
        match self {
            Source::Named(k) => Ok(Loaded {
                workload: Workload::new(*k),
                notes: Vec::new(),
            }),
            Source::File(p) => load(p),
            Source::Trace(p) => Ok(Loaded {
                workload: Workload::from_trace(p, speed)?,
                notes: Vec::new(),
            }),
        }
    }
}

/// Read a workload file (a regular file of at most [`crate::input::WORKLOAD_FILE_MAX`] bytes):
/// `.json` as JSON, `.toml` as TOML, anything else as a YCSB property file when it sets YCSB's
/// properties, else as TOML.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = crate::input::read_text(path, "workload file", crate::input::WORKLOAD_FILE_MAX)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload")
        .to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let at = |e: String| format!("workload file {}: {e}", path.display());
    match ext {
        "json" => parse_json(&text, &stem).map_err(at),
        "toml" => parse_toml(&text, &stem).map_err(at),
        _ if is_ycsb(&text) => parse_ycsb(&text, &stem).map_err(at),
        _ => parse_toml(&text, &stem).map_err(at),
    }
}

/// Parse the TOML format (`stem` names the workload when the file does not).
pub fn parse_toml(text: &str, stem: &str) -> Result<Loaded, String> {
    let spec: FileSpec = toml::from_str(text).map_err(|e| toml_error(&e, text))?;
    build(spec, stem)
}

/// A TOML error in a few lines whatever the input: where, what (clipped: the message may quote
/// the input), and the line clipped around the column (toml's own message echoes the whole
/// line, once 150 MB of it).
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let what = clip_message(e.message().trim());
    match e.span() {
        Some(span) => {
            let (line, col, shown) = excerpt(text, span.start);
            format!("TOML error at line {line}, column {col}: {what}\n{shown}")
        }
        None => format!("TOML error: {what}"),
    }
}

/// Parse the JSON format.
pub fn parse_json(text: &str, stem: &str) -> Result<Loaded, String> {
    let spec: FileSpec = serde_json::from_str(text).map_err(|e| {
        // serde_json ends its message with the place; the message itself may quote the input.
        let full = e.to_string();
        let place = format!(" at line {} column {}", e.line(), e.column());
        let what = full.strip_suffix(&place).unwrap_or(&full);
        format!(
            "JSON error at line {}, column {}: {}",
            e.line(),
            e.column(),
            clip_message(what)
        )
    })?;
    build(spec, stem)
}

/// The workload a TOML / JSON file describes; every number is checked against the same
/// bounds as the flag that sets it ([`crate::bounds`]).
fn build(spec: FileSpec, stem: &str) -> Result<Loaded, String> {
    let mut w = Workload::new(Kind::Custom);
    if let Some(n) = spec.num {
        w.num = bounds::NUM.check(n)?;
    }
    if let Some(t) = spec.threads {
        w.threads = bounds::THREADS.check_as(t as u64)?;
    }
    if spec.ops_per_thread.is_some() && spec.duration.is_some() {
        return Err("give ops_per_thread or duration, not both".into());
    }
    w.ops = match spec.ops_per_thread {
        Some(n) => Some(bounds::OPS.named("ops_per_thread").check(n)?),
        None => None,
    };
    w.duration = match spec.duration {
        None => None,
        Some(DurationSpec::Seconds(s)) => Some(bounds::DURATION.check_duration(s)?),
        Some(DurationSpec::Text(t)) => Some(
            parse_duration(&t)
                .and_then(|d| bounds::DURATION.check_parsed(d))
                .map_err(|e| format!("duration: {e}"))?,
        ),
    };
    if let Some(c) = spec.compression_ratio {
        w.compression_ratio = c;
    }
    if let Some(s) = spec.seed {
        w.seed = s;
    }
    let name = spec.name.unwrap_or_else(|| stem.to_string());
    let mut mix = Mix::new(&name, spec.ops);
    mix.keys = spec.keys;
    mix.load = spec.load.unwrap_or(true);
    mix.rate = spec.rate;
    if let Some(m) = spec.multiget_size {
        mix.multiget_size = m;
    }
    if let Some(s) = spec.scan_length {
        mix.scan_length = s;
    }
    match spec.key_size {
        Some(SizeDist::Fixed { size }) => w.key_size = size as usize,
        Some(d) => {
            w.key_size = d.max() as usize;
            mix.key_size = Some(d);
        }
        None => {}
    }
    match spec.value_size {
        Some(SizeDist::Fixed { size }) => w.value_size = size as usize,
        Some(d) => {
            d.validate("value_size", 0, super::mix::MAX_VALUE)?;
            // The workload's nominal value size (data-size estimates, MB/s) is the mean.
            w.value_size = mean_size(&d) as usize;
            mix.value_size = Some(d);
        }
        None => {}
    }
    w.mix = Some(Box::new(mix));
    w.validate()?;
    Ok(Loaded {
        workload: w,
        notes: Vec::new(),
    })
}

/// YCSB's CoreWorkload properties lsmtune reads.
const YCSB_USED: &[&str] = &[
    "workload",
    "recordcount",
    "operationcount",
    "threadcount",
    "readproportion",
    "updateproportion",
    "insertproportion",
    "scanproportion",
    "readmodifywriteproportion",
    "requestdistribution",
    "zipfianconstant",
    "hotspotdatafraction",
    "hotspotopnfraction",
    "maxscanlength",
    "minscanlength",
    "scanlengthdistribution",
    "fieldcount",
    "fieldlength",
    "minfieldlength",
    "fieldlengthdistribution",
    "maxexecutiontime",
];

fn is_ycsb(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        [
            "recordcount",
            "operationcount",
            "readproportion",
            "workload=",
        ]
        .iter()
        .any(|k| l.starts_with(k))
    })
}

/// Parse a YCSB property file (`key=value` lines, `#` comments) with CoreWorkload's defaults.
pub fn parse_ycsb(text: &str, stem: &str) -> Result<Loaded, String> {
    let mut props = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(format!("line {}: `{}` is not key=value", i + 1, clip(line)));
        };
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    let get = |k: &str| props.get(k).map(String::as_str);
    let num = |k: &str, default: f64| -> Result<f64, String> {
        match get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{k}={} is not a number >= 0", clip(v))),
        }
    };
    if let Some(class) = get("workload")
        && !class.ends_with("CoreWorkload")
    {
        return Err(format!(
            "workload={}: only YCSB's CoreWorkload is understood",
            clip(class)
        ));
    }
    let mut notes = Vec::new();
    let ignored: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| !YCSB_USED.contains(k))
        .collect();
    if !ignored.is_empty() {
        notes.push(format!(
            "YCSB properties not used: {}",
            clip_message(&ignored.join(", "))
        ));
    }
    // Every count is checked as the float it was written as, before it becomes an integer
    // (recordcount=1e300 once saturated to 2^64-1), against the bounds of the matching flag.
    let whole =
        |b: bounds::Whole, k: &'static str, default: f64| b.named(k).check_f64(num(k, default)?);
    let mut w = Workload::new(Kind::Custom);
    w.num = whole(bounds::NUM, "recordcount", 1000.0)?;
    w.threads = whole(bounds::THREADS, "threadcount", 1.0)? as usize;
    // YCSB keys are "user" + a number: about 23 bytes.
    w.key_size = 23;
    // 0 operations is YCSB's "until maxexecutiontime".
    let ops = whole(
        bounds::Whole {
            min: 0,
            ..bounds::OPS
        },
        "operationcount",
        1000.0,
    )?;
    w.ops = Some(ops.div_ceil(w.threads as u64).max(1));
    // YCSB's 0 (the default) means no limit; anything else is the measured phase's duration,
    // checked as `duration` is (inf once panicked turning into a Duration; NaN and negative
    // values were silently ignored).
    if let Some(t) = get("maxexecutiontime") {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("maxexecutiontime={} is not a number of seconds", clip(t)))?;
        if secs != 0.0 {
            w.duration = Some(
                bounds::DURATION
                    .named("maxexecutiontime")
                    .check_duration(secs)?,
            );
            w.ops = None;
        }
    }
    let weights = OpWeights {
        get: num("readproportion", 0.95)?,
        put: num("updateproportion", 0.05)?,
        insert: num("insertproportion", 0.0)?,
        seek: num("scanproportion", 0.0)?,
        rmw: num("readmodifywriteproportion", 0.0)?,
        ..OpWeights::default()
    };
    let mut mix = Mix::new(stem, weights);
    let theta = num("zipfianconstant", 0.99)?;
    mix.keys = match get("requestdistribution").unwrap_or("uniform") {
        "uniform" => KeyDist::Uniform,
        "zipfian" => KeyDist::Zipfian { theta },
        "latest" => KeyDist::Latest { theta },
        "hotspot" => KeyDist::Hotspot {
            hot_keys: num("hotspotdatafraction", 0.2)?,
            hot_ops: num("hotspotopnfraction", 0.8)?,
        },
        other => {
            return Err(format!(
                "requestdistribution={}: one of uniform, zipfian, latest, hotspot",
                clip(other)
            ));
        }
    };
    let (min_scan, max_scan) = (
        whole(bounds::SCAN_LENGTH, "minscanlength", 1.0)?,
        whole(bounds::SCAN_LENGTH, "maxscanlength", 1000.0)?,
    );
    mix.scan_length = match get("scanlengthdistribution").unwrap_or("uniform") {
        "uniform" => SizeDist::Uniform {
            min: min_scan,
            max: max_scan,
        },
        "zipfian" => SizeDist::Zipfian {
            min: min_scan,
            max: max_scan,
        },
        other => {
            return Err(format!(
                "scanlengthdistribution={}: one of uniform, zipfian",
                clip(other)
            ));
        }
    };
    // A record is `fieldcount` fields of `fieldlength` bytes, stored as one value: each and
    // their product within --value-size's bound (2^32 x 2^32 once wrapped to 0-byte values).
    let fields = whole(bounds::FIELD_COUNT, "fieldcount", 10.0)?;
    let (min_len, len) = (
        whole(bounds::VALUE_SIZE, "minfieldlength", 1.0)?,
        whole(bounds::VALUE_SIZE, "fieldlength", 100.0)?,
    );
    let record = |l: u64| {
        let b = bounds::VALUE_SIZE.named("fieldcount x fieldlength");
        fields
            .checked_mul(l)
            .ok_or_else(|| format!("fieldcount x fieldlength overflows ({fields} x {l})"))
            .and_then(|v| b.check(v))
    };
    let value = match get("fieldlengthdistribution").unwrap_or("constant") {
        "constant" => SizeDist::Fixed { size: record(len)? },
        "uniform" => SizeDist::Uniform {
            min: record(min_len)?,
            max: record(len)?,
        },
        "zipfian" => SizeDist::Zipfian {
            min: record(min_len)?,
            max: record(len)?,
        },
        other => {
            return Err(format!(
                "fieldlengthdistribution={}: one of constant, uniform, zipfian",
                clip(other)
            ));
        }
    };
    match value {
        SizeDist::Fixed { size } => w.value_size = size as usize,
        d => {
            d.validate("field lengths", 0, super::mix::MAX_VALUE)?;
            w.value_size = mean_size(&d) as usize;
            mix.value_size = Some(d);
        }
    }
    w.mix = Some(Box::new(mix));
    w.validate()?;
    Ok(Loaded { workload: w, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
name = "feed-service"
num = 100000
threads = 2
duration = "30s"
key_size = 16
value_size = { dist = "pareto", k = 0.2615, sigma = 25.45, min = 10, max = 1024 }
rate = 20000
[ops]
get = 80
put = 15
seek = 5
[keys]
dist = "zipfian"
theta = 0.9
"#;
        let l = parse_toml(text, "x").unwrap();
        let w = &l.workload;
        assert_eq!(w.kind, Kind::Custom);
        assert_eq!(w.label(), "feed-service");
        assert_eq!((w.num, w.threads, w.key_size), (100_000, 2, 16));
        assert_eq!(w.duration, Some(Duration::from_secs(30)));
        let m = w.mix.as_ref().unwrap();
        assert_eq!(m.keys, KeyDist::Zipfian { theta: 0.9 });
        assert_eq!(m.rate, Some(Rate::Fixed(20000.0)));
        assert!((20..60).contains(&w.value_size), "{}", w.value_size);
        // JSON says the same.
        let json = r#"{"num": 100000, "ops": {"get": 1}, "keys": {"dist": "hotspot", "hot_keys": 0.2, "hot_ops": 0.8}}"#;
        let j = parse_json(json, "svc").unwrap();
        assert_eq!(j.workload.label(), "svc");
    }

    #[test]
    fn unknown_fields_and_impossible_values_are_named() {
        let e = parse_toml("[ops]\ngett = 1\n", "x").unwrap_err();
        assert!(e.contains("gett"), "{e}");
        let e = parse_toml("colour = 1\n[ops]\nget = 1\n", "x").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse_toml(
            "[ops]\nget = 1\n[keys]\ndist = \"zipfian\"\ntheta = 2\n",
            "x",
        )
        .unwrap_err();
        assert!(e.contains("theta"), "{e}");
        let e = parse_toml(
            "value_size = { dist = \"uniform\", min = 9, max = 3 }\n[ops]\nput = 1\n",
            "x",
        )
        .unwrap_err();
        assert!(e.contains("value_size"), "{e}");
        let e = parse_toml("[ops]\n", "x").unwrap_err();
        assert!(e.contains("ops"), "{e}");
        let e = parse_toml("threads = 0\n[ops]\nget = 1\n", "x").unwrap_err();
        assert!(e.contains("threads"), "{e}");
        let e = parse_toml("duration = \"soon\"\n[ops]\nget = 1\n", "x").unwrap_err();
        assert!(e.contains("duration"), "{e}");
        let e = parse_json("{\"ops\": {\"get\": -1}}", "x").unwrap_err();
        assert!(e.contains("ops.get"), "{e}");
    }

    #[test]
    fn ycsb_property_files_read_with_corewokloads_defaults() {
        let a = "# Yahoo! Cloud System Benchmark\nrecordcount=1000\noperationcount=1000\nworkload=site.ycsb.workloads.CoreWorkload\n\nreadallfields=true\n\nreadproportion=0.5\nupdateproportion=0.5\nscanproportion=0\ninsertproportion=0\n\nrequestdistribution=zipfian\n";
        assert!(is_ycsb(a));
        let l = parse_ycsb(a, "workloada").unwrap();
        let w = &l.workload;
        assert_eq!((w.num, w.ops, w.value_size), (1000, Some(1000), 1000));
        let m = w.mix.as_ref().unwrap();
        assert_eq!((m.ops.get, m.ops.put), (0.5, 0.5));
        assert_eq!(m.keys, KeyDist::Zipfian { theta: 0.99 });
        assert!(l.notes[0].contains("readallfields"), "{:?}", l.notes);
        let e = parsed_err("recordcount=abc\n");
        assert!(e.contains("recordcount"), "{e}");
        let e = parsed_err("recordcount=10\nrequestdistribution=pareto\n");
        assert!(e.contains("requestdistribution"), "{e}");
        let e = parsed_err("recordcount=10\nworkload=site.ycsb.workloads.RestWorkload\n");
        assert!(e.contains("CoreWorkload"), "{e}");
    }

    #[test]
    fn an_error_never_echoes_a_long_line_or_deep_nesting_whole() {
        let long = "x".repeat(5_000_000);
        let cases = [
            parse_toml(&format!("name = \"{long}\" oops\n[ops]\nget = 1\n"), "w").unwrap_err(),
            parse_toml(&format!("{long} = 1\n[ops]\nget = 1\n"), "w").unwrap_err(),
            parse_toml(&format!("num = \"{long}\"\n[ops]\nget = 1\n"), "w").unwrap_err(),
            parse_toml(&format!("a = {}", "[".repeat(200_000)), "w").unwrap_err(),
            parse_json(
                &format!("{{\"num\": \"{long}\", \"ops\": {{\"get\": 1}}}}"),
                "w",
            )
            .unwrap_err(),
            parse_json(&format!("{{\"{long}\": 1}}"), "w").unwrap_err(),
            parse_json(&"[".repeat(200_000), "w").unwrap_err(),
            parse_ycsb(&format!("recordcount=1\n{long}\n"), "w").unwrap_err(),
            parse_ycsb(&format!("recordcount={long}\n"), "w").unwrap_err(),
            parse_ycsb(&format!("recordcount=1\nrequestdistribution={long}\n"), "w").unwrap_err(),
            parse_toml(&format!("duration = \"{long}\"\n[ops]\nget = 1\n"), "w").unwrap_err(),
        ];
        for (i, e) in cases.iter().enumerate() {
            assert!(e.len() < 1500, "case {i}: {} bytes: {}", e.len(), &e[..300]);
        }
        // Still says where and what.
        let e = &cases[2];
        assert!(e.contains("line 1, column 7") && e.contains("num"), "{e}");
        let e = parse_toml("[ops]\ngett = 1\n", "x").unwrap_err();
        assert!(
            e.contains("gett") && e.contains("line 2") && e.contains("`insert`"),
            "{e}"
        );
    }

    #[test]
    fn numbers_in_files_meet_the_bounds_of_their_flags() {
        let toml = |head: &str| parse_toml(&format!("{head}\n[ops]\nget = 1\n"), "w").unwrap_err();
        for (e, says) in [
            (
                parse_json(r#"{"num": 18446744073709551615, "ops": {"get": 1}}"#, "w").unwrap_err(),
                "num must be 1 to 1000000000000",
            ),
            (toml("threads = 5000"), "threads must be 1 to 1024"),
            (
                toml("ops_per_thread = 18446744073709551615"),
                "ops_per_thread must be",
            ),
            (toml("duration = \"9999999h\""), "too long"),
            (
                toml("duration = \"0.0000000001s\""),
                "duration must be 1 to",
            ),
            (toml("duration = 1e30"), "duration must be 1 to"),
            (
                parse_toml("[ops]\nget = 1e308\nput = 1e308\n", "w").unwrap_err(),
                "ops.get must be 0 to",
            ),
            (toml("rate = 1e300"), "rate must be above 0"),
            (
                parsed_err("recordcount=1e300\n"),
                "recordcount must be 1 to",
            ),
            (
                parsed_err("recordcount=10\nthreadcount=1e9\n"),
                "threadcount must be",
            ),
            (
                parsed_err("recordcount=10\nfieldcount=4294967296\nfieldlength=4294967296\n"),
                "fieldcount must be",
            ),
            (
                parsed_err("recordcount=10\nfieldcount=65536\nfieldlength=4294967296\n"),
                "fieldlength must be",
            ),
            (
                parsed_err("recordcount=10\nfieldcount=65536\nfieldlength=65536\n"),
                "fieldcount x fieldlength must be",
            ),
            (
                parsed_err("recordcount=10\nmaxscanlength=1e12\n"),
                "maxscanlength",
            ),
            (
                parsed_err("recordcount=10\nmaxexecutiontime=inf\n"),
                "maxexecutiontime must be 1 to",
            ),
            (
                parsed_err("recordcount=10\nmaxexecutiontime=1e30\n"),
                "maxexecutiontime must be 1 to",
            ),
            (
                parsed_err("recordcount=10\nmaxexecutiontime=NaN\n"),
                "maxexecutiontime must be 1 to",
            ),
            (
                parsed_err("recordcount=10\nmaxexecutiontime=-5\n"),
                "maxexecutiontime must be 1 to",
            ),
        ] {
            assert!(e.contains(says), "want `{says}`: {e}");
        }
    }

    #[test]
    fn ycsb_maxexecutiontime_is_the_duration_or_none() {
        let w = |t: &str| {
            parse_ycsb(&format!("recordcount=10\n{t}"), "w")
                .unwrap()
                .workload
        };
        assert_eq!(
            w("maxexecutiontime=30\n").duration,
            Some(Duration::from_secs(30))
        );
        assert_eq!(w("maxexecutiontime=30\n").ops, None);
        let none = w("maxexecutiontime=0\n");
        assert_eq!((none.duration, none.ops), (None, Some(1000)));
    }

    #[test]
    fn a_generated_file_reads_back_whatever_its_name_and_numbers() {
        let ops = OpWeights {
            get: u64::MAX as f64,
            put: 1.0,
            ..OpWeights::default()
        };
        let name = "svc\"\nthreads = 64\nload = false\n[ops]\nput = 1";
        let text = render_generated(&Generated {
            comments: vec![format!("from {}", comment_text("/data/a\nthreads = 9"))],
            name,
            num: u64::MAX,
            key_size: 0,
            value_size: u64::MAX,
            ops: &ops,
            keys: &KeyDist::Zipfian { theta: 0.9 },
        })
        .unwrap();
        let w = parse_toml(&text, "x")
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .workload;
        assert_eq!(w.label(), name);
        assert_eq!((w.threads, w.num), (1, bounds::NUM.max));
        assert_eq!((w.key_size, w.value_size), (8, 64 << 20));
        let m = w.mix.unwrap();
        assert!(
            m.load && m.ops.get == 100.0 && m.ops.put > 0.0,
            "{:?}",
            m.ops
        );
        assert_eq!(m.keys, KeyDist::Zipfian { theta: 0.9 });
        assert!(text.starts_with("# from /data/a\\nthreads = 9\n"), "{text}");
    }

    fn parsed_err(text: &str) -> String {
        parse_ycsb(text, "w").unwrap_err()
    }

    #[test]
    fn every_example_in_docs_workloads_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/workloads");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let l = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(l.workload.kind, Kind::Custom, "{}", path.display());
            assert!(l.notes.is_empty(), "{}: {:?}", path.display(), l.notes);
            n += 1;
        }
        assert!(n >= 4, "{n} examples");
    }

    #[test]
    fn workload_arguments_parse_into_sources() {
        assert_eq!(
            "readrandom".parse::<Source>(),
            Ok(Source::Named(Kind::ReadRandom))
        );
        assert_eq!(
            "trace:/t/a.trace".parse::<Source>(),
            Ok(Source::Trace("/t/a.trace".into()))
        );
        assert_eq!(
            "docs/workloads/x.toml".parse::<Source>(),
            Ok(Source::File("docs/workloads/x.toml".into()))
        );
        assert!(
            "readsome"
                .parse::<Source>()
                .unwrap_err()
                .contains("trace:FILE")
        );
        assert_eq!(Source::Trace("/t/a.trace".into()).label(), "trace-a");
    }

    #[test]
    fn durations_read_as_they_are_written() {
        assert_eq!(human_duration(Duration::from_millis(1)), "1 ms");
        assert_eq!(human_duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(human_duration(Duration::from_micros(20)), "20 us");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(300)), "300 s");
        for d in ["1 ms", "1.5 s", "300 s"] {
            assert_eq!(human_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn file_arguments_are_told_from_names() {
        assert!(looks_like_file("workloads/feed.toml"));
        assert!(looks_like_file("x.json"));
        assert!(!looks_like_file("readrandom"));
        assert!(!looks_like_file("mixgraph"));
    }
}
