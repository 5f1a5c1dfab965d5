//! Flags and value parsers several commands share: the model to load, how to calibrate, `--json`,
//! durations, and the range checks every numeric flag goes through (the same in every command).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::bounds;
use crate::options::{self, CalibrateOptions, Calibrator, Config, OptionsDoc, rocks};

/// `--model` and `--offline`, shared by every command that loads a local model.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelSource {
    /// The model: a .gguf file, a folder (one .gguf, or safetensors + config.json with
    /// tokenizer.json), a manifest name such as `qwen2.5-0.5b-instruct[:q8_0]`, a model Ollama
    /// downloaded (`ollama:qwen2.5:0.5b`, tag default `latest`), a GGUF in LM Studio's folder
    /// (`lmstudio:PUBLISHER/REPO[/FILE.gguf]`), or `[hf:]ORG/REPO[:FILE]` from the Hugging Face
    /// cache. A name without a prefix is looked up in Ollama, LM Studio and the Hugging Face
    /// cache together and must match one model. `lsmtune models list` shows them all. Manifest
    /// names and ORG/REPO not found locally are downloaded unless --offline / HF_HUB_OFFLINE=1.
    #[arg(long)]
    pub model: String,
    /// Never touch the network: use only local files and the Hugging Face cache.
    #[arg(long)]
    pub offline: bool,
}

impl ModelSource {
    /// Resolve (and when allowed, download) the model's files.
    pub fn files(&self) -> Result<crate::llm::files::ModelFiles> {
        crate::llm::hub::Hub::from_env()
            .find(&self.model, self.offline || crate::http::offline_from_env())
    }
}

/// Parse `30s`, `10m`, `1h`, `500ms` or plain seconds (the same syntax as workload files).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::bench::workload_file::parse_duration(text)
}

/// A measured phase's length (`--duration`): the syntax of [`parse_duration`], the bound of
/// a workload file's `duration` ([`bounds::DURATION`]).
pub fn measured_duration(text: &str) -> Result<std::time::Duration, String> {
    bounds::DURATION.check_parsed(parse_duration(text)?)
}

/// How long one benchmark run may take (`--run-timeout`, `bench --timeout`): at least a second
/// ([`bounds::RUN_TIMEOUT`]); a worker cannot even start in less.
pub fn run_timeout(text: &str) -> Result<std::time::Duration, String> {
    bounds::RUN_TIMEOUT.check_parsed(parse_duration(text)?)
}

/// Shape of the proposals: what one may change and how long its reasoning may be. The same
/// flags, with the same defaults, in `tune`, `compare`, `propose` and `grammar schema`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// At most this many changes per proposal (the grammar allows no more; the calibrator keeps
    /// no more).
    #[arg(long, value_parser = count::<usize, 1, 64>, default_value_t = crate::grammar::schema::DEFAULT_MAX_CHANGES)]
    pub max_changes: usize,
    /// Also offer options that trade durability or semantics for speed (disabling paranoid
    /// checks, unordered_write, manual_wal_flush, FIFO compaction, ...).
    #[arg(long)]
    pub allow_unsafe: bool,
    /// Longest reasoning text a model may write, in characters.
    #[arg(long, value_parser = count::<usize, 1, 20000>, default_value_t = crate::grammar::schema::DEFAULT_REASONING_CHARS)]
    pub reasoning_chars: usize,
}

impl SchemaArgs {
    /// The schema options these flags give.
    pub fn options(&self) -> crate::grammar::schema::SchemaOptions {
        crate::grammar::schema::SchemaOptions {
            max_changes: self.max_changes,
            allow_unsafe: self.allow_unsafe,
            reasoning_chars: self.reasoning_chars,
        }
    }
}

/// What a proposal may change and the memory it may give RocksDB: one definition for `tune`,
/// `compare` and `propose`, so a compare's tunes are ordinary tunes and `propose` shows what a
/// tune's turn would.
#[derive(Debug, Clone, Args)]
pub struct ProposalArgs {
    #[command(flatten)]
    pub schema: SchemaArgs,
    /// RocksDB's memory budget for block cache + memtables: a size (8G, 512MiB) or a share of
    /// this machine's memory (40%). Default: half of memory (within --worker-memory).
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget)]
    pub memory_budget: Option<u64>,
}

