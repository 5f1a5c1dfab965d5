//! `journal.jsonl` in the output folder: one JSON record per line, appended and flushed to disk
//! as each step completes (the start with the baseline, then every iteration, then the end), so
//! a killed run loses nothing finished and `tune --resume` can rebuild its state exactly. The
//! journal is never opened through a symbolic link ([`crate::runfolder`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::bench::Workload;
pub use crate::bench::sample::Sample;
use crate::bench::stats::Comparison;
use crate::options::calibrate::{Correction, Rule};
use crate::sysinfo::Facts;

pub const FILE: &str = "journal.jsonl";

/// What `tune` was asked to do; a resumed run continues with the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub workload: Workload,
    /// The starting OPTIONS file given by the user (None: RocksDB's defaults).
    pub base_file: Option<PathBuf>,
    pub iterations: usize,
    pub time_budget_secs: Option<f64>,
    pub repeats: usize,
    pub confirm_repeats: usize,
    pub min_effect: f64,
    pub patience: usize,
    pub memory_budget: u64,
    pub allow_unsafe: bool,
    pub max_changes: usize,
    pub reasoning_chars: usize,
    /// How the proposer was asked for: `auto`, `local`, `openai`, `ollama`, `lmstudio`, `expert`,
    /// `search`, `random`.
    pub backend: String,
    pub model: Option<String>,
    pub seed: u64,
    /// How much help a model proposer gets (`--hints`).
    #[serde(default)]
    pub hints: HintLevel,
    /// Replies a model samples per turn (`--samples`).
    #[serde(default = "one")]
    pub samples: usize,
    /// Step further after a kept numeric change (`--refine`).
    #[serde(default = "yes")]
    pub refine: bool,
    /// What the tune optimizes and must not break (`--objective`, `--max-p99`, ...);
    /// throughput with no constraints in journals written before it existed.
    #[serde(default)]
    pub goal: crate::tune::objective::Goal,
    /// Most interleaved rounds a promising candidate gets before its verdict (`--max-rounds`;
    /// 0 in journals before the sequential design: `repeats + confirm_repeats`).
    #[serde(default)]
    pub max_rounds: usize,
    /// A value search refines a model's kept choices (`--search`; off in journals before it).
    #[serde(default)]
    pub search: bool,
    /// The optimizer of the value search and of `--backend search` (`--search-method`).
    #[serde(default)]
    pub search_method: crate::tune::search::optimizer::Method,
}

fn yes() -> bool {
    true
}

impl Settings {
    /// The one check of a tune's settings, whether they come from flags (`tune`, `compare`) or
    /// from a journal being resumed (which anyone can edit): the flags' ranges, each error
    /// naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        self.workload.validate()?;
        let within = |flag: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("--{flag} must be {lo} to {hi} (not {v})"))
            }
        };
        within("iterations", self.iterations, 1, 10_000)?;
        if self.repeats < 2 {
            return Err(
                "--repeats must be at least 2 (a comparison needs two values per side)".into(),
            );
        }
        within("repeats", self.repeats, 2, 10_000)?;
        within("confirm", self.confirm_repeats, 0, 10_000)?;
        if !(self.min_effect.is_finite() && (0.0..=10.0).contains(&self.min_effect)) {
            return Err("--min-effect must be a number from 0 to 10".into());
        }
        if self.patience == 0 {
            return Err("--patience must be at least 1".into());
        }
        within("max-changes", self.max_changes, 1, 64)?;
        if self.max_rounds != 0 {
            // 0: a journal from before the sequential design.
            within("max-rounds", self.max_rounds, 2, 10_000)?;
        }
        within("samples", self.samples, 0, 32)?;
        if self.memory_budget == 0 {
            return Err("--memory-budget must be above 0".into());
        }
        if let Some(t) = self.time_budget_secs
            && !(t.is_finite() && t > 0.0)
        {
            return Err("--time-budget must be a positive duration".into());
        }
        if self.reasoning_chars == 0 {
            return Err("the reasoning length must be at least 1 character".into());
        }
        for c in &self.goal.constraints {
            c.validate()?;
        }
        Ok(())
    }
}

/// A journal's candidate file must be a plain file name under `candidates/` (what the loop
/// writes): a resume reads it, so a path out of the folder (`../../etc/shadow`) is refused.
fn check_candidate_file(file: &str) -> Result<(), String> {
    use std::path::Component;
    let parts: Vec<Component> = Path::new(file).components().collect();
    match parts.as_slice() {
        [Component::Normal(dir), Component::Normal(_)] if *dir == "candidates" => Ok(()),
        _ => Err(format!(
            "candidate_file `{}` is not a file under candidates/",
            crate::options::ini::clip(file)
        )),
    }
}

