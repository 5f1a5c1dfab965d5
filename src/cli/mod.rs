//! The command line: argument definitions (clap), one `match` over the commands, human and JSON
//! output, and the exit codes.
//!
//! Exit codes: 0 success; 1 the check ran and found problems (`options validate`); 2 bad input or
//! an error (unreadable file, bad flag, RocksDB refused the base); 70 an internal error (a bug).

mod compare;
mod llm;
mod log;
mod propose;
mod tune;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::options::{
    self, CalibrateOptions, Calibrator, Config, OptionsDoc, calibrate, catalog::Catalog,
    config::raw_diff, rocks, value::human_bytes,
};

/// lsmtune tunes RocksDB for a machine and a workload with a language model in a closed loop.
///
/// `lsmtune tune --workload readrandom` measures the start, asks a model (local, an endpoint, or
/// the built-in expert) for changes, calibrates them so RocksDB accepts them, benchmarks them
/// against the best so far, keeps only confirmed gains and writes OPTIONS-tuned.ini with a
/// report. The other commands are its parts, usable alone: `options` (the option catalog, and
/// checking, comparing and calibrating OPTIONS files), `bench`, `models`, `llm`, `propose`,
/// `grammar`, and `compare` for researchers.
///
/// Results go to standard output (`--json` for JSON); notes, progress and errors to standard
/// error (`-q` for warnings and errors only, `-v`/`-vv` for debug lines, or `RUST_LOG`).
#[derive(Debug, Parser)]
#[command(
    name = "lsmtune",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More on standard error: -v lsmtune's debug lines (HTTP requests, benchmark runs, model
    /// loading), -vv the libraries' too. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on standard error, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tune RocksDB for a workload on this machine, end to end: measure the start, then ask for
    /// changes, calibrate, benchmark them interleaved with the best so far, keep only confirmed
    /// gains, feed the results back, and stop at convergence. Writes OPTIONS-tuned.ini,
    /// report.md, report.json, throughput.svg and journal.jsonl into --out.
    ///
    /// Proposers (--backend): a local model under the proposal grammar, an OpenAI-compatible
    /// endpoint, a running Ollama or LM Studio, the built-in expert rules, or random valid
    /// changes. `auto` takes a local model if one is found, else the endpoint if configured,
    /// else the expert rules, and says which. Ollama is spoken to through its native API with a
    /// context window (num_ctx) sized to the conversation: its OpenAI route would cut the prompt
    /// at 2-4k tokens without a word, also when --openai-base-url points at an Ollama.
    ///
    /// Examples:
    ///   lsmtune tune --workload readrandom                    # a few minutes on 2 cores
    ///   lsmtune tune --workload fillrandom --model qwen2.5-0.5b-instruct --iterations 8
    ///   lsmtune tune --workload fillrandom --model ollama:qwen2.5:0.5b  # Ollama's file, run here
    ///   lsmtune tune --backend ollama --model qwen2.5:7b --workload readrandom
    ///   lsmtune tune --backend lmstudio --workload ycsb-a      # the model LM Studio has loaded
    ///   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 lsmtune tune --backend openai --workload ycsb-a
    ///   lsmtune tune --resume lsmtune-readrandom               # continue a killed run
    #[command(verbatim_doc_comment)]
    Tune(tune::TuneArgs),
    /// Compare proposers fairly: every proposer × workload × seed is an ordinary tune with the
    /// same workload definition, seeds and iteration budget, sharing one baseline measurement
    /// per workload. Writes results.md / .csv / .json (gain with CI, iterations to 95% of the
    /// best, benchmark and LLM time, tokens, invalid-proposal rate, corrections, failures) and
    /// best_so_far.svg. Running the same command again resumes it.
    ///
    /// Examples:
    ///   lsmtune compare --proposers expert,random --workloads fillrandom,readrandom --seeds 3 --out cmp
    ///   lsmtune compare --proposers local:qwen2.5-0.5b-instruct,openai:gpt-4o,expert --out cmp2
    ///   lsmtune compare --proposers ollama:qwen2.5:7b,lmstudio,expert --out cmp3
    #[command(verbatim_doc_comment)]
    Compare(compare::CompareArgs),
    /// Work with RocksDB options: the catalog, OPTIONS files, calibration.
    #[command(subcommand)]
    Options(OptionsCommand),
    /// Benchmark a configuration on a workload, with repeats and a confidence interval.
    ///
    /// Read workloads first fill the database with the configuration under test, then measure.
    /// Each repeat runs in its own worker process (a crash, hang or memory blow-up of RocksDB is
    /// reported, not fatal) in a fresh folder that is removed afterwards.
    ///
    /// Examples:
    ///   lsmtune bench --workload readrandom --threads 2 --repeats 3
    ///   lsmtune bench --workload ycsb-a --options OPTIONS-tuned.ini --json=run.json
    ///   lsmtune bench --workload fillrandom --engine db_bench --threads 2
    Bench(BenchArgs),
    /// Local models: list what is present, download, write a tiny random-weight test model.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Talk to a language model directly.
    #[command(subcommand)]
    Llm(LlmCommand),
    /// Ask a local model for proposals and show them calibrated, without benchmarking: what
    /// would the model change, and what did the calibrator have to correct?
    ///
    /// The model decodes under the proposal grammar (see `lsmtune grammar schema`): it can only
    /// write existing option names and values of the right type and range.
    ///
    /// Examples:
    ///   lsmtune models make-test-model --out /tmp/tiny
    ///   lsmtune propose --model /tmp/tiny --workload readrandom --n 3
    ///   lsmtune propose --model qwen2.5-0.5b-instruct --unconstrained
    Propose(propose::ProposeArgs),
    /// The proposal grammar: the JSON Schema generated from the option catalog.
    #[command(subcommand)]
    Grammar(propose::GrammarCommand),
    /// Internal: run one benchmark in this process (started by `bench`).
    #[command(name = "__worker", hide = true)]
    Worker { spec: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show every model on this machine, store by store: the known models
    /// (models/manifest.json), the Hugging Face cache (HF_HUB_CACHE / HF_HOME), Ollama's store
    /// (OLLAMA_MODELS, else ~/.ollama/models), LM Studio's folder (LMSTUDIO_MODELS, else
    /// ~/.lmstudio/models and ~/.cache/lm-studio/models) and the models folder
    /// (LSMTUNE_MODELS_DIR, default ./models). Each model is shown under the name `--model`
    /// takes, with its architecture, quantization, size, and whether lsmtune can run it (and if
    /// not, why: an unsupported architecture, a tokenizer it does not know, not a GGUF...).
    /// Reads file metadata only; never touches the network.
    ///
    /// Examples:
    ///   lsmtune models list
    ///   lsmtune models list --json | jq '.[] | .models[] | select(.runnable) | .name'
    ///   lsmtune llm chat --model ollama:qwen2.5:0.5b --prompt "Tune RocksDB"
    #[command(verbatim_doc_comment)]
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Download a model into the Hugging Face cache (HF_HUB_CACHE / HF_HOME; endpoint
    /// HF_ENDPOINT; token HF_TOKEN for gated repos), with a progress bar. Files already cached
    /// are not fetched again. What lands is what `--model SPEC` then finds with no network.
    ///
    /// SPEC is a manifest name (`qwen2.5-0.5b-instruct`, `qwen2.5-0.5b-instruct:q8_0`; see
    /// `models list`), `ORG/REPO:FILE.gguf` (plus that repo's tokenizer.json), or `ORG/REPO`
    /// for a safetensors checkpoint (config, tokenizer, weights and shards).
    ///
    /// Examples:
    ///   lsmtune models pull qwen2.5-0.5b-instruct
    ///   lsmtune models pull Qwen/Qwen2.5-0.5B-Instruct
    Pull {
        spec: String,
        /// Never touch the network (also HF_HUB_OFFLINE=1): only report what is cached.
        #[arg(long)]
        offline: bool,
    },
    /// Write a tiny deterministic random-weight model (GGUF + a tokenizer.json trained here) for
    /// tests and offline trials: it exercises the real loading and generation code.
    ///
    /// Example:
    ///   lsmtune models make-test-model --arch qwen2 --out /tmp/tiny
    ///   lsmtune llm chat --model /tmp/tiny --prompt "Tune RocksDB"
    MakeTestModel {
        /// Architecture: qwen2 or llama.
        #[arg(long, default_value = "qwen2")]
        arch: String,
        /// Folder to create (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Weight format of the matrices: q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,
        /// q6_k, f16, bf16 or f32 (tensors whose rows do not fit a K-quant's 256-wide blocks fall
        /// back as llama.cpp's quantizer does: q2_k/q3_k to q4_0, q4_k to q5_0, q5_k to q5_1,
        /// q6_k to q8_0), or q4_k_m: llama.cpp's
        /// recipe (Q4_K, Q6_K for the output, attn_v and ffn_down in some layers; Q5_0 and Q8_0
        /// where rows do not fit, as in a real Qwen2.5-0.5B Q4_K_M file).
        #[arg(long, default_value = "q8_0")]
        dtype: String,
        /// Dimensions: `tiny` (tests), `qwen2.5-0.5b` or `qwen2.5-1.5b` (real sizes and the
        /// 151,936-token vocabulary, for speed measurements; 0.5B is about 500 MB at q8_0,
        /// 1.5B about 1 GB at q4_k_m).
        #[arg(long, default_value = "tiny")]
        shape: String,
        /// gguf, or safetensors (full precision with config.json).
        #[arg(long, default_value = "gguf")]
        format: String,
    },
}

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
    pub fn files(&self) -> Result<crate::llm::local::ModelFiles> {
        crate::llm::hub::Hub::from_env()
            .find(&self.model, self.offline || crate::http::offline_from_env())
    }
}

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Measure prefill and decode speed (tokens/s) of a local model: a prompt of about
    /// --prompt-tokens tokens, then exactly --gen-tokens generated (end-of-sequence ignored),
    /// each repeat from an empty KV cache.
    ///
    /// Example:
    ///   lsmtune models make-test-model --shape qwen2.5-0.5b --out /tmp/q05
    ///   lsmtune llm bench --model /tmp/q05 --prompt-tokens 128 --gen-tokens 64
    Bench {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also decode under the proposal grammar, interleaved with the unconstrained runs
        /// (same model, prompt and seeds; the free run is cut to the constrained run's length,
        /// since decode speed falls as the context grows): tokens/s of both, their ratio, and
        /// the grammar's mask time per token (p50, p99). Reasoning is bounded to 120 characters
        /// so the run reaches the option keys and values.
        #[arg(long)]
        grammar: bool,
        #[command(flatten)]
        json: Json,
    },
    /// What the KV cache kept across turns saves: a tuning conversation (the real first turn,
    /// then feedback turns of the tuner's size) run twice, cache kept and from scratch, with
    /// prompt tokens, tokens actually prefilled and prefill seconds per turn.
    ///
    /// Example:
    ///   lsmtune llm turns --model /tmp/q05 --turns 4
    Turns {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long, default_value_t = 4)]
        turns: usize,
        /// Reply length (greedy, so both runs see the same conversation).
        #[arg(long, default_value_t = 48)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 1)]
        repeats: usize,
        #[command(flatten)]
        json: Json,
    },
    /// Send one prompt, stream the reply, print token counts and tokens/s.
    Chat {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
        #[arg(long, default_value_t = 0.9)]
        top_p: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// Which engine measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// The in-process harness (RocksDB linked into lsmtune), isolated per run.
    Inprocess,
    /// An external db_bench binary (`--db-bench PATH`, default: on PATH).
    #[value(name = "db_bench")]
    DbBench,
}