/// Flags shared by every command that calibrates.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Starting OPTIONS file, or a RocksDB database folder (its newest OPTIONS-NNNNNN is read;
    /// the database is never opened). Default: the linked RocksDB's defaults.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Memory RocksDB may use for block cache + memtables: a size (8G, 512MiB) or a share of
    /// this machine's memory (40%). Default: 50% of memory.
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget)]
    pub memory_budget: Option<u64>,
    /// Accept options that change durability or semantics (disabling paranoid checks,
    /// unordered_write, manual_wal_flush, FIFO compaction, ...).
    #[arg(long)]
    pub allow_unsafe: bool,
    /// At most this many changes are taken from one proposal.
    #[arg(long, default_value_t = 16)]
    pub max_changes: usize,
}

impl CalibrateArgs {
    pub fn options(&self) -> CalibrateOptions {
        CalibrateOptions {
            memory_budget: self
                .memory_budget
                .unwrap_or_else(crate::sysinfo::default_memory_budget),
            allow_unsafe: self.allow_unsafe,
            max_changes: self.max_changes,
        }
    }

    /// The prepared base configuration and the corrections preparing it took.
    pub fn base(&self, calibrator: &Calibrator) -> Result<(Config, Vec<options::Correction>)> {
        let doc = match &self.base {
            Some(path) => OptionsDoc::read(&options::ini::options_file("--base", path)?)?,
            None => rocks::linked_defaults()?.clone(),
        };
        calibrator
            .prepare_base(doc)
            .with_context(|| match &self.base {
                Some(p) => format!("base {}", p.display()),
                None => "RocksDB defaults".into(),
            })
    }
}

/// A whole number in `LO..=HI`, the same check for every count flag of every command (a
/// `--seeds 18446744073709551615` once asked for that many runs and aborted).
pub(crate) fn count<T: TryFrom<u64>, const LO: u64, const HI: u64>(
    text: &str,
) -> std::result::Result<T, String> {
    let v: u64 = text
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if !(LO..=HI).contains(&v) {
        return Err(format!("{v} is out of range: use {LO} to {HI}"));
    }
    T::try_from(v).map_err(|_| format!("{v} is too large here"))
}

/// A relative effect such as `--min-effect 0.03` (3%): [`bounds::MIN_EFFECT`].
pub(crate) fn fraction(text: &str) -> std::result::Result<f64, String> {
    bounds::MIN_EFFECT.parse(text)
}

/// A sampling temperature: [`bounds::TEMPERATURE`].
pub(crate) fn temperature(text: &str) -> std::result::Result<f64, String> {
    bounds::TEMPERATURE.parse(text)
}

/// A compressibility ratio: [`bounds::COMPRESSION_RATIO`].
pub(crate) fn ratio(text: &str) -> std::result::Result<f64, String> {
    bounds::COMPRESSION_RATIO.parse(text)
}

/// `--dataset-size`: a size or a share of memory, within [`bounds::DATASET_SIZE`].
fn dataset_size(text: &str) -> std::result::Result<u64, String> {
    let bytes = crate::sysinfo::parse_memory_budget(text)?;
    bounds::DATASET_SIZE.check(bytes).map_err(|_| {
        format!(
            "dataset-size must be 1 MiB to 1 PiB (got {})",
            crate::input::clip(text.trim())
        )
    })
}

/// `--trace-speed`: 0 or within [`bounds::TRACE_SPEED`].
fn trace_speed(text: &str) -> std::result::Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number", crate::input::clip(text.trim())))?;
    bounds::trace_speed(v)
}