/// What a resume would trust in a record: settings in the flags' ranges, candidate files in
/// `candidates/`.
fn check_record(r: &Record) -> Result<(), String> {
    match r {
        Record::Start { settings, .. } => settings
            .validate()
            .map_err(|e| format!("its settings are not valid: {e}")),
        Record::Iteration(it) => it
            .candidate_file
            .as_deref()
            .map_or(Ok(()), check_candidate_file),
        _ => Ok(()),
    }
}

/// What the model (if any) cost for one proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmUse {
    pub backend: String,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    /// Wall time of the whole call, and the model's own prefill / decode split (local models;
    /// 0 for endpoints).
    pub seconds: f64,
    #[serde(default)]
    pub prefill_seconds: f64,
    #[serde(default)]
    pub decode_seconds: f64,
    pub finish: String,
    pub notices: Vec<String>,
    /// Replies sampled in this call, and prompt tokens actually run through the model (not
    /// taken from the KV cache) over all of them.
    #[serde(default = "one")]
    pub samples: usize,
    #[serde(default)]
    pub prefilled_tokens: usize,
}

fn one() -> usize {
    1
}

/// What became of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Significantly better than the best so far (confirmed): the new best.
    Accepted,
    /// Measured, not significantly better.
    Rejected,
    /// Calibration left nothing to change.
    NoChange,
    /// The proposer failed (model error) or the candidate could not be measured.
    Failed,
    /// Every reply repeated a configuration already measured (even when asked again): nothing
    /// was benchmarked.
    Repeat,
}

/// A calibrator correction in the journal: the typed record, or the text older journals hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JournaledCorrection {
    Typed(Correction),
    Text(String),
}

impl JournaledCorrection {
    /// The rule, when the record is typed.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            JournaledCorrection::Typed(c) => Some(c.rule),
            JournaledCorrection::Text(_) => None,
        }
    }
}

impl std::fmt::Display for JournaledCorrection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournaledCorrection::Typed(c) => c.fmt(f),
            JournaledCorrection::Text(t) => f.write_str(t),
        }
    }
}

/// One iteration, as completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iteration {
    pub iteration: usize,
    pub proposer: String,
    /// The user message sent (LLM proposers), and the raw reply.
    pub prompt: Option<String>,
    pub reply: Option<String>,
    pub llm: Option<LlmUse>,
    pub reasoning: Option<String>,
    /// Entries the proposal carried before calibration.
    pub proposed: usize,
    /// Entries that needed a key/type/range/safety correction (invalid before calibration).
    pub invalid: usize,
    /// Calibrated changes against the best configuration: key -> new value.
    pub changes: BTreeMap<String, String>,
    /// The values those options had before (in the best configuration): key -> old value.
    #[serde(default)]
    pub changes_from: BTreeMap<String, String>,
    /// Calibrator corrections as records (rule, key, from, to, reason); journals written before
    /// they were typed hold them as text (`[rule] key: from -> to: reason`), read back as such.
    pub corrections: Vec<JournaledCorrection>,
    /// The candidate OPTIONS file, relative to the output folder.
    pub candidate_file: Option<String>,
    /// The best configuration re-measured alongside the candidate (interleaved).
    pub best: Option<Sample>,
    pub candidate: Option<Sample>,
    pub comparison: Option<Comparison>,
    /// Each constraint of the goal checked on the candidate's runs (none without constraints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<(
        crate::tune::objective::Constraint,
        crate::tune::objective::Check,
    )>,
    pub decision: Decision,
    /// Why it failed, in words the model can act on.
    pub failure: Option<String>,
    pub bench_seconds: f64,
    pub llm_seconds: f64,
    /// Seconds since the tune started, when this iteration ended.
    pub elapsed: f64,
    /// Mean ops/s of the best configuration after this iteration (as measured this iteration).
    pub best_ops: f64,
    /// Events worth recording (a fallback proposer taking over, which reply was picked).
    #[serde(default)]
    pub notes: Vec<String>,
    /// How the proposer's replies fared before one was picked.
    #[serde(default)]
    pub replies: ReplyStats,
    /// Interleaved rounds the candidate was measured in (journals before the sequential design:
    /// 0).
    #[serde(default)]
    pub rounds: usize,
    /// Why the candidate was rejected before or at its last look, when the sequential design
    /// stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<crate::bench::sequential::Stop>,
    /// What failed, when the decision is `failed` (journals before it: read from the message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_kind: Option<FailureKind>,
    /// What the proposal grammar cost over every reply of the iteration (masks, their time per
    /// token, forced tokens); None when no reply was decoded under it (journals before it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<crate::tune::ask::MaskStats>,
}

