//! The command line: the top-level parser, one `match` over the commands, how errors print and
//! the exit codes. Each command family owns its arguments and its handler in its own file
//! (`options`, `bench`, `models`, `llm`, `propose` with `grammar`, `tune`, `compare`,
//! `workload`, `export`, `verify`); flags and
//! parsers several commands share are in [`args`]; what goes to standard error in [`log`].
//!
//! Exit codes: 0 success; 1 the check ran and found problems (`options validate`); 2 bad input or
//! an error (unreadable file, bad flag, RocksDB refused the base); 130/143 stopped by SIGINT /
//! SIGTERM; 70 an internal error (a bug).

mod args;
mod bench;
mod compare;
mod export;
mod history;
mod llm;
mod log;
mod models;
mod options;
mod progress;
mod propose;
mod tune;
mod verify;
mod workload;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

pub use args::parse_duration;
pub(crate) use args::{Json, ModelSource, count, fraction, temperature};

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
    /// Only warnings and errors on standard error, no progress bars or notes (tune and compare
    /// still print one line per iteration: the run's record).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tune RocksDB for a workload on this machine, end to end.
    ///
    /// Measures the start, then asks for changes, calibrates them, benchmarks them interleaved
    /// with the best so far, keeps only confirmed gains, feeds the results back, and stops at
    /// convergence. Writes OPTIONS-tuned.ini, report.md, report.json, throughput.svg and
    /// journal.jsonl into --out.
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
    /// Compare proposers fairly on the same workloads, seeds and budgets.
    ///
    /// Every proposer × workload × seed is an ordinary tune with the same workload definition,
    /// seeds and iteration budget, sharing one baseline measurement per workload. Writes
    /// results.md / .csv / .json (gain with CI, iterations to 95% of the best, benchmark and LLM
    /// time, tokens, invalid-proposal rate, corrections, failures) and best_so_far.svg. Running
    /// the same command again resumes it.
    ///
    /// Examples:
    ///   lsmtune compare --proposers expert,random --workloads fillrandom,readrandom --seeds 3 --out cmp
    ///   lsmtune compare --proposers local:qwen2.5-0.5b-instruct,openai:gpt-4o,expert --out cmp2
    ///   lsmtune compare --proposers ollama:qwen2.5:7b,lmstudio,expert --out cmp3
    #[command(verbatim_doc_comment)]
    Compare(compare::CompareArgs),
    /// Work with RocksDB options: the catalog, OPTIONS files, calibration.
    #[command(subcommand)]
    Options(options::OptionsCommand),
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
    #[command(verbatim_doc_comment)]
    Bench(bench::BenchArgs),
    /// Local models: list what is present, download, write a tiny random-weight test model.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Talk to a language model directly.
    #[command(subcommand)]
    Llm(llm::LlmCommand),
    /// Ask a local model for proposals and show them calibrated, without benchmarking.
    ///
    /// What would the model change, and what did the calibrator have to correct? This is the
    /// first turn of a tune with the same flags (`tune --backend local --samples N`), run as
    /// the loop runs it: the same prompt, grammar, seeds and calibration.
    ///
    /// The model decodes under the proposal grammar (see `lsmtune grammar schema`): it can only
    /// write existing option names and values of the right type and range.
    ///
    /// Examples:
    ///   lsmtune models make-test-model --out /tmp/tiny
    ///   lsmtune propose --model /tmp/tiny --workload readrandom --n 3
    ///   lsmtune propose --model qwen2.5-0.5b-instruct --unconstrained
    #[command(verbatim_doc_comment)]
    Propose(propose::ProposeArgs),
    /// The proposal grammar: the JSON Schema generated from the option catalog.
    #[command(subcommand)]
    Grammar(propose::GrammarCommand),
    /// Workloads from the user's world: summarise a RocksDB trace, characterize a live database
    /// from its files, check a workload file.
    #[command(subcommand)]
    Workload(workload::WorkloadCommand),
    /// Export the options a tuned OPTIONS file changes, for a C++, Java, Rust or Go service, or a
    /// TiKV, kvrocks or MyRocks config.
    ///
    /// Only options that differ from the base are written (base: --base, else the run folder's
    /// OPTIONS-base.ini with --run, else the linked RocksDB's defaults), in the target's own names,
    /// types and units. With --run, each line names the measured gain of the step that kept it
    /// (from report.json). An option the target cannot express is listed in a comment block and on
    /// standard error, never dropped silently. --rocksdb-version refuses (exit 2) an option that
    /// version does not know.
    ///
    /// Formats:
    ///   cpp      void ApplyTunedOptions(rocksdb::Options&): options.write_buffer_size = 134217728;
    ///            a BlockBasedTableOptions with NewLRUCache / NewBloomFilterPolicy (RocksDB 7.8+ API)
    ///   java     RocksJava: options.setWriteBufferSize(134217728L); BlockBasedTableConfig
    ///   rust     rust-rocksdb: pub fn apply_tuned_options(opts: &mut rocksdb::Options)
    ///   go       grocksdb: func ApplyTunedOptions(opts *grocksdb.Options)
    ///   tikv     tikv.toml: [rocksdb], [rocksdb.defaultcf] write-buffer-size = "128MB", block cache
    ///            in [storage.block-cache]
    ///   kvrocks  kvrocks.conf: rocksdb.write_buffer_size 128 (MB), rocksdb.block_size 16384
    ///   myrocks  my.cnf [mysqld]: rocksdb_* variables and rocksdb_default_cf_options=...
    ///   ini      the changed keys as an OPTIONS-file fragment, under their sections
    ///
    /// Examples:
    ///   lsmtune export --run lsmtune-readrandom --format cpp --out tuned_options.h
    ///   lsmtune export --run lsmtune-readrandom --format java
    ///   lsmtune export --run lsmtune-readrandom --format rust --out src/tuned_options.rs
    ///   lsmtune export OPTIONS-tuned.ini --base OPTIONS-prod.ini --format tikv --rocksdb-version 8.10
    ///   lsmtune export OPTIONS-tuned.ini --format myrocks >> /etc/mysql/conf.d/rocksdb.cnf
    #[command(verbatim_doc_comment)]
    Export(export::ExportArgs),
    /// Check that a tuned configuration's gain holds at production scale.
    ///
    /// A tune measures a data set that fits in the page cache (300,000 keys, 125 MB); production
    /// databases are 100-10,000x larger, and a gain found in cache can shrink or reverse there.
    /// verify measures the tuned configuration and its start side by side, interleaved and
    /// paired as the tune's final check is, at a larger scale: the keys and operations times
    /// --scale (default 10x), or keys sized to --dataset-size. With --worker-memory the workers
    /// are held below the data (a memory cgroup, page cache included), so reads reach the
    /// device; add --drop-caches to start every run cold.
    ///
    /// The verdict compares the gain at scale with the tune's own final check: it grows (the
    /// whole interval above the tune's estimate), holds (the estimate inside it), shrinks (the
    /// whole interval below it), is not confirmed (no significant difference from the start),
    /// or reverses (the tuned configuration is worse: do not ship it). Runs of the tuned
    /// configuration that die where the start's do not (killed at the --worker-memory limit,
    /// timed out) make the verdict "fails at scale", whatever the finished runs say.
    ///
    /// Examples:
    ///   lsmtune verify --run lsmtune-readrandom                      # 10x the tune's keys
    ///   lsmtune verify --run lsmtune-readrandom --dataset-size 1G --worker-memory 256M --drop-caches
    ///   lsmtune verify --tuned OPTIONS-tuned.ini --base OPTIONS-prod.ini --workload ycsb-a --scale 20x
    ///   lsmtune tune --workload readrandom --verify-scale 10x        # at the end of a tune
    #[command(verbatim_doc_comment)]
    Verify(verify::VerifyArgs),
    /// The tuning memory: past tunes' measured changes, which start the next tune warm.
    ///
    /// Every finished `tune` records what it measured (the machine's class, the workload's
    /// features, each change with its effect and 95% interval, the final check, what it kept)
    /// in one SQLite file: $LSMTUNE_HISTORY, else $XDG_DATA_HOME/lsmtune/history.sqlite (i.e.
    /// ~/.local/share/lsmtune/history.sqlite). The next tune on a similar machine and workload
    /// is shown the nearest past results in its prompt, and the expert, the search and the
    /// model-steered search try what the nearest kept first. `tune --no-history` starts cold;
    /// `compare` always does (it compares proposers, not memories).
    ///
    /// Similar: the same objective, and a machine part (cores and memory in doublings, kind of
    /// storage, CPU model) and a workload part (the share of reads, writes and scans that
    /// differ, data size in factors of ten, value size, threads, key distribution, start) each
    /// at most 1. report.md's History section shows the distance and what differs.
    ///
    /// Examples:
    ///   lsmtune history list
    ///   lsmtune history show 3f2a                          # a unique start of the id
    ///   lsmtune history export --out /shared/lsmtune/$(hostname).jsonl
    ///   lsmtune history import /shared/lsmtune/*.jsonl     # what the fleet learned
    ///   lsmtune history add lsmtune-readrandom             # a run folder from before
    #[command(verbatim_doc_comment, subcommand)]
    History(history::HistoryCommand),
    /// Internal: run one benchmark in this process (started by `bench`).
    #[command(name = "__worker", hide = true)]
    Worker { spec: PathBuf },
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
/// of the same names. Only a regular file is ours: a link (or anything else) under one of those
/// names is someone else's.
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
        .filter(|e| {
            let name = e.file_name();
            !(ours.iter().any(|o| name == *o) && crate::runfolder::is_file(&e.path()))
        })
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match e.file_type() {
                Ok(t) if t.is_symlink() => format!("{name} (a symbolic link)"),
                _ => name,
            }
        })
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
    let mut swept = crate::bench::engine::sweep_stale(work_dir);
    swept.extend(crate::options::rocks::sweep_scratch());
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
        Err(mut e) => {
            args::hint_json_file(&mut e, &std::env::args_os().collect::<Vec<_>>());
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
        Command::Options(cmd) => options::run(cmd),
        Command::Bench(args) => bench::run(&args),
        Command::Models(cmd) => models::run(cmd),
        Command::Llm(cmd) => llm::run(cmd),
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
        Command::Workload(cmd) => workload::run(cmd),
        Command::Export(args) => export::run(&args),
        Command::History(cmd) => history::run(cmd),
        Command::Verify(mut args) => {
            args.run_args.quiet = cli.quiet;
            verify::run(&args)
        }
        Command::Worker { spec } => match crate::bench::worker::worker_main(&spec) {
            0 => Ok(()),
            code => bail!("worker exited with {code}"),
        },
    }
}