/// `--json` the same way in every command: bare, the command's result as JSON on standard
/// output instead of text (notes and progress stay on standard error); `--json=FILE`, the same
/// JSON written to FILE (by the rules of [`options::ini::write_atomic`]) and the text printed as
/// usual. The `=` is required, so `--json` never takes the next argument as a file to write.
#[derive(Debug, Clone, Default, Args)]
pub struct Json {
    /// The result as JSON on standard output instead of text; --json=FILE writes it to FILE
    /// and prints the text as usual.
    #[arg(
        long = "json",
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "-"
    )]
    pub dest: Option<PathBuf>,
}

/// `--json FILE` (the old form) leaves FILE an unexpected argument: add a tip toward
/// `--json=FILE` to clap's error.
pub fn hint_json_file(e: &mut clap::Error, args: &[std::ffi::OsString]) {
    use clap::builder::StyledStr;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return;
    };
    if !args
        .windows(2)
        .any(|w| w[0] == "--json" && w[1] == bad.as_str())
    {
        return;
    }
    let tip = StyledStr::from(format!(
        "to write the JSON to a file, use '--json={bad}' (the '=' is required)"
    ));
    let mut tips = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(v)) => v.clone(),
        _ => Vec::new(),
    };
    tips.push(tip);
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
}

/// `println!` on standard output, or on standard error when `$to_stderr` (a command whose
/// stdout holds `--json`'s result still says what it says in text, there).
macro_rules! say {
    ($to_stderr:expr, $($t:tt)*) => {
        if $to_stderr {
            eprintln!($($t)*)
        } else {
            println!($($t)*)
        }
    };
}
pub(crate) use say;

impl Json {
    /// The file `--json=FILE` names (None for bare `--json` and without it).
    pub fn file(&self) -> Option<&Path> {
        self.dest.as_deref().filter(|p| *p != Path::new("-"))
    }

    /// Refuse a `--json=FILE` that is one of the command's inputs
    /// ([`refuse_input_as_output`]).
    pub fn refuse_inputs(&self, inputs: &[&Path]) -> Result<()> {
        match self.file() {
            Some(f) => refuse_input_as_output("--json", f, inputs),
            None => Ok(()),
        }
    }

    /// JSON on standard output (so no text there).
    pub fn stdout(&self) -> bool {
        self.dest.as_deref() == Some(Path::new("-"))
    }

    /// Emit `v` (pretty) where `--json` says; true when the text is to be skipped.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, v: &T) -> Result<bool> {
        self.emit_text(&serde_json::to_string_pretty(v)?)
    }

    /// Emit already serialized JSON; true when the text is to be skipped.
    pub fn emit_text(&self, text: &str) -> Result<bool> {
        match self.dest.as_deref() {
            None => Ok(false),
            Some(p) if p == Path::new("-") => {
                println!("{text}");
                Ok(true)
            }
            Some(p) => {
                let mut body = text.to_string();
                if !body.ends_with('\n') {
                    body.push('\n');
                }
                options::ini::write_atomic(p, body.as_bytes())?;
                tracing::info!("wrote {}", p.display());
                Ok(false)
            }
        }
    }
}