/// Parse `30s`, `10m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 10m, 1h)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => v,
        "ms" => v / 1000.0,
        "m" | "min" | "mins" => v * 60.0,
        "h" | "hour" | "hours" => v * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("`{text}` must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Flags of `lsmtune bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload: fillseq, fillrandom, overwrite, readrandom, readrandomwriterandom,
    /// readwhilewriting, seekrandom, updaterandom, ycsb-a ... ycsb-f.
    #[arg(long, value_parser = |s: &str| s.parse::<crate::bench::Kind>())]
    pub workload: crate::bench::Kind,
    /// OPTIONS file to measure (default: the linked RocksDB's defaults).
    #[arg(long)]
    pub options: Option<PathBuf>,
    /// Measurements to take (each in a fresh database).
    #[arg(long, value_parser = count::<usize, 1, 10000>, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, value_enum, default_value_t = EngineChoice::Inprocess)]
    pub engine: EngineChoice,
    /// The db_bench binary for --engine db_bench.
    #[arg(long)]
    pub db_bench: Option<PathBuf>,
    #[command(flatten)]
    pub json: Json,
    /// Compare against a previous run (a `--json` file): better / no significant difference /
    /// worse, with the effect and its 95% interval (Welch's t-test).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Smallest relative effect called a difference (0.02 = 2%).
    #[arg(long, value_parser = fraction, default_value_t = 0.02)]
    pub min_effect: f64,
    /// Keys in the key space (db_bench --num).
    #[arg(long, value_parser = count::<u64, 1, 1000000000000>, default_value_t = 100_000)]
    pub num: u64,
    #[arg(long, value_parser = count::<usize, 1, 1048576>, default_value_t = 16)]
    pub key_size: usize,
    #[arg(long, value_parser = count::<usize, 0, 67108864>, default_value_t = 100)]
    pub value_size: usize,
    #[arg(long, value_parser = count::<usize, 1, 1024>, default_value_t = 1)]
    pub threads: usize,
    /// Operations per thread in the measured phase (db_bench --reads/--writes; default --num).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Measure for this long instead of a count (30s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Percent reads in readrandomwriterandom.
    #[arg(long, value_parser = count::<u32, 0, 100>, default_value_t = 90)]
    pub readwritepercent: u32,
    /// Entries read after each seek in seekrandom.
    #[arg(long, default_value_t = 0)]
    pub seek_nexts: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How compressible values are (0.5 = to half).
    #[arg(long, value_parser = ratio, default_value_t = 0.5)]
    pub compression_ratio: f64,
    /// Folder in which run folders are created and removed (default: the temp folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Stop a run that takes longer than this.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub timeout: std::time::Duration,
    /// Stop a run whose memory exceeds this: a size (8G) or a share of memory (75%).
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget, default_value = "75%")]
    pub memory_limit: u64,
}