/// What failed in an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The proposer gave nothing (a model that cannot load, an endpoint that never answers).
    Proposer,
    /// The candidate could not be measured (its runs failed).
    Candidate,
}

impl Iteration {
    /// Whether the proposer failed in this iteration (older journals say so only in the
    /// failure message's first words).
    pub fn proposer_failed(&self) -> bool {
        match self.failure_kind {
            Some(k) => k == FailureKind::Proposer,
            None => self
                .failure
                .as_deref()
                .is_some_and(|f| f.starts_with(crate::tune::PROPOSER_FAILED)),
        }
    }
}

/// Counts over every reply a proposer gave in one iteration (a model samples several, and is
/// asked again when all of them repeat a measured configuration): what the compare table's
/// invalid, no-op and repeat rates are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplyStats {
    /// Replies received.
    pub replies: usize,
    /// Times the proposer was asked (1, or more after repeats).
    pub asks: usize,
    /// Entries (option changes) in all replies, before calibration.
    pub entries: usize,
    /// Entries that needed a key, type, range or safety correction.
    pub invalid: usize,
    /// Entries that set an option to the value it already had.
    pub noop: usize,
    /// Replies whose calibrated configuration had been measured already.
    pub repeated: usize,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Start {
        version: String,
        settings: Box<Settings>,
        facts: Facts,
        rocksdb: String,
        /// Corrections made to the starting file so RocksDB opens it.
        base_notes: Vec<String>,
        baseline: Sample,
        proposer: String,
        /// Why this proposer (backend selection), in one line.
        proposer_reason: String,
        /// The warm start: the nearest similar past tunes read from the history (None: no
        /// history was read, `--no-history`, or a journal from before the history).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        past: Option<crate::history::Warm>,
    },
    Iteration(Box<Iteration>),
    /// The run was stopped by a signal (Ctrl-C, SIGTERM) after this many whole iterations;
    /// `--resume` continues it. Informational: nothing is rebuilt from it.
    Interrupted {
        signal: String,
        iterations_done: usize,
    },
    End {
        reason: String,
        final_base: Sample,
        final_best: Sample,
        comparison: Option<Comparison>,
        /// True when the best was not confirmed against the start and the start was kept.
        kept_base: bool,
        elapsed: f64,
    },
}

/// Append one record and flush it to disk. A last line cut short by a kill or a full disk (it
/// was never acknowledged, and [`load`] ignores it) is cut off first, so the new record starts on
/// a line of its own; a cut line that is still a whole record (only its newline was lost) is kept
/// and ended. Errors name the file.
pub fn append(dir: &Path, record: &Record) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let path = dir.join(FILE);
    let named = |e: std::io::Error| anyhow::anyhow!("cannot append to {}: {e}", path.display());
    let mut f = crate::runfolder::open(
        &path,
        std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false),
    )
    .map_err(|e| anyhow::anyhow!("cannot append to the journal: {e:#}"))?;
    let len = f.seek(SeekFrom::End(0)).map_err(named)?;
    // No secret (an API key a server echoed, a URL's credentials) is ever stored.
    let mut value = serde_json::to_value(record)?;
    crate::http::redact_json(&mut value);
    let mut line = value.to_string();
    line.push('\n');
    if len > 0 {
        let mut bytes = Vec::with_capacity(len as usize);
        f.seek(SeekFrom::Start(0)).map_err(named)?;
        f.read_to_end(&mut bytes).map_err(named)?;
        if bytes.last() != Some(&b'\n') {
            let start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if serde_json::from_slice::<Record>(&bytes[start..]).is_ok() {
                line.insert(0, '\n');
            } else {
                f.set_len(start as u64).map_err(named)?;
            }
        }
        f.seek(SeekFrom::End(0)).map_err(named)?;
    }
    f.write_all(line.as_bytes()).map_err(named)?;
    f.sync_data().map_err(named)?;
    Ok(())
}