/// Refuse to write `out` (given as `flag`) when it is one of `inputs`: the same file, also
/// through a symbolic or a hard link (same device and inode), so no command replaces what it
/// reads. Only an existing regular file can be an input (`--out /dev/null` is written through).
pub(crate) fn refuse_input_as_output(flag: &str, out: &Path, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(());
    };
    if !o.is_file() {
        return Ok(());
    }
    for input in inputs {
        if let Ok(i) = std::fs::metadata(input)
            && (i.dev(), i.ino()) == (o.dev(), o.ino())
        {
            anyhow::bail!(
                "{flag} {} is the input {}: lsmtune never writes over what it reads; pick \
                 another file",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Refuse to write `out` (given as `flag`) anywhere inside the database folder `db`, where the
/// write would land (links followed as the write follows them): `workload from-db` and
/// `tune --base DB_DIR` read a database and never write into its folder.
pub(crate) fn refuse_output_inside(flag: &str, out: &Path, db: &Path) -> Result<()> {
    let target = options::ini::resolve_links(out);
    let landing = match target.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            let parent = match target.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match parent.canonicalize() {
                Ok(p) => p.join(target.file_name().unwrap_or_default()),
                // A folder that does not exist is not the database's.
                Err(_) => return Ok(()),
            }
        }
    };
    if let Ok(db_canon) = db.canonicalize()
        && landing.starts_with(&db_canon)
    {
        anyhow::bail!(
            "{flag} {} is inside the database folder {}: lsmtune never writes into a \
             database's folder; pick a file elsewhere",
            out.display(),
            db.display()
        );
    }
    Ok(())
}

/// Per-command defaults of the workload flags.
pub struct SizeDefaults {
    pub num: u64,
    pub value_size: usize,
    pub threads: usize,
}

/// The workload's size and shape, shared by `bench`, `tune`, `compare` and `propose`. Every flag
/// is optional: a named workload takes the command's defaults, a workload file or trace its own
/// values, and a flag given overrides either. db_bench's spellings (`--value_size`, ...) work
/// too.
#[derive(Debug, Clone, Args, Default)]
pub struct WorkloadFlags {
    /// Keys in the key space (db_bench --num; default 100000 for bench and propose, 300000 for
    /// tune and compare: a database larger than a memtable).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounds::NUM.parse::<u64>(s))]
    pub num: Option<u64>,
    /// Key size in bytes (default 16).
    #[arg(long, alias = "key_size", allow_hyphen_values = true, value_parser = |s: &str| bounds::KEY_SIZE.parse::<usize>(s))]
    pub key_size: Option<usize>,
    /// Value size in bytes (default 100 for bench and propose, 400 for tune and compare).
    #[arg(long, alias = "value_size", allow_hyphen_values = true, value_parser = |s: &str| bounds::VALUE_SIZE.parse::<usize>(s))]
    pub value_size: Option<usize>,
    /// Threads of the measured phase (default 1 for bench and propose, 2 for tune and
    /// compare).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounds::THREADS.parse::<usize>(s))]
    pub threads: Option<usize>,
    /// Operations per thread in the measured phase (db_bench --reads/--writes; default --num).
    #[arg(long, alias = "reads", allow_hyphen_values = true, value_parser = |s: &str| bounds::OPS.parse::<u64>(s))]
    pub ops: Option<u64>,
    /// Measure for this long instead of a count (30s, 2m; at least 1s).
    #[arg(long, allow_hyphen_values = true, value_parser = measured_duration)]
    pub duration: Option<std::time::Duration>,
    /// Percent reads in readrandomwriterandom (default 90).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounds::READWRITEPERCENT.parse::<u32>(s))]
    pub readwritepercent: Option<u32>,
    /// Entries read after each seek in seekrandom (default 0).
    #[arg(long, alias = "seek_nexts", allow_hyphen_values = true, value_parser = |s: &str| bounds::SCAN_LENGTH.parse::<u32>(s))]
    pub seek_nexts: Option<u32>,
    /// How compressible values are (0.5 = to half; default 0.5).
    #[arg(long, alias = "compression_ratio", allow_hyphen_values = true, value_parser = ratio)]
    pub compression_ratio: Option<f64>,
    /// Size the key count so the data (keys x (key + value size)) is about this large: 1G,
    /// 500M. Overrides --num.
    #[arg(long, allow_hyphen_values = true, value_parser = dataset_size)]
    pub dataset_size: Option<u64>,
    /// Replay a trace (--workload trace:FILE) at its own pace times this (2 = twice as fast);
    /// 0, the default, replays as fast as the database allows (else 0.001 to 1000000).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = trace_speed)]
    pub trace_speed: f64,
    #[command(flatten)]
    pub mixgraph: MixGraphFlags,
}

impl WorkloadFlags {
    /// The workload `source` names, with these flags and the command's defaults applied.
    pub fn build(
        &self,
        source: &crate::bench::workload_file::Source,
        d: &SizeDefaults,
    ) -> Result<crate::bench::Workload> {
        bounds::trace_speed(self.trace_speed).map_err(|e| anyhow::anyhow!("--{e}"))?;
        let loaded = source
            .load(self.trace_speed)
            .map_err(|e| anyhow::anyhow!(e))?;
        for n in &loaded.notes {
            tracing::warn!("{n}");
        }
        let mut w = loaded.workload;
        if !source.sized_by_itself() {
            w.num = d.num;
            w.value_size = d.value_size;
            w.threads = d.threads;
        }
        if let Some(v) = self.num {
            w.num = v;
        }
        if let Some(v) = self.key_size {
            w.key_size = v;
        }
        if let Some(v) = self.value_size {
            w.value_size = v;
        }
        if let Some(v) = self.threads {
            w.threads = v;
        }
        if self.ops.is_some() {
            w.ops = self.ops;
            w.duration = None;
        }
        if self.duration.is_some() {
            w.duration = self.duration;
        }
        if let Some(v) = self.readwritepercent {
            w.readwritepercent = v;
        }
        if let Some(v) = self.seek_nexts {
            w.seek_nexts = v;
        }
        if let Some(v) = self.compression_ratio {
            w.compression_ratio = v;
        }
        if let Some(bytes) = self.dataset_size {
            let per_key = (w.key_size + w.value_size).max(1) as u64;
            w.num = bounds::NUM.check((bytes / per_key).max(1)).map_err(|_| {
                anyhow::anyhow!(
                    "--dataset-size {} at {per_key} bytes per key makes {} keys, more than \
                     --num's most ({})",
                    crate::options::value::human_bytes(bytes as i64),
                    bytes / per_key,
                    bounds::NUM.max
                )
            })?;
        }
        self.mixgraph.apply(&mut w)?;
        w.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(w)
    }
}

macro_rules! mixgraph_flags {
    ($($name:ident),* $(,)?) => {
        /// db_bench's mixgraph parameters, with db_bench's names (`--key_dist_a 0.002312`);
        /// only for `--workload mixgraph`.
        #[derive(Debug, Clone, Args, Default)]
        pub struct MixGraphFlags {
            $(
                #[arg(
                    long = stringify!($name),
                    allow_hyphen_values = true,
                    hide_short_help = true,
                    value_name = "V",
                    help_heading = "mixgraph (db_bench's flags; --workload mixgraph)"
                )]
                pub $name: Option<String>,
            )*
        }

        impl MixGraphFlags {
            fn given(&self) -> Vec<(&'static str, &str)> {
                let mut out = Vec::new();
                $(
                    if let Some(v) = &self.$name {
                        out.push((stringify!($name), v.as_str()));
                    }
                )*
                out
            }
        }
    };
}