impl BenchArgs {
    pub fn workload(&self) -> Result<crate::bench::Workload> {
        let mut w = crate::bench::Workload::new(self.workload);
        w.num = self.num;
        w.key_size = self.key_size;
        w.value_size = self.value_size;
        w.threads = self.threads;
        w.ops = self.ops;
        w.duration = self.duration;
        w.readwritepercent = self.readwritepercent;
        w.seek_nexts = self.seek_nexts;
        w.seed = self.seed;
        w.compression_ratio = self.compression_ratio;
        w.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(w)
    }
}

#[derive(Debug, Subcommand)]
pub enum OptionsCommand {
    /// Show the catalog of tunable options (no FILE), or an OPTIONS file annotated with defaults
    /// and meanings.
    ///
    /// Examples:
    ///   lsmtune options show
    ///   lsmtune options show --category compaction
    ///   lsmtune options show /path/to/OPTIONS-000005
    Show {
        /// An OPTIONS file to annotate.
        file: Option<PathBuf>,
        /// Only this category (memtable, compaction, flush, threads, io, wal, write_path,
        /// compression, table, cache, filter, blob, misc).
        #[arg(long)]
        category: Option<String>,
        #[command(flatten)]
        json: Json,
    },
    /// Check an OPTIONS file the way the linked RocksDB will load it, plus lsmtune's ranges and
    /// dependency rules. Exit 0 when RocksDB accepts it, 1 when it does not (or with --strict,
    /// on any warning), 2 when the file cannot be read.
    Validate {
        file: PathBuf,
        /// Treat warnings (out of lsmtune's ranges, dependency rules) as failures.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Show what differs between two OPTIONS files: tunable options with their meanings first,
    /// then every other key.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        json: Json,
    },
    /// Calibrate a raw proposal into an OPTIONS file RocksDB accepts, printing each correction.
    ///
    /// PROPOSAL is a file (or - for stdin) holding a JSON object such as
    /// {"changes": {"write_buffer_size": "128MB", "compression": "lz4"}}, `key=value` lines,
    /// or a whole OPTIONS file. The changes are applied on top of --base (default: the linked
    /// RocksDB's defaults).
    ///
    /// Example:
    ///   echo 'write_buffer_size=128MB' | lsmtune options calibrate - --out OPTIONS-tuned.ini
    Calibrate {
        /// The proposal: a file path, or - for standard input.
        proposal: String,
        /// Where to write the calibrated OPTIONS file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        calib: CalibrateArgs,
        #[command(flatten)]
        json: Json,
    },
    /// Make an OPTIONS file loadable by an older RocksDB's db_bench (e.g. Debian's 7.8.3, which
    /// refuses keys newer versions write): asks db_bench, drops each key it names, repeats.
    ///
    /// Example:
    ///   lsmtune options downgrade OPTIONS-tuned.ini --out OPTIONS-db_bench.ini
    ///   db_bench --options_file=OPTIONS-db_bench.ini --benchmarks=readrandom ...
    Downgrade {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The db_bench binary (default: db_bench on PATH).
        #[arg(long)]
        db_bench: Option<PathBuf>,
        /// Stop when one db_bench probe takes longer than this (e.g. 30s, 2m).
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: std::time::Duration,
    },
    /// Write the linked RocksDB's default OPTIONS file.
    Defaults {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Flags shared by every command that calibrates.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Starting OPTIONS file (default: the linked RocksDB's defaults).
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
            Some(path) => OptionsDoc::read(path)?,
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

/// A finite number in `lo..=hi`.
fn number(text: &str, lo: f64, hi: f64) -> std::result::Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !v.is_finite() || v < lo || v > hi {
        return Err(format!(
            "`{text}` is out of range: use a number from {lo} to {hi}"
        ));
    }
    Ok(v)
}

/// A relative effect such as `--min-effect 0.03` (3%): finite, 0 to 10.
pub(crate) fn fraction(text: &str) -> std::result::Result<f64, String> {
    number(text, 0.0, 10.0)
}

/// A sampling temperature: finite, 0 to 5.
pub(crate) fn temperature(text: &str) -> std::result::Result<f64, String> {
    number(text, 0.0, 5.0)
}

/// A compressibility ratio: above 0, at most 1.
pub(crate) fn ratio(text: &str) -> std::result::Result<f64, String> {
    match number(text, 0.0, 1.0)? {
        0.0 => Err(format!("`{text}` must be above 0")),
        v => Ok(v),
    }
}

/// A stop by signal, told as what to run next (`again`); other errors pass unchanged.
fn resumable(e: anyhow::Error, out: &std::path::Path, again: &str) -> anyhow::Error {
    if e.is::<crate::interrupt::Interrupted>() {
        e.context(format!(
            "stopped; every finished step is kept in {}; continue with {again}",
            out.display()
        ))
    } else {
        e
    }
}

/// An output folder must be new, empty, or hold only `ours` (what an interrupted start of ours
/// leaves), unless the user forces it: lsmtune's outputs (report.md, ...) would overwrite files
/// of the same names.
fn check_out_is_ours(out: &std::path::Path, ours: &[&str], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a folder", out.display());
    }
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !ours.contains(&n.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let shown = foreign
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    bail!(
        "--out {} is not empty and is not an lsmtune run folder (it holds {shown}{}); pick a new folder, or pass --force to write into it (files with lsmtune's names would be overwritten)",
        out.display(),
        if foreign.len() > 5 { ", ..." } else { "" }
    );
}

/// Remove scratch folders that runs killed outright left in the work folder, and say so.
fn note_swept(work_dir: Option<&std::path::Path>) {
    let swept = crate::bench::engine::sweep_stale(work_dir);
    if !swept.is_empty() {
        tracing::warn!(
            "removed {} scratch folder(s) left by killed runs: {}",
            swept.len(),
            swept
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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

impl Json {
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

/// A failure that maps to exit code 1 (the check ran and said no).
#[derive(Debug)]
struct CheckFailed;

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("check failed")
    }
}

impl std::error::Error for CheckFailed {}

/// Entry point used by `main`: run, print the error once, return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Command::Worker { spec } = &cli.command {
        return crate::bench::worker::worker_main(spec);
    }
    log::init(cli.verbose, cli.quiet);
    // A reader that stops early (`lsmtune ... | head`) closes stdout: `println!` then panics with
    // a broken pipe. That is the reader's choice, not a bug: leave quietly.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) if e.is::<CheckFailed>() => 1,
        Ok(Err(e)) => match e.downcast_ref::<crate::interrupt::Interrupted>() {
            Some(i) => {
                eprintln!("{e:#}");
                i.exit_code()
            }
            None => {
                eprintln!("error: {e:#}");
                2
            }
        },
        Err(_) => {
            eprintln!("internal error: lsmtune hit a bug (the message above); please report it");
            70
        }
    }
}

/// Run one parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Options(cmd) => run_options(cmd),
        Command::Bench(args) => bench_cmd(&args),
        Command::Models(cmd) => models_cmd(cmd),
        Command::Llm(cmd) => llm_cmd(cmd),
        Command::Propose(args) => propose::propose_cmd(args),
        Command::Tune(mut args) => {
            args.run.quiet = cli.quiet;
            tune::tune_cmd(args)
        }
        Command::Compare(mut args) => {
            args.run.quiet = cli.quiet;
            compare::compare_cmd(args)
        }
        Command::Grammar(cmd) => propose::grammar_cmd(cmd),
        Command::Worker { spec } => match crate::bench::worker::worker_main(&spec) {
            0 => Ok(()),
            code => bail!("worker exited with {code}"),
        },
    }
}