/// The first record of the journal in `dir` (a tune's start: its settings), reading only its
/// first line (never through a link).
pub fn first(dir: &Path) -> Result<Record> {
    use anyhow::Context;
    use std::io::BufRead;
    let path = dir.join(FILE);
    let file = crate::runfolder::open(&path, std::fs::OpenOptions::new().read(true))?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&line).map_err(|e| {
        anyhow::anyhow!(
            "{} line 1: {}",
            path.display(),
            crate::input::clip_message(&e.to_string())
        )
    })
}

/// Every complete record of a journal. A last line cut short by a kill is ignored (it was
/// never acknowledged; it may end inside a UTF-8 character); a damaged line elsewhere is an
/// error, and so is a record a resume must not trust (settings out of the flags' ranges, a
/// candidate file outside `candidates/`: [`Settings::validate`]), naming the line.
pub fn load(dir: &Path) -> Result<Vec<Record>> {
    let path = dir.join(FILE);
    let bytes = crate::runfolder::read(&path)?;
    let complete = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => {
                if let Err(e) = check_record(&r) {
                    bail!(
                        "{} line {}: {e} (was it edited? lsmtune wrote no such record)",
                        path.display(),
                        i + 1
                    );
                }
                out.push(r)
            }
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => bail!(
                "{} line {}: {}",
                path.display(),
                i + 1,
                crate::input::clip_message(&e.to_string())
            ),
        }
    }
    Ok(out)
}

/// What differs between a stored value (settings from a journal, what a baseline was measured
/// with) and what the command gives now, both as JSON: one `path: stored then, now now` line per
/// difference. Numbers equal to nine significant digits count as equal (a JSON round trip may
/// move a float by its last bit).
pub fn differences<T: Serialize>(stored: &T, now: &T) -> Vec<String> {
    use serde_json::Value;
    fn show(v: &Value) -> String {
        crate::options::ini::clip(&v.to_string())
    }
    fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
        match (a.as_u64(), b.as_u64(), a.as_f64(), b.as_f64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => a == b,
        }
    }
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        let at = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
                for k in keys {
                    let (p, q) = (x.get(k), y.get(k));
                    walk(
                        &at(k),
                        p.unwrap_or(&Value::Null),
                        q.unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), p, q, out);
                }
            }
            (Value::Number(x), Value::Number(y)) if same_number(x, y) => {}
            _ if a == b => {}
            _ => out.push(format!("{path}: {} then, {} now", show(a), show(b))),
        }
    }
    let (Ok(a), Ok(b)) = (serde_json::to_value(stored), serde_json::to_value(now)) else {
        return vec!["cannot be compared".into()];
    };
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    out
}

/// How much help a model gets besides the measurements (an ablation switch, recorded in the
/// journal and the compare table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HintLevel {
    /// Throughput and latency only, the options offered in a moving window of the catalog
    /// ([`rotation`]): what the model knows by itself.
    None,
    /// Plus what the measurements show, in plain words.
    Diagnostics,
    /// Plus tuning hints retrieved for the symptoms, and only the options that matter.
    #[default]
    Knowledge,
}

impl HintLevel {
    pub fn name(self) -> &'static str {
        match self {
            HintLevel::None => "none",
            HintLevel::Diagnostics => "diagnostics",
            HintLevel::Knowledge => "knowledge",
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal that is a link to another file is neither appended to (a resume would cut and
    /// extend the target) nor read.
    #[test]
    fn a_journal_linked_elsewhere_is_neither_read_nor_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.log");
        std::fs::write(&victim, "a line cut short").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(FILE)).unwrap();
        let record = Record::Interrupted {
            signal: "SIGINT".into(),
            iterations_done: 0,
        };
        let e = format!("{:#}", append(&out, &record).unwrap_err());
        assert!(e.contains("journal.jsonl is a symbolic link"), "{e}");
        let e = format!("{:#}", load(&out).unwrap_err());
        assert!(e.contains("journal.jsonl is a symbolic link"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "a line cut short"
        );
    }

    use super::fixtures::settings;

    /// An iteration journaled before mask statistics loads without them; one with them keeps
    /// them through a write and a read.
    #[test]
    fn mask_statistics_are_optional_in_an_iteration() {
        let mut v = serde_json::json!({
            "iteration": 1, "proposer": "m", "prompt": null, "reply": null, "llm": null,
            "reasoning": null, "proposed": 0, "invalid": 0, "changes": {},
            "corrections": [], "candidate_file": null, "best": null, "candidate": null,
            "comparison": null, "decision": "no_change", "failure": null,
            "bench_seconds": 0.0, "llm_seconds": 1.0, "elapsed": 1.0, "best_ops": 1.0
        });
        let old: Iteration = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(old.mask, None);
        assert!(!serde_json::to_string(&old).unwrap().contains("mask"));
        v["mask"] =
            serde_json::json!({"masks": 40, "p50_us": 12.5, "p99_us": 80.0, "forced_tokens": 9});
        let new: Iteration = serde_json::from_value(v).unwrap();
        let back: Iteration = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back.mask.map(|m| (m.masks, m.forced_tokens)), Some((40, 9)));
    }