mixgraph_flags!(
    key_dist_a,
    key_dist_b,
    keyrange_dist_a,
    keyrange_dist_b,
    keyrange_dist_c,
    keyrange_dist_d,
    keyrange_num,
    value_theta,
    value_k,
    value_sigma,
    iter_theta,
    iter_k,
    iter_sigma,
    mix_get_ratio,
    mix_put_ratio,
    mix_seek_ratio,
    mix_max_scan_len,
    mix_max_value_size,
    sine_mix_rate,
    sine_a,
    sine_b,
    sine_c,
    sine_d,
    sine_mix_rate_interval_milliseconds,
);

impl MixGraphFlags {
    /// Set the given parameters on a mixgraph workload; an error for any other workload.
    pub fn apply(&self, w: &mut crate::bench::Workload) -> Result<()> {
        let given = self.given();
        if given.is_empty() {
            return Ok(());
        }
        if w.kind != crate::bench::Kind::MixGraph {
            anyhow::bail!(
                "--{} is a mixgraph parameter; it needs --workload mixgraph (not {})",
                given[0].0,
                w.label()
            );
        }
        let mut g = crate::bench::mixgraph::MixGraph::default();
        for (name, value) in given {
            g.set(name, value).map_err(|e| anyhow::anyhow!(e))?;
        }
        w.mix = Some(Box::new(g.to_mix()));
        Ok(())
    }
}

