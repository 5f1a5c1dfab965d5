//! `journal.jsonl` in the output folder: one JSON record per line, appended and flushed to disk
//! as each step completes (the start with the baseline, then every iteration, then the end), so
//! a killed run loses nothing finished and `tune --resume` can rebuild its state exactly.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
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
    /// How the proposer was asked for: `auto`, `local`, `openai`, `expert`, `random`.
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
}

fn yes() -> bool {
    true
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
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(named)?;
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

/// Every complete record of a journal. A last line cut short by a kill is ignored (it was
/// never acknowledged; it may end inside a UTF-8 character); a damaged line elsewhere is an
/// error.
pub fn load(dir: &Path) -> Result<Vec<Record>> {
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let complete = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
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
mod tests {
    use super::*;

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