    /// A journal is input anyone can edit: a candidate file outside candidates/ and settings
    /// the flags refuse (threads 0, key size 0, repeats 0) are errors naming the line, and a
    /// resume never reads the file or runs with them.
    #[test]
    fn a_journal_naming_a_file_outside_candidates_or_edited_settings_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let start = Record::Start {
            version: "0".into(),
            settings: Box::new(settings()),
            facts: Facts::gather(dir.path(), "11.8.1"),
            rocksdb: "11.8.1".into(),
            base_notes: Vec::new(),
            baseline: Sample::default(),
            proposer: "expert".into(),
            proposer_reason: String::new(),
            past: None,
        };
        append(dir.path(), &start).unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 1);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        for (field, value, named) in [
            ("threads", 0, "threads"),
            ("key_size", 0, "key_size"),
            ("repeats", 0, "--repeats"),
        ] {
            let mut bad = line.clone();
            match field {
                "repeats" => bad["settings"][field] = value.into(),
                _ => bad["settings"]["workload"][field] = value.into(),
            }
            std::fs::write(dir.path().join(FILE), format!("{bad}\n")).unwrap();
            let e = format!("{:#}", load(dir.path()).unwrap_err());
            assert!(
                e.contains("line 1") && e.contains("not valid") && e.contains(named),
                "{e}"
            );
        }
        for (file, ok) in [
            ("candidates/iter-001.ini", true),
            ("../../../../etc/shadow", false),
            ("/etc/shadow", false),
            ("candidates/../../x.ini", false),
            ("candidates", false),
            ("candidates/a/b.ini", false),
        ] {
            assert_eq!(check_candidate_file(file).is_ok(), ok, "{file}");
        }
        let mut it: serde_json::Value = serde_json::json!({
            "record": "iteration", "iteration": 1, "proposer": "expert", "prompt": null,
            "reply": null, "llm": null, "reasoning": null, "proposed": 1, "invalid": 0,
            "changes": {}, "corrections": [], "candidate_file": "../../../../etc/shadow",
            "best": null, "candidate": null, "comparison": null, "decision": "rejected",
            "failure": null, "bench_seconds": 0.0, "llm_seconds": 0.0, "elapsed": 1.0,
            "best_ops": 1.0});
        std::fs::write(dir.path().join(FILE), format!("{}\n{it}\n", text.trim())).unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(e.contains("line 2") && e.contains("etc/shadow"), "{e}");
        it["candidate_file"] = "candidates/iter-001.ini".into();
        std::fs::write(dir.path().join(FILE), format!("{}\n{it}\n", text.trim())).unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn differences_name_each_changed_field_and_ignore_a_float_round_trip() {
        let a = serde_json::json!({"workload": {"num": 3000, "mix": null, "ratio": 0.1},
            "repeats": 2});
        let b = serde_json::json!({"workload": {"num": 5000, "mix": {"get": 1.0},
            "ratio": 0.1 + 1e-17}, "repeats": 2});
        assert_eq!(
            differences(&a, &b),
            [
                "workload.num: 3000 then, 5000 now",
                r#"workload.mix: null then, {"get":1.0} now"#
            ]
        );
        assert!(differences(&a, &a).is_empty());
    }

    #[test]
    fn corrections_are_typed_records_and_old_text_still_reads() {
        let old_and_new = r#"["[range] write_buffer_size: 1 -> 65536: below the minimum",
            {"key": "write_buffer_size", "from": "1", "to": "65536", "rule": "range",
             "reason": "below the minimum"}]"#;
        let v: Vec<JournaledCorrection> = serde_json::from_str(old_and_new).unwrap();
        assert!(matches!(v[0], JournaledCorrection::Text(_)));
        assert_eq!(v[0].rule(), None);
        assert_eq!(v[1].rule(), Some(Rule::Range));
        // The same words either way, and the typed one is written as a record.
        assert_eq!(v[0].to_string(), v[1].to_string());
        let back = serde_json::to_value(&v[1]).unwrap();
        assert_eq!(back["rule"], "range");
        assert_eq!(back["to"], "65536");
    }
}