/// A flag group's values when none of its flags is given, as clap parses them: how a command
/// without those flags runs as one with them (`propose` measures as `tune` does).
pub(crate) fn defaults<T: Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&cmd.get_matches_from(["defaults"])).expect("a flag group's defaults parse")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn refused(args: &[&str]) -> String {
        let mut all = vec!["lsmtune"];
        all.extend(args);
        if args[0] == "bench" {
            all.extend(["--workload", "readrandom"]);
        }
        crate::cli::Cli::try_parse_from(all)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_numeric_flag_meets_the_bounds_files_meet() {
        for (args, says) in [
            (
                &["bench", "--ops", "18446744073709551615"][..],
                "ops must be 1 to",
            ),
            (
                &["bench", "--seek-nexts", "4294967295"],
                "seek_nexts must be 0 to",
            ),
            (&["bench", "--trace-speed", "1e-300"], "trace-speed must be"),
            (&["bench", "--trace-speed", "-1"], "trace-speed must be"),
            (
                &["bench", "--dataset-size", "1e30"],
                "dataset-size must be 1 MiB to 1 PiB",
            ),
            (
                &["bench", "--duration", "0.0000000001s"],
                "duration must be 1 to",
            ),
            (&["bench", "--duration", "9999999h"], "too long"),
            (&["bench", "--num", "-5"], "num must be 1 to"),
            (
                &["bench", "--min-effect", "-0.1"],
                "min-effect must be 0 to 10",
            ),
            (
                &["tune", "--min-effect", "-0.1"],
                "min-effect must be 0 to 10",
            ),
            (&["tune", "--max-p99", "-1ms"], "must be a positive number"),
            (&["tune", "--trace-speed", "-1"], "trace-speed must be"),
            (
                &["tune", "--run-timeout", "1ms"],
                "run timeout must be 1 to",
            ),
            (
                &["compare", "--run-timeout", "1ms"],
                "run timeout must be 1 to",
            ),
            (&["bench", "--timeout", "1ms"], "run timeout must be 1 to"),
        ] {
            let e = refused(args);
            assert!(
                e.contains(says) && !e.contains("unexpected argument"),
                "{args:?}: {e}"
            );
        }
        // A negative where one is meant reaches mixgraph's own parameters.
        let cli = crate::cli::Cli::try_parse_from([
            "lsmtune",
            "bench",
            "--workload",
            "mixgraph",
            "--keyrange_dist_b",
            "-2.917",
        ]);
        assert!(cli.is_ok(), "{:?}", cli.err().map(|e| e.to_string()));
    }

    #[test]
    fn a_dataset_size_may_not_make_more_keys_than_num_may() {
        let flags = WorkloadFlags {
            dataset_size: Some(1 << 50),
            ..WorkloadFlags::default()
        };
        let source = crate::bench::workload_file::Source::Named(crate::bench::Kind::ReadRandom);
        let d = SizeDefaults {
            num: 1000,
            value_size: 100,
            threads: 1,
        };
        let e = flags.build(&source, &d).unwrap_err().to_string();
        assert!(e.contains("more than --num's most"), "{e}");
        let flags = WorkloadFlags {
            dataset_size: Some(1 << 30),
            ..WorkloadFlags::default()
        };
        assert_eq!(flags.build(&source, &d).unwrap().num, (1 << 30) / 116);
    }

    #[test]
    fn a_flag_groups_defaults_are_its_clap_defaults() {
        let judge = defaults::<crate::cli::tune::JudgeArgs>();
        assert_eq!((judge.repeats, judge.confirm, judge.max_rounds), (3, 2, 8));
        assert_eq!(judge.min_effect, 0.03);
        let run = defaults::<crate::cli::tune::RunArgs>();
        assert_eq!(run.run_timeout, std::time::Duration::from_secs(300));
        assert!(run.work_dir.is_none() && run.worker_memory.is_none() && !run.drop_caches);
    }
}