fn run_options(cmd: OptionsCommand) -> Result<()> {
    let catalog = options::catalog()?;
    match cmd {
        OptionsCommand::Show {
            file,
            category,
            json,
        } => match file {
            None => show_catalog(catalog, category.as_deref(), json),
            Some(path) => show_file(catalog, &path, json),
        },
        OptionsCommand::Validate { file, strict, json } => validate(catalog, &file, strict, json),
        OptionsCommand::Diff { a, b, json } => diff(catalog, &a, &b, json),
        OptionsCommand::Calibrate {
            proposal,
            out,
            calib,
            json,
        } => calibrate_cmd(catalog, &proposal, &out, &calib, json),
        OptionsCommand::Downgrade {
            file,
            out,
            db_bench,
            timeout,
        } => {
            let bin = crate::bench::db_bench::locate(db_bench.as_deref())?;
            let doc = OptionsDoc::read(&file)?;
            let result = crate::bench::db_bench::downgrade(&bin, &doc, timeout)?;
            for d in &result.dropped {
                println!("dropped {d}");
            }
            result.doc.write(
                &out,
                &format!(
                    "{} made loadable by {} (lsmtune options downgrade); {} setting(s) dropped",
                    file.display(),
                    bin.display(),
                    result.dropped.len()
                ),
            )?;
            println!(
                "wrote {} ({} setting(s) dropped; {} loads it)",
                out.display(),
                result.dropped.len(),
                bin.display()
            );
            Ok(())
        }
        OptionsCommand::Defaults { out } => {
            let doc = rocks::linked_defaults()?;
            doc.write(
                &out,
                &format!(
                    "RocksDB {} defaults, written by lsmtune {}",
                    catalog.rocksdb_version,
                    env!("CARGO_PKG_VERSION")
                ),
            )?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn category_name(c: options::catalog::Category) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn display_value(ty: &options::value::OptionType, v: &options::value::Value) -> String {
    match (ty, v) {
        (_, options::value::Value::Double(d)) => format!("{d}"),
        (options::value::OptionType::Size { .. }, options::value::Value::Int(i)) if *i >= 1024 => {
            human_bytes(*i)
        }
        _ => v.to_string(),
    }
}

fn show_catalog(catalog: &Catalog, category: Option<&str>, json: Json) -> Result<()> {
    let entries: Vec<_> = catalog
        .entries
        .iter()
        .filter(|e| category.is_none_or(|c| category_name(e.spec.category) == c))
        .collect();
    if entries.is_empty() {
        bail!(
            "no option in category `{}`; categories: memtable, compaction, flush, threads, io, wal, write_path, compression, table, cache, filter, blob, misc",
            category.unwrap_or_default()
        );
    }
    if json.emit(&entries)? {
        return Ok(());
    }
    println!(
        "{} tunable options of RocksDB {} (defaults read from the linked library)\n",
        entries.len(),
        catalog.rocksdb_version
    );
    println!(
        "{:<48} {:<11} {:<14} {:<28} meaning",
        "key", "section", "default", "type"
    );
    for e in entries {
        let safety = match e.spec.safety {
            options::catalog::Safety::Safe => String::new(),
            s => format!(" [{}]", s.describe()),
        };
        let ty = e.spec.ty.describe();
        let ty = if ty.len() > 28 {
            format!("{}...", &ty[..25])
        } else {
            ty
        };
        println!(
            "{:<48} {:<11} {:<14} {:<28} {}{}",
            e.spec.key,
            e.spec.scope.name(),
            display_value(&e.spec.ty, &e.default),
            ty,
            e.spec.meaning,
            safety
        );
    }
    if !catalog.missing.is_empty() {
        println!(
            "\nnot in this RocksDB (left out): {}",
            catalog.missing.join(", ")
        );
    }
    Ok(())
}

fn show_file(catalog: &Catalog, path: &Path, json: Json) -> Result<()> {
    let doc = OptionsDoc::read(path)?;
    let mut rows = Vec::new();
    for section in &doc.sections {
        let scope = options::config::scope_of(&section.kind);
        let check_scope = match &section.kind {
            options::ini::SectionKind::Db => Some(options::catalog::Scope::Db),
            options::ini::SectionKind::Cf(_) => Some(options::catalog::Scope::Cf),
            options::ini::SectionKind::Table { factory, .. } if factory == "BlockBasedTable" => {
                Some(options::catalog::Scope::Table)
            }
            _ => None,
        };
        for (k, v) in &section.entries {
            let entry = scope.and_then(|s| catalog.by_raw(s, k));
            let known = match check_scope {
                Some(s) => rocks::check_key(s, k, v).is_ok(),
                None => true,
            };
            rows.push(serde_json::json!({
                "section": section.kind.header(),
                "key": k,
                "value": v,
                "tunable": entry.is_some(),
                "known_to_rocksdb": known,
                "default": entry.map(|e| e.default.to_string()),
                "meaning": entry.map(|e| e.spec.meaning),
            }));
        }
    }
    if json.emit(&rows)? {
        return Ok(());
    }
    println!(
        "{}: written by RocksDB {}, read against RocksDB {}",
        path.display(),
        doc.rocksdb_version().unwrap_or("(no version)"),
        catalog.rocksdb_version
    );
    let mut current = String::new();
    let mut unknown = 0;
    for r in &rows {
        let section = r["section"].as_str().unwrap_or_default();
        if section != current {
            println!("\n[{section}]");
            current = section.to_string();
        }
        let value = r["value"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default();
        let mark = if !r["known_to_rocksdb"].as_bool().unwrap_or(true) {
            unknown += 1;
            format!("  <- unknown to RocksDB {}", catalog.rocksdb_version)
        } else if let Some(d) = r["default"].as_str() {
            let differs = d != value
                && !matches!((d.parse::<f64>(), value.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            format!(
                "  # {}{}",
                r["meaning"].as_str().unwrap_or_default(),
                if differs {
                    format!(" (default {d})")
                } else {
                    String::new()
                }
            )
        } else {
            String::new()
        };
        println!("  {key}={value}{mark}");
    }
    if unknown > 0 {
        println!(
            "\n{unknown} key(s) unknown to RocksDB {}: kept when reading; `options calibrate --base` drops them with a note.",
            catalog.rocksdb_version
        );
    }
    Ok(())
}

fn validate(catalog: &Catalog, path: &Path, strict: bool, json: Json) -> Result<()> {
    let doc = OptionsDoc::read(path)?;
    let findings = calibrate::validate(catalog, &doc);
    let errors = findings.iter().filter(|f| f.level == "error").count();
    let warnings = findings.len() - errors;
    let skip_text = json.emit(&serde_json::json!({
        "file": path,
        "rocksdb_version": catalog.rocksdb_version,
        "valid": errors == 0,
        "findings": findings,
    }))?;
    if !skip_text {
        for f in &findings {
            let place = match (f.section.is_empty(), f.key.is_empty()) {
                (true, true) => String::new(),
                (true, false) => format!("{}: ", f.key),
                (false, true) => format!("[{}]: ", f.section),
                (false, false) => format!("[{}] {}: ", f.section, f.key),
            };
            println!("{}: {place}{}", f.level, f.message);
        }
        if errors == 0 {
            println!(
                "{}: valid for RocksDB {} ({warnings} warning(s))",
                path.display(),
                catalog.rocksdb_version
            );
        } else {
            println!(
                "{}: NOT valid for RocksDB {}: {errors} error(s), {warnings} warning(s)",
                path.display(),
                catalog.rocksdb_version
            );
        }
    }
    if errors > 0 || (strict && warnings > 0) {
        return Err(CheckFailed.into());
    }
    Ok(())
}

fn diff(catalog: &Catalog, a: &Path, b: &Path, json: Json) -> Result<()> {
    let da = OptionsDoc::read(a)?;
    let db = OptionsDoc::read(b)?;
    let tuned = Config::new(da.clone()).diff(&Config::new(db.clone()), catalog);
    let raw = raw_diff(&da, &db);
    let tuned_json: Vec<_> = tuned
        .iter()
        .map(|(k, (l, r))| serde_json::json!({"key": k, "a": l, "b": r}))
        .collect();
    if json.emit(&serde_json::json!({"tunable": tuned_json, "raw": raw}))? {
        return Ok(());
    }
    println!("a = {}\nb = {}\n", a.display(), b.display());
    if tuned.is_empty() {
        println!(
            "tunable options: no difference (defaults of RocksDB {} fill in what a file leaves out)",
            catalog.rocksdb_version
        );
    } else {
        println!(
            "tunable options ({} differ; missing keys count as RocksDB {} defaults):",
            tuned.len(),
            catalog.rocksdb_version
        );
        for (k, (l, r)) in &tuned {
            let e = catalog.get(k).expect("diff keys come from the catalog");
            println!(
                "  {k}: {} -> {}    # {}",
                display_value(&e.spec.ty, l),
                display_value(&e.spec.ty, r),
                e.spec.meaning
            );
        }
    }
    if !raw.is_empty() {
        println!("\nevery key that differs, as written ({}):", raw.len());
        for d in &raw {
            println!(
                "  [{}] {}: {} -> {}",
                d.section,
                d.key,
                d.left.as_deref().unwrap_or("(absent)"),
                d.right.as_deref().unwrap_or("(absent)")
            );
        }
    }
    Ok(())
}

fn read_proposal(source: &str) -> Result<String> {
    if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the proposal from standard input")?;
        return Ok(s);
    }
    let bytes = std::fs::read(source).with_context(|| format!("cannot read proposal {source}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn calibrate_cmd(
    catalog: &Catalog,
    source: &str,
    out: &Path,
    args: &CalibrateArgs,
    json: Json,
) -> Result<()> {
    let text = read_proposal(source)?;
    let calibrator = Calibrator::new(catalog, args.options());
    let (base, base_corrections) = args.base(&calibrator)?;
    let result = calibrator.calibrate_text(&base, &text);
    let header = format!(
        "Calibrated by lsmtune {} for RocksDB {}\nbase: {}\nproposal: {}",
        env!("CARGO_PKG_VERSION"),
        catalog.rocksdb_version,
        args.base
            .as_ref()
            .map_or("RocksDB defaults".into(), |p| p.display().to_string()),
        source
    );
    result.config.doc.write(out, &header)?;
    let memory = calibrate::estimate_memory(catalog, &result.config);
    if json.emit(&serde_json::json!({
        "out": out,
        "format": result.format,
        "reasoning": result.reasoning,
        "changes": result.changes,
        "corrections": result.corrections,
        "base_corrections": base_corrections,
        "memory_estimate": memory,
    }))? {
        return Ok(());
    }
    for c in &base_corrections {
        println!("base: {c}");
    }
    println!(
        "read {} entr{} from the proposal (as {})",
        result.proposed,
        if result.proposed == 1 { "y" } else { "ies" },
        result.format
    );
    if result.corrections.is_empty() {
        println!("no corrections");
    } else {
        println!("{} correction(s):", result.corrections.len());
        for c in &result.corrections {
            println!("  {c}");
        }
    }
    if result.changes.is_empty() {
        println!("no change to the base");
    } else {
        println!("{} change(s) to the base:", result.changes.len());
        for (k, v) in &result.changes {
            let e = catalog.get(k).expect("changes are catalog keys");
            println!("  {k} = {}", display_value(&e.spec.ty, v));
        }
    }
    println!(
        "memory estimate: {} (block cache {}, memtables {})",
        human_bytes(memory.total as i64),
        human_bytes(memory.block_cache as i64),
        human_bytes(memory.memtables as i64)
    );
    println!(
        "wrote {} (RocksDB {} opens it)",
        out.display(),
        catalog.rocksdb_version
    );
    Ok(())
}

fn fmt_opt(v: Option<f64>, scale: f64, unit: &str) -> String {
    v.map_or("-".into(), |x| format!("{:.1}{unit}", x * scale))
}

fn bench_cmd(args: &BenchArgs) -> Result<()> {
    // With `--json` the result goes to stdout as JSON, so the text goes to stderr.
    let text_to_stderr = args.json.stdout();
    macro_rules! say {
        ($($t:tt)*) => {
            if text_to_stderr {
                eprintln!($($t)*)
            } else {
                println!($($t)*)
            }
        };
    }
    use crate::bench::{self, BenchEngine};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let workload = args.workload()?;
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if let Some(dir) = &args.work_dir
        && !dir.is_dir()
    {
        bail!("--work-dir {} is not an existing folder", dir.display());
    }
    note_swept(args.work_dir.as_deref());
    let baseline: Option<bench::BenchRun> = match &args.baseline {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --baseline {}", path.display()))?;
            Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "--baseline {} is not a `lsmtune bench --json` file",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let catalog = options::catalog()?;
    let calibrator = Calibrator::new(catalog, CalibrateOptions::default());
    let doc = match &args.options {
        Some(path) => {
            let (config, notes) = calibrator
                .prepare_base(OptionsDoc::read(path)?)
                .with_context(|| format!("--options {}", path.display()))?;
            for n in notes {
                tracing::warn!("{n}");
            }
            config.doc
        }
        None => rocks::linked_defaults()?.clone(),
    };
    let limits = bench::Limits {
        timeout: args.timeout,
        memory: args.memory_limit,
    };
    let live = Arc::new(AtomicU64::new(0));
    let engine: Box<dyn BenchEngine> = match args.engine {
        EngineChoice::Inprocess => Box::new(bench::InProcess {
            exe: bench::worker::worker_exe()?,
            limits,
            live_ops: live.clone(),
        }),
        EngineChoice::DbBench => {
            let path = bench::db_bench::locate(args.db_bench.as_deref())?;
            let engine = bench::DbBench::new(path, limits)?;
            let (_, dropped) = engine.compatible(&doc)?;
            if !dropped.is_empty() {
                let shown: Vec<&str> = dropped.iter().take(6).map(String::as_str).collect();
                tracing::warn!(
                    "{} setting(s) db_bench {} does not know are left out ({}{}); `lsmtune options downgrade` lists them all",
                    dropped.len(),
                    engine.version,
                    shown.join(", "),
                    if dropped.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                );
            }
            Box::new(engine)
        }
    };
    say!(
        "{} on {}: {} keys x ({} + {} bytes), {} thread(s), {} repeat(s)",
        workload.kind,
        engine.name(),
        workload.num,
        workload.key_size,
        workload.value_size,
        workload.threads,
        args.repeats
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let repeat_no = Arc::new(AtomicU64::new(1));
    let ticker = {
        let (bar, done, live, repeat_no) =
            (bar.clone(), done.clone(), live.clone(), repeat_no.clone());
        let repeats = args.repeats;
        std::thread::spawn(move || {
            let mut last = (std::time::Instant::now(), 0u64);
            while !done.load(Ordering::Relaxed) {
                let ops = live.load(Ordering::Relaxed);
                let dt = last.0.elapsed().as_secs_f64();
                let rate = if ops >= last.1 && dt > 0.0 {
                    (ops - last.1) as f64 / dt
                } else {
                    0.0
                };
                last = (std::time::Instant::now(), ops);
                bar.set_message(format!(
                    "repeat {}/{repeats}: {ops} ops ({:.0} ops/s)",
                    repeat_no.load(Ordering::Relaxed),
                    rate
                ));
                bar.tick();
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        })
    };
    let run = bench::run_repeats(
        engine.as_ref(),
        &doc,
        &workload,
        args.repeats,
        args.work_dir.as_deref(),
        |i, outcome| {
            match outcome {
                Ok(m) => bar.println(format!(
                    "  repeat {}: {:.0} ops/s, {:.1} MiB/s, p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
                    i + 1,
                    m.ops_per_sec,
                    m.mb_per_sec,
                    m.latency_us.p50,
                    m.latency_us.p99,
                    m.latency_us.p999
                )),
                Err(f) => bar.println(format!("  repeat {}: FAILED: {f}", i + 1)),
            }
            live.store(0, Ordering::Relaxed);
            repeat_no.store(i as u64 + 2, Ordering::Relaxed);
        },
    );
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    bar.finish_and_clear();
    if let Some(s) = &run.ops_per_sec {
        say!(
            "throughput: {:.0} ops/s +- {:.0} (95% CI, {:.1}%), sd {:.0}, n = {}",
            s.mean,
            s.ci95,
            100.0 * s.rel_ci(),
            s.sd,
            s.n
        );
    }
    if let Some(m) = run.measurements.last() {
        if let Some(d) = &m.diagnostics {
            say!(
                "last run: stall {}, write amplification {}, block cache hit {}, bloom useful {}, L0 files {}",
                fmt_opt(d.stall_share, 100.0, "%"),
                fmt_opt(d.write_amplification, 1.0, "x"),
                fmt_opt(d.block_cache_hit_rate, 100.0, "%"),
                fmt_opt(d.bloom_usefulness, 100.0, "%"),
                d.l0_files
            );
        }
        say!(
            "          size on disk {}, CPU {}, peak RSS {}, fill {:.1} s",
            human_bytes(m.size_on_disk as i64),
            m.cpu_seconds.map_or("-".into(), |c| format!("{c:.1} s")),
            m.peak_rss_bytes
                .map_or("-".into(), |r| human_bytes(r as i64)),
            m.fill_seconds
        );
    }
    if let Some(base) = &baseline {
        if base.workload != run.workload || base.engine != run.engine {
            tracing::warn!("the baseline was measured with another workload or engine");
        }
        match bench::stats::compare(&base.throughputs(), &run.throughputs(), args.min_effect) {
            Some(c) => say!(
                "vs baseline: {} ({:+.1}% [{:+.1}%, {:+.1}%], p = {:.3})",
                c.verdict,
                100.0 * c.effect,
                100.0 * c.effect_low,
                100.0 * c.effect_high,
                c.p_value
            ),
            None => say!("vs baseline: needs at least 2 successful repeats on each side"),
        }
    }
    args.json.emit(&run)?;
    if run.measurements.is_empty() {
        bail!(
            "every repeat failed: {}",
            run.failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

fn models_cmd(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List { json } => {
            let hub = crate::llm::hub::Hub::from_env();
            let sections = crate::llm::inventory::take_stock(&hub);
            if json.emit(&sections)? {
                return Ok(());
            }
            print_stock(&sections);
            Ok(())
        }
        ModelsCommand::Pull { spec, offline } => {
            let hub = crate::llm::hub::Hub::from_env();
            let files = if offline || crate::http::offline_from_env() {
                hub.resolve(&spec)
                    .map_err(|e| anyhow::anyhow!("{e}\n(offline: nothing was downloaded)"))?
            } else {
                hub.pull(&spec)?
            };
            println!("weights:   {}", files.weights.display());
            match &files.tokenizer {
                Some(t) => println!("tokenizer: {}", t.display()),
                None => println!("tokenizer: in the GGUF's metadata"),
            }
            if let Some(c) = &files.tokenizer_config {
                println!("template:  {}", c.display());
            }
            Ok(())
        }
        ModelsCommand::MakeTestModel {
            arch,
            out,
            seed,
            dtype,
            shape,
            format,
        } => {
            use candle_core::quantized::GgmlDType;
            let arch: crate::llm::testmodel::Arch =
                arch.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            use crate::llm::testmodel::Quant;
            let dtype = match dtype.to_ascii_lowercase().as_str() {
                "q8_0" => Quant::Uniform(GgmlDType::Q8_0),
                "q4_0" => Quant::Uniform(GgmlDType::Q4_0),
                "q4_1" => Quant::Uniform(GgmlDType::Q4_1),
                "q5_0" => Quant::Uniform(GgmlDType::Q5_0),
                "q5_1" => Quant::Uniform(GgmlDType::Q5_1),
                "q2_k" => Quant::Uniform(GgmlDType::Q2K),
                "q3_k" => Quant::Uniform(GgmlDType::Q3K),
                "q4_k" => Quant::Uniform(GgmlDType::Q4K),
                "q5_k" => Quant::Uniform(GgmlDType::Q5K),
                "q6_k" => Quant::Uniform(GgmlDType::Q6K),
                "q4_k_m" => Quant::Q4KM,
                "f16" => Quant::Uniform(GgmlDType::F16),
                "bf16" => Quant::Uniform(GgmlDType::BF16),
                "f32" => Quant::Uniform(GgmlDType::F32),
                other => bail!(
                    "--dtype {other}: use q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m, f16, bf16 or f32"
                ),
            };
            let shape = match shape.as_str() {
                "tiny" => crate::llm::testmodel::Shape::TINY,
                "qwen2.5-0.5b" => crate::llm::testmodel::Shape::QWEN2_5_0_5B,
                "qwen2.5-1.5b" => crate::llm::testmodel::Shape::QWEN2_5_1_5B,
                other => bail!("--shape {other}: use tiny, qwen2.5-0.5b or qwen2.5-1.5b"),
            };
            if out.exists()
                && std::fs::read_dir(&out)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                bail!(
                    "{} exists and is not empty; name a new folder",
                    out.display()
                );
            }
            let path = match format.as_str() {
                "gguf" => crate::llm::testmodel::write_gguf(&out, arch, shape, seed, dtype)?,
                "safetensors" => crate::llm::testmodel::write_safetensors(&out, arch, shape, seed)?,
                other => bail!("--format {other}: use gguf or safetensors"),
            };
            println!(
                "wrote {} and {}",
                path.display(),
                out.join("tokenizer.json").display()
            );
            Ok(())
        }
    }
}

/// `models list` as text: a table per store.
fn print_stock(sections: &[crate::llm::inventory::Section]) {
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let places: Vec<String> = s
            .locations
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!("{}: {}", s.title, places.join(", "));
        if s.models.is_empty() {
            println!("  (none)");
            continue;
        }
        let width = s
            .models
            .iter()
            .map(|m| m.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        println!(
            "  {:<width$}  {:<8}  {:<9}  {:>9}  RUNS",
            "MODEL", "ARCH", "QUANT", "SIZE"
        );
        for m in &s.models {
            let size = m
                .size_bytes
                .map(|b| human_bytes(b as i64))
                .unwrap_or_else(|| "-".into());
            let verdict = match &m.why_not {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            };
            println!(
                "  {:<width$}  {:<8}  {:<9}  {:>9}  {verdict}",
                m.name,
                m.arch.as_deref().unwrap_or("-"),
                m.quant.as_deref().unwrap_or("-"),
                size
            );
        }
    }
}

fn llm_cmd(cmd: LlmCommand) -> Result<()> {
    use crate::llm::{GenParams, Llm, Message, local};
    use std::io::Write;
    match cmd {
        LlmCommand::Turns {
            model,
            turns,
            gen_tokens,
            repeats,
            json,
        } => llm::turns_cmd(&model, turns, gen_tokens, repeats, json),
        LlmCommand::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            repeats,
            grammar,
            json,
        } => {
            let files = model.files()?;
            let mut llm = local::LocalModel::load(&files)?;
            llm.reuse_kv = false;
            let mut text = String::from("Tune RocksDB for a write-heavy workload. ");
            while llm.count_tokens(&text)? < prompt_tokens {
                text.push_str(
                    "Compaction, memtables, block cache, bloom filters and write stalls. ",
                );
            }
            let constrained = if grammar {
                let opts = crate::grammar::schema::SchemaOptions {
                    reasoning_chars: 120,
                    ..Default::default()
                };
                let schema =
                    crate::grammar::schema::proposal_schema(crate::options::catalog()?, &opts);
                let t = std::time::Instant::now();
                let g = crate::grammar::Grammar::json_schema(
                    llm.tokenizer(),
                    llm.eos_tokens(),
                    &schema,
                )?;
                tracing::info!(
                    "grammar compiled in {:.2} s for a {}-token vocabulary",
                    t.elapsed().as_secs_f64(),
                    llm.tokenizer().n_ids()
                );
                Some(g)
            } else {
                None
            };
            let mut prefill = Vec::new();
            let mut decode = Vec::new();
            let mut decode_g = Vec::new();
            let mut decode_m = Vec::new();
            let mut masks_prod: Vec<f64> = Vec::new();
            let mut masks = Vec::new();
            let mut forced = 0usize;
            let mut tokens_g = 0usize;
            let mut prompt_len = 0;
            for r in 0..repeats.max(1) {
                let params = GenParams {
                    max_tokens: gen_tokens,
                    temperature: 0.7,
                    seed: r as u64,
                    repeat_penalty: 1.0,
                    ignore_eos: true,
                    ..GenParams::default()
                };
                let prompt = [Message::user(text.clone())];
                // Under the grammar first: every token sampled under its mask (the masking
                // cost alone), then the same seed with forced tokens taken in batches.
                let mut free_len = gen_tokens;
                if let Some(g) = &constrained {
                    let cparams = GenParams {
                        ignore_eos: false,
                        ..params.clone()
                    };
                    for take_forced in [false, true] {
                        let mut con = g.constraint();
                        con.take_forced = take_forced;
                        let c = llm.chat(&prompt, Some(&mut con), &cparams, &mut |_| {})?;
                        if take_forced {
                            decode_g.push(c.decode_tokens_per_second());
                            tokens_g += c.completion_tokens;
                            forced += con.forced;
                            masks_prod.extend_from_slice(&con.mask_seconds);
                        } else {
                            decode_m.push(c.decode_tokens_per_second());
                            masks.extend_from_slice(&con.mask_seconds);
                            // Decode speed falls as the context grows: compare equal lengths.
                            free_len = c.completion_tokens.max(1);
                        }
                    }
                }
                let fparams = GenParams {
                    max_tokens: free_len,
                    ..params
                };
                let c = llm.chat(&prompt, None, &fparams, &mut |_| {})?;
                prompt_len = c.prompt_tokens;
                prefill.push(c.prefill_tokens_per_second());
                decode.push(c.decode_tokens_per_second());
            }
            let p = crate::bench::stats::Summary::of(&prefill);
            let d = crate::bench::stats::Summary::of(&decode);
            let dg = crate::bench::stats::Summary::of(&decode_g);
            let dm = crate::bench::stats::Summary::of(&decode_m);
            let ratio_of = |xs: &[f64]| {
                let r: Vec<f64> = xs.iter().zip(&decode).map(|(g, u)| g / u).collect();
                crate::bench::stats::Summary::of(&r)
            };
            let ratio = ratio_of(&decode_g);
            let ratio_m = ratio_of(&decode_m);
            let mask_p50 = crate::propose::quantile(&masks, 0.5) * 1e6;
            let mask_p99 = crate::propose::quantile(&masks, 0.99) * 1e6;
            let prod_p50 = crate::propose::quantile(&masks_prod, 0.5) * 1e6;
            let prod_p99 = crate::propose::quantile(&masks_prod, 0.99) * 1e6;
            let v = serde_json::json!({"model": llm.name(), "prompt_tokens": prompt_len,
                        "gen_tokens": gen_tokens, "prefill_tok_s": p, "decode_tok_s": d,
                        "constrained_decode_tok_s": dg, "constrained_over_free": ratio,
                        "masked_decode_tok_s": dm, "masked_over_free": ratio_m,
                        "mask_p50_us": grammar.then_some(prod_p50),
                        "mask_p99_us": grammar.then_some(prod_p99),
                        "sampled_masks": masks_prod.len(),
                        "every_position_mask_p50_us": grammar.then_some(mask_p50),
                        "every_position_mask_p99_us": grammar.then_some(mask_p99),
                        "masks": masks.len(), "forced_tokens": forced,
                        "constrained_tokens": tokens_g});
            if !json.emit_text(&v.to_string())? {
                println!(
                    "{}: prompt {prompt_len} tokens, {gen_tokens} generated, {repeats} repeat(s)",
                    llm.name()
                );
                if let (Some(p), Some(d)) = (p, d) {
                    println!(
                        "prefill {:.1} tok/s +- {:.1}, decode {:.1} tok/s +- {:.1} (95% CI)",
                        p.mean, p.ci95, d.mean, d.ci95
                    );
                }
                if let (Some(dm), Some(r)) = (dm, ratio_m) {
                    println!(
                        "masked decode (every token sampled under the mask) {:.1} tok/s +- {:.1}; masked/free {:.3} +- {:.3}",
                        dm.mean, dm.ci95, r.mean, r.ci95
                    );
                }
                if let (Some(dg), Some(r)) = (dg, ratio) {
                    println!(
                        "constrained decode (forced tokens batched) {:.1} tok/s +- {:.1} ({} tokens, {} forced); constrained/free {:.3} +- {:.3}",
                        dg.mean, dg.ci95, tokens_g, forced, r.mean, r.ci95
                    );
                    println!(
                        "mask per sampled token (forced tokens taken, as in use): p50 {prod_p50:.1} us, p99 {prod_p99:.1} us ({} masks)",
                        masks_prod.len()
                    );
                    println!(
                        "mask at every position (nothing forced): p50 {mask_p50:.1} us, p99 {mask_p99:.1} us ({} masks)",
                        masks.len()
                    );
                }
            }
            Ok(())
        }
        LlmCommand::Chat {
            model,
            prompt,
            system,
            max_tokens,
            temperature,
            top_p,
            seed,
        } => {
            let files = model.files()?;
            let load_start = std::time::Instant::now();
            let mut llm = local::LocalModel::load(&files)?;
            tracing::info!(
                "loaded {} in {:.2} s",
                llm.name(),
                load_start.elapsed().as_secs_f64()
            );
            for note in llm.notes() {
                tracing::info!("{note}");
            }
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(Message::system(s));
            }
            messages.push(Message::user(prompt));
            let params = GenParams {
                max_tokens,
                temperature,
                top_p,
                seed,
                ..GenParams::default()
            };
            let mut stdout = std::io::stdout();
            let c = llm.chat(&messages, None, &params, &mut |t| {
                let _ = stdout.write_all(t.as_bytes());
                let _ = stdout.flush();
            })?;
            println!();
            tracing::info!(
                "prompt {} tokens ({:.1} tok/s prefill), reply {} tokens ({:.1} tok/s decode), finished by {:?}",
                c.prompt_tokens,
                c.prefill_tokens_per_second(),
                c.completion_tokens,
                c.decode_tokens_per_second(),
                c.finish
            );
            Ok(())
        }
    }
}
