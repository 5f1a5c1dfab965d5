//! `lsmtune tune`: arguments (and those `compare` shares), the live progress line, and the
//! summary at the end. The loop is in [`crate::tune`], the choice of proposer (`--backend`) in
//! [`crate::tune::backend`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use super::args::say;
use super::progress::Spinner;

use crate::bench;
use crate::tune::backend::{self, Backend, EndpointOptions, Request};
use crate::tune::journal::{Decision, Iteration, Record, Settings};
use crate::tune::objective::{Constraint, Goal, Metric};
use crate::tune::{Progress, Tuner};

/// The defaults of `tune` and `compare`: a database larger than a memtable, so flushes and
/// compactions are part of what is measured.
pub const TUNE_SIZES: super::args::SizeDefaults = super::args::SizeDefaults {
    num: 300_000,
    value_size: 400,
    threads: 2,
};

/// RocksDB's memory budget (block cache + memtables): as given, or the default share of the
/// machine; with `--worker-memory`, at most half of what the worker may use (the rest is the
/// process, the index and filter blocks and the page cache the limit also counts), so
/// candidates are not killed for memory the calibrator allowed.
pub fn budget_within(given: Option<u64>, worker_memory: Option<u64>) -> u64 {
    let budget = given.unwrap_or_else(crate::sysinfo::default_memory_budget);
    match worker_memory {
        Some(w) if budget > w / 2 => {
            if given.is_some() {
                tracing::warn!(
                    "--memory-budget {} MiB is more than half of --worker-memory {} MiB: using {} MiB",
                    budget >> 20,
                    w >> 20,
                    (w / 2) >> 20
                );
            }
            w / 2
        }
        _ => budget,
    }
}

/// What to optimize and what must hold, shared by `tune` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct GoalArgs {
    /// What to optimize: throughput (ops/s), p99 or p999 (latency of the measured phase's
    /// operations), write-amp (bytes RocksDB writes per byte written), space-amp (size on disk
    /// per byte of data). Gains read the same way for all: +20% p99 = 1.2x shorter.
    #[arg(long, default_value = "throughput", value_parser = |s: &str| s.parse::<Metric>())]
    pub objective: Metric,
    /// Keep only configurations whose 99th percentile latency stays under this (500us, 5ms),
    /// judged on its 95% interval over the repeats.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| Constraint::parse(Metric::P99, s))]
    pub max_p99: Option<Constraint>,
    /// As --max-p99, for the 99.9th percentile.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| Constraint::parse(Metric::P999, s))]
    pub max_p999: Option<Constraint>,
    /// Keep only configurations whose write amplification stays under this (e.g. 10).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| Constraint::parse(Metric::WriteAmp, s))]
    pub max_write_amp: Option<Constraint>,
    /// Keep only configurations whose size on disk per byte of data stays under this (1.5).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| Constraint::parse(Metric::SpaceAmp, s))]
    pub max_space_amp: Option<Constraint>,
    /// Keep only configurations that still do at least this many ops/s.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| Constraint::parse(Metric::Throughput, s))]
    pub min_throughput: Option<Constraint>,
}

impl GoalArgs {
    pub fn goal(&self) -> Goal {
        Goal {
            objective: self.objective,
            constraints: [
                self.max_p99,
                self.max_p999,
                self.max_write_amp,
                self.max_space_amp,
                self.min_throughput,
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

/// Where the OpenAI-compatible endpoint is, shared by `tune` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// OpenAI-compatible endpoint, up to /v1 (else OPENAI_BASE_URL). With --backend ollama or
    /// lmstudio: where that server is, instead of its default address.
    #[arg(long)]
    pub openai_base_url: Option<String>,
    /// The environment variable holding the API key (the key itself is never a flag). Default
    /// OPENAI_API_KEY for an OpenAI-compatible endpoint; Ollama and LM Studio get a key only
    /// when this is given (a proxy in front of them may want one).
    #[arg(long)]
    pub openai_api_key_env: Option<String>,
    /// Per-request timeout of the endpoint.
    #[arg(long, value_parser = super::parse_duration, default_value = "120s")]
    pub openai_timeout: Duration,
}

impl EndpointArgs {
    pub fn options(&self) -> EndpointOptions {
        EndpointOptions {
            base_url: self.openai_base_url.clone(),
            api_key_env: self.openai_api_key_env.clone(),
            timeout: self.openai_timeout,
        }
    }
}

/// How benchmark runs are executed and shown, shared by `tune` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Folder in which benchmark run folders are created and removed (default: temp folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Stop a benchmark run that takes longer than this.
    #[arg(long, value_parser = super::args::run_timeout, default_value = "5m")]
    pub run_timeout: Duration,
    /// Stop a benchmark run whose memory exceeds this (size or share of memory).
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget, default_value = "75%")]
    pub memory_limit: u64,
    /// Confine each benchmark worker to this much memory, page cache included (a memory
    /// cgroup: v2 where delegated, else v1; needs root or a delegated cgroup, else an error that
    /// says why), so a data set larger than it really reads from the device (see
    /// --dataset-size). The report states what applied.
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget)]
    pub worker_memory: Option<u64>,
    /// Drop the page cache before each run, so each starts cold (root only).
    #[arg(long)]
    pub drop_caches: bool,
    /// No progress line (set by the global `-q/--quiet`).
    #[arg(skip)]
    pub quiet: bool,
}

impl RunArgs {
    /// The in-process engine with these limits, and its live operation counter. Checks
    /// --work-dir first.
    pub fn engine(&self) -> Result<(bench::InProcess, Arc<AtomicU64>)> {
        if let Some(dir) = &self.work_dir
            && !dir.is_dir()
        {
            bail!("--work-dir {} is not an existing folder", dir.display());
        }
        let live_ops = Arc::new(AtomicU64::new(0));
        let engine = bench::InProcess {
            exe: bench::worker::worker_exe()?,
            limits: bench::Limits {
                timeout: self.run_timeout,
                memory: self.memory_limit,
                cage: self.worker_memory,
                drop_caches: self.drop_caches,
            },
            live_ops: live_ops.clone(),
        };
        Ok((engine, live_ops))
    }
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// The report (report.json's content) on stdout instead of the summary (--json=FILE: into
    /// FILE, summary as usual).
    #[command(flatten)]
    pub json: super::Json,
    /// The workload to tune for, as `lsmtune bench --workload`: a name (fillrandom, readrandom,
    /// ycsb-a, mixgraph, ...), a workload file (.toml, .json, YCSB properties), or trace:FILE.
    #[arg(long, default_value = "fillrandom", value_parser = |s: &str| s.parse::<bench::workload_file::Source>())]
    pub workload: bench::workload_file::Source,
    /// Who proposes changes.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// A local model (path, manifest name, ollama:NAME[:TAG], lmstudio:PUBLISHER/REPO, or
    /// ORG/REPO[:FILE]; see `lsmtune models list`). With --backend ollama or lmstudio: the
    /// model's name at that server (e.g. qwen2.5:7b).
    #[arg(long)]
    pub model: Option<String>,
    /// Never touch the network for models (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Model name at the endpoint (else OPENAI_MODEL, else gpt-4o).
    #[arg(long)]
    pub openai_model: Option<String>,
    /// Most iterations (benchmarked candidates).
    #[arg(long, value_parser = super::count::<usize, 1, 10000>, default_value_t = 8)]
    pub iterations: usize,
    /// Stop starting new iterations once this much time has passed (e.g. 10m, 1h).
    #[arg(long, value_parser = super::parse_duration)]
    pub time_budget: Option<Duration>,
    /// Output folder (created; must not hold another tune unless --resume, nor other files
    /// unless --force).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write into an --out folder that holds files lsmtune did not make (report.md and the
    /// other outputs would be overwritten).
    #[arg(long)]
    pub force: bool,
    /// Continue the tune in this folder (its journal.jsonl), with its original settings.
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Starting OPTIONS file (default: the linked RocksDB's defaults), or a database folder to
    /// start from its newest OPTIONS file (read only; the database is not opened).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// What a proposal may change and RocksDB's memory budget (as in `compare`, `propose`).
    #[command(flatten)]
    pub proposal: super::args::ProposalArgs,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Converged after this many iterations in a row without a kept gain.
    #[arg(long, value_parser = super::count::<usize, 1, 10000>, default_value_t = 3)]
    pub patience: usize,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
    #[command(flatten)]
    pub goal: GoalArgs,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also write what the tune changed in the form a service deploys, as export.EXT in --out
    /// and at the end of report.md: cpp, java, rust, go, tikv, kvrocks, myrocks or ini
    /// (comma-separated; see `lsmtune export`).
    #[arg(long, value_parser = crate::export::Format::parse, value_delimiter = ',')]
    pub export: Vec<crate::export::Format>,
    /// At the end, check that the gain holds at a larger scale (10x: ten times the keys and
    /// operations), the tuned configuration and the start side by side, as `lsmtune verify
    /// --run` does; the verdict goes into report.md and verify.json. With --worker-memory the
    /// verification runs in the same cage.
    #[arg(long, value_name = "SCALE", value_parser = crate::verify::Scale::parse_factor)]
    pub verify_scale: Option<crate::verify::Scale>,
    /// Start cold: neither read the history of past tunes nor record this one in it.
    #[arg(long)]
    pub no_history: bool,
    /// The history of past tunes (default: $LSMTUNE_HISTORY, else
    /// $XDG_DATA_HOME/lsmtune/history.sqlite, i.e. ~/.local/share/lsmtune/history.sqlite;
    /// LSMTUNE_HISTORY=off turns it off). A finished tune records its measured changes there;
    /// the next tune on a similar machine and workload is shown the nearest past results and
    /// tries what they kept first (see `lsmtune history`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_history")]
    pub history: Option<PathBuf>,
    /// Sampling temperature of the model.
    #[arg(long, value_parser = super::temperature, default_value_t = 0.6)]
    pub temperature: f64,
    /// Longest model reply, in tokens.
    #[arg(long, value_parser = super::count::<usize, 1, 1048576>, default_value_t = 768)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub model_args: ModelTuningArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How a model proposer is prompted and sampled, and value refinement; shared by `tune` and
/// `compare`.
#[derive(Debug, Clone, Args)]
pub struct ModelTuningArgs {
    /// What a model is told besides throughput and latency: `none` (every option, no
    /// interpretation), `diagnostics` (plus what the measurements show in plain words), or
    /// `knowledge` (plus tuning hints for those symptoms, and only the options that matter).
    /// An ablation switch: recorded in the journal and the compare table.
    #[arg(long, value_enum, default_value_t = crate::tune::prompt::HintLevel::Knowledge)]
    pub hints: crate::tune::prompt::HintLevel,
    /// Replies a model samples per turn (the first greedy); the loop keeps the one most replies
    /// agree on. Default: 3 for a local model, 1 for an endpoint (each reply is a paid request).
    #[arg(long, value_parser = super::count::<usize, 0, 32>)]
    pub samples: Option<usize>,
    /// No value refinement: after a kept change of a numeric option, do not try a further step
    /// the same way before asking the proposer again.
    #[arg(long)]
    pub no_refine: bool,
    /// A model names the options and the direction, a value search finds their values: once a
    /// change of the model's is kept, the next turns search the kept options' values until two
    /// searched candidates in a row are not kept, then the model is asked again. `off` asks the
    /// model every turn (with value refinement instead), an ablation switch.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub search: Switch,
    /// The value search's optimizer: tpe (Tree-structured Parzen Estimator) or gp (a Gaussian
    /// process with expected improvement); also that of --backend search.
    #[arg(long, value_enum, default_value_t = crate::tune::search::Method::Tpe)]
    pub search_method: crate::tune::search::Method,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    pub fn on(self) -> bool {
        self == Switch::On
    }
}

/// How candidates are measured and judged, shared by `tune` and `compare`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Repeats per measurement (each candidate is measured interleaved with the best so far).
    #[arg(long, value_parser = super::count::<usize, 1, 10000>, default_value_t = 3)]
    pub repeats: usize,
    /// Extra interleaved repeats that must confirm a gain before it is kept.
    #[arg(long, value_parser = super::count::<usize, 0, 10000>, default_value_t = 2)]
    pub confirm: usize,
    /// Smallest relative gain that counts (0.03 = 3%).
    #[arg(long, allow_hyphen_values = true, value_parser = super::fraction, default_value_t = 0.03)]
    pub min_effect: f64,
    /// Most interleaved rounds a candidate gets: one whose gain is large but not yet
    /// significant after --repeats + --confirm rounds is measured on up to this many before its
    /// verdict (a group-sequential design keeps the false-gain rate at 2.5% one-sided over all
    /// looks); one whose first round is clearly worse than the best stops after it.
    #[arg(long, value_parser = super::count::<usize, 2, 10000>, default_value_t = 8)]
    pub max_rounds: usize,
}

impl TuneArgs {
    /// The settings these flags give, checked by [`Settings::validate`] (as a resumed
    /// journal's are).
    pub(super) fn settings(&self) -> Result<Settings> {
        let mut w = self.shape.build(&self.workload, &TUNE_SIZES)?;
        w.seed = self.seed;
        let settings = Settings {
            goal: self.goal.goal(),
            workload: w,
            base_file: match &self.base {
                Some(p) => Some(crate::options::ini::options_file("--base", p)?),
                None => None,
            },
            iterations: self.iterations,
            time_budget_secs: crate::tune::secs(self.time_budget),
            repeats: self.judge.repeats,
            confirm_repeats: self.judge.confirm,
            min_effect: self.judge.min_effect,
            patience: self.patience.max(1),
            memory_budget: budget_within(self.proposal.memory_budget, self.run.worker_memory),
            allow_unsafe: self.proposal.schema.allow_unsafe,
            max_changes: self.proposal.schema.max_changes,
            reasoning_chars: self.proposal.schema.reasoning_chars,
            backend: self.backend.name().into(),
            model: self.request().recorded_model(),
            seed: self.seed,
            hints: self.model_args.hints,
            samples: self.model_args.samples.unwrap_or(0),
            refine: !self.model_args.no_refine,
            max_rounds: self.judge.max_rounds,
            search: self.model_args.search.on(),
            search_method: self.model_args.search_method,
        };
        settings.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(settings)
    }
}

/// The live progress line: phase, then tokens/s while a model writes, ops/s while a benchmark
/// runs; one printed line per finished iteration.
pub(super) struct Live {
    pub bar: indicatif::ProgressBar,
    phase: Mutex<String>,
    tokens: AtomicU64,
    text_start: Mutex<Option<Instant>>,
}

impl Progress for Live {
    fn phase(&self, text: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
        self.tokens.store(0, Ordering::Relaxed);
        *self.text_start.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    fn text(&self, _piece: &str) {
        let mut s = self.text_start.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(Instant::now());
        }
        self.tokens.fetch_add(1, Ordering::Relaxed);
    }
    fn repeat(&self, label: &str, ops: Option<f64>) {
        let what = match ops {
            Some(o) => format!("{o:.0} ops/s"),
            None => "failed".into(),
        };
        self.bar.println(format!("    {label}: {what}"));
    }
    fn iteration(&self, it: &Iteration) {
        // With --quiet the bar is hidden: iteration lines and notes still go to the log.
        let say = |line: String| {
            if self.bar.is_hidden() {
                eprintln!("{line}");
            } else {
                self.bar.println(line);
            }
        };
        say(iteration_line(it));
        let notices = it.llm.iter().flat_map(|l| l.notices.iter());
        for n in notices.chain(it.notes.iter()) {
            say(format!("    note: {n}"));
        }
    }
}

fn iteration_line(it: &Iteration) -> String {
    let changes: Vec<String> = it.changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let effect = it
        .comparison
        .map(|c| {
            format!(
                "{:+.1}% [{:+.1}, {:+.1}]",
                c.effect * 100.0,
                c.effect_low * 100.0,
                c.effect_high * 100.0
            )
        })
        .unwrap_or_default();
    let decision = match it.decision {
        Decision::Accepted => "KEPT".to_string(),
        Decision::Rejected => "not kept".to_string(),
        Decision::NoChange => "nothing to change".to_string(),
        Decision::Repeat => "repeated measured configurations: nothing run".to_string(),
        Decision::Failed => format!("failed: {}", it.failure.as_deref().unwrap_or("?")),
    };
    format!(
        "iteration {} ({}): {} {} -> {}",
        it.iteration,
        it.proposer,
        if changes.is_empty() {
            "-".to_string()
        } else {
            changes.join(", ")
        },
        effect,
        decision
    )
}

impl TuneArgs {
    /// The proposer these flags ask for.
    fn request(&self) -> Request {
        Request {
            backend: self.backend,
            model: self.model.clone(),
            offline: self.offline,
            endpoint: self.endpoint.options(),
            openai_model: self.openai_model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            seed: self.seed,
            hints: self.model_args.hints,
            samples: self.model_args.samples.unwrap_or(0),
        }
    }
}

/// A live progress line (spinner, phase, pieces/s while a model writes, ops/s while a
/// benchmark runs; [`super::progress::Spinner`]); `stop` ends it.
pub(super) struct LiveLine {
    pub live: Arc<Live>,
    spinner: Spinner,
}

impl LiveLine {
    pub fn start(quiet: bool, live_ops: Arc<AtomicU64>) -> LiveLine {
        let spinner = Spinner::new(quiet);
        let live = Arc::new(Live {
            bar: spinner.bar.clone(),
            phase: Mutex::new(String::new()),
            tokens: AtomicU64::new(0),
            text_start: Mutex::new(None),
        });
        let spinner = {
            let live = live.clone();
            spinner.run(live_ops, move |_, rate| {
                let phase = live.phase.lock().map(|p| p.clone()).unwrap_or_default();
                let tokens = live.tokens.load(Ordering::Relaxed);
                let extra = match *live.text_start.lock().unwrap_or_else(|e| e.into_inner()) {
                    Some(t) if tokens > 0 => format!(
                        " · {tokens} pieces, {:.1}/s",
                        tokens as f64 / t.elapsed().as_secs_f64().max(1e-3)
                    ),
                    _ if rate > 0.0 => format!(" · {rate:.0} ops/s"),
                    _ => String::new(),
                };
                format!("{phase}{extra}")
            })
        };
        LiveLine { live, spinner }
    }

    pub fn stop(&mut self) {
        self.spinner.stop();
    }
}

pub fn tune_cmd(args: TuneArgs) -> Result<()> {
    // Settings: from the journal when resuming, else from the flags.
    let (settings, out) = match &args.resume {
        Some(dir) => {
            let Record::Start { settings, .. } = crate::tune::journal::first(dir)? else {
                bail!("{} holds no tune to resume", dir.display());
            };
            // Checked before anything acts on them (a model the journal names is not loaded
            // for settings the flags would refuse).
            settings.validate().map_err(|e| {
                anyhow::anyhow!(
                    "{} line 1: its settings are not valid: {e} (was it edited? lsmtune wrote \
                     no such record)",
                    dir.join(crate::tune::journal::FILE).display()
                )
            })?;
            (*settings, dir.clone())
        }
        None => {
            let s = args.settings()?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("lsmtune-{}", args.workload.label())));
            // Never into the database folder --base reads, never over an input.
            if let Some(base) = args.base.as_deref().filter(|b| b.is_dir()) {
                super::args::refuse_output_inside("--out", &out, base)?;
                if let Some(file) = args.json.file() {
                    super::args::refuse_output_inside("--json", file, base)?;
                }
            }
            let mut inputs: Vec<&std::path::Path> = args.base.iter().map(|p| p.as_path()).collect();
            if let bench::workload_file::Source::File(p) | bench::workload_file::Source::Trace(p) =
                &args.workload
            {
                inputs.push(p);
            }
            args.json.refuse_inputs(&inputs)?;
            if !crate::runfolder::is_file(&out.join(crate::tune::journal::FILE)) {
                super::check_out_is_ours(
                    &out,
                    &[crate::tune::lock::FILE, crate::tune::BASE_FILE],
                    args.force,
                )?;
            }
            (s, out)
        }
    };
    if args.resume.is_some()
        && let Some(done) = crate::tune::rewrite_finished(&out)?
    {
        // Finished already: the report rewritten from the journal; no proposer (no endpoint,
        // no model) is needed for that. Recorded in the history if it is not there yet.
        if !args.no_history
            && let Some(path) = crate::history::location(args.history.as_deref())
        {
            remember(&path, &out);
        }
        reappend_sections(&out, &args.export)?;
        return show(&args, &settings, &out, done);
    }
    let (engine, live_ops) = args.run.engine()?;
    crate::sysinfo::check_room(args.run.work_dir.as_deref(), &settings.workload)
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut request = args.request();
    if args.resume.is_some() {
        // A resumed run asks for the same kind of proposer it had.
        request.resuming(&settings);
    }
    let (mut proposer, reason) = backend::choose(&request, &settings)?;
    tracing::info!("proposer: {} ({reason})", proposer.name());
    crate::interrupt::install();
    super::note_swept(args.run.work_dir.as_deref());

    let history = if args.no_history {
        None
    } else {
        crate::history::location(args.history.as_deref())
    };
    // A resumed tune keeps the warm start its journal holds.
    let past = match (&history, &args.resume) {
        (Some(path), None) => {
            let p = crate::history::Past::read(path);
            for w in &p.warnings {
                tracing::warn!("{w}");
            }
            Some(p)
        }
        _ => None,
    };
    let mut line = LiveLine::start(args.run.quiet, live_ops);
    let tuner = Tuner {
        past: past.as_ref(),
        settings: settings.clone(),
        out: out.clone(),
        engine: &engine,
        work_dir: args.run.work_dir.clone(),
        progress: line.live.as_ref(),
        proposer_reason: reason,
        baseline: None,
    };
    let w = &settings.workload;
    tracing::info!(
        "tuning {} ({} keys x {} + {} bytes, {} threads) into {}",
        crate::input::clip(&w.label()),
        w.num,
        w.key_size,
        w.value_size,
        w.threads,
        out.display()
    );
    let result = if args.resume.is_some() {
        tuner.resume(proposer.as_mut())
    } else {
        tuner.start(proposer.as_mut())
    };
    line.stop();
    let done = result.map_err(|e| {
        super::resumable(
            e,
            &out,
            &format!("`lsmtune tune --resume {}`", out.display()),
        )
    })?;
    let end = done.end.clone();
    if let Some(path) = &history {
        remember(path, &out);
    }
    show(&args, &settings, &out, done)?;
    match args.verify_scale {
        Some(scale) => verify_tune(&args, &engine, &settings, &out, &end, scale),
        None => Ok(()),
    }
}

/// Record a finished tune in the history; a history that cannot be written is a warning (the
/// tune itself is done and in its folder).
fn remember(path: &std::path::Path, out: &std::path::Path) {
    match crate::tune::warm::record(path, out) {
        Ok((t, true)) => tracing::info!(
            "recorded in the history {} as {} ({} measured changes)",
            path.display(),
            t.id,
            t.steps.len()
        ),
        Ok((t, false)) => tracing::info!("already in the history {} as {}", path.display(), t.id),
        Err(e) => tracing::warn!(
            "this tune could not be recorded in the history: {}",
            crate::input::clip_message(&format!("{e:#}"))
        ),
    }
}

/// `--verify-scale`: the tuned configuration against the start at `scale`, the verdict printed,
/// written to verify.json and appended to report.md.
fn verify_tune(
    args: &TuneArgs,
    engine: &dyn crate::bench::BenchEngine,
    settings: &Settings,
    out: &std::path::Path,
    end: &Record,
    scale: crate::verify::Scale,
) -> Result<()> {
    let text_to_stderr = args.json.stdout();
    // No comparison at the end: nothing was kept, the tuned file is the start.
    let comparison = match end {
        Record::End {
            comparison: Some(c),
            kept_base: false,
            ..
        } => Some(*c),
        _ => {
            say!(
                text_to_stderr,
                "verify at scale: skipped, the tune kept its start (nothing to verify)"
            );
            return Ok(());
        }
    };
    let base = crate::runfolder::read_options(&out.join(crate::tune::BASE_FILE))?;
    let tuned = crate::runfolder::read_options(&out.join(crate::tune::TUNED_FILE))?;
    let v = super::verify::verify_with(
        engine,
        &args.run,
        &base,
        &tuned,
        &settings.workload,
        scale,
        settings.repeats + settings.confirm_repeats,
        settings.goal.clone(),
        settings.min_effect,
        settings.seed.wrapping_add(7_777_777),
        comparison,
    )?;
    crate::runfolder::write(
        &out.join("verify.json"),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )?;
    crate::runfolder::append(
        &out.join("report.md"),
        crate::verify::markdown(&v).as_bytes(),
    )?;
    for line in crate::verify::text(&v).lines() {
        say!(text_to_stderr, "{line}");
    }
    say!(
        text_to_stderr,
        "wrote {} (and the verdict into report.md)",
        out.join("verify.json").display()
    );
    Ok(())
}

/// Write the tune's changes in each of `formats` into the run folder (`export.EXT`, never through
/// a link) and append them to report.md; the files written.
fn export_into(out: &std::path::Path, formats: &[crate::export::Format]) -> Result<Vec<PathBuf>> {
    let inputs = crate::export::Inputs {
        tuned: None,
        base: None,
        run: Some(out.to_path_buf()),
    };
    let mut report = String::new();
    let mut written = Vec::new();
    for &f in formats {
        let r = crate::export::export(&inputs, f, None)?;
        let path = out.join(crate::export::run_file_name(f));
        crate::runfolder::write(&path, r.text.as_bytes())?;
        report.push_str(&export_section(f, &r.text));
        written.push(path);
    }
    crate::runfolder::append(&out.join("report.md"), report.as_bytes())?;
    Ok(written)
}

/// report.md's section for one export.
fn export_section(f: crate::export::Format, text: &str) -> String {
    format!(
        "\n## Export: {}\n\n`{}`:\n\n```\n{text}```\n",
        f.name(),
        crate::export::run_file_name(f)
    )
}

/// `--resume` of a finished tune rewrites report.md from the journal; the sections the tune
/// appended after it finished (its exports, its verification at scale) are appended again from
/// the files they left (export.EXT, verify.json), in the order the tune wrote them. Formats
/// `--export` asks for again are left to it.
fn reappend_sections(out: &std::path::Path, exporting: &[crate::export::Format]) -> Result<()> {
    let mut report = String::new();
    for f in crate::export::Format::ALL {
        if exporting.contains(&f) {
            continue;
        }
        if let Some(bytes) =
            crate::runfolder::read_if_exists(&out.join(crate::export::run_file_name(f)))?
        {
            report.push_str(&export_section(f, &String::from_utf8_lossy(&bytes)));
        }
    }
    if let Some(bytes) = crate::runfolder::read_if_exists(&out.join("verify.json"))? {
        match serde_json::from_slice::<crate::verify::Verification>(&bytes) {
            Ok(v) => report.push_str(&crate::verify::markdown(&v)),
            Err(e) => tracing::warn!(
                "{}: not a verification lsmtune wrote ({e}); its section is left out of report.md",
                out.join("verify.json").display()
            ),
        }
    }
    if !report.is_empty() {
        crate::runfolder::append(&out.join("report.md"), report.as_bytes())?;
    }
    Ok(())
}

/// What a finished tune prints: why it stopped, the final check, the changes and the files.
fn show(
    args: &TuneArgs,
    settings: &Settings,
    out: &std::path::Path,
    done: crate::tune::Finished,
) -> Result<()> {
    let crate::tune::Finished { end, report } = done;
    // With bare --json the report is the output and the summary goes to stderr.
    let text_to_stderr = args.json.emit(&report)? && args.json.stdout();
    if let Record::End {
        reason,
        comparison,
        kept_base,
        ..
    } = &end
    {
        say!(text_to_stderr, "stopped: {reason}");
        match (comparison, kept_base) {
            (Some(c), false) => say!(
                text_to_stderr,
                "tuned vs start, {}: {:+.1}% (95% interval {:+.1}% to {:+.1}%, {})",
                settings.goal.objective,
                c.effect * 100.0,
                c.effect_low * 100.0,
                c.effect_high * 100.0,
                c.verdict
            ),
            (Some(c), true) => say!(
                text_to_stderr,
                "the best candidate was not confirmed at the end ({:+.1}%): kept the start",
                c.effect * 100.0
            ),
            _ => say!(text_to_stderr, "no candidate beat the start: kept it"),
        }
    }
    for c in &report.changes {
        say!(text_to_stderr, "  {}: {} -> {}", c.key, c.start, c.tuned);
    }
    say!(
        text_to_stderr,
        "wrote {} and {} (report.json, throughput.svg, journal.jsonl)",
        crate::tune::tuned_file(out).display(),
        out.join("report.md").display()
    );
    if !args.export.is_empty() {
        for f in export_into(out, &args.export)? {
            say!(text_to_stderr, "wrote {}", f.display());
        }
    }
    let its = &report.iterations;
    if let Some(last) = crate::tune::never_proposed(its) {
        bail!(
            "no proposal could be obtained in {} iteration(s), so nothing was tuned (the start was kept); last failure: {last}",
            its.len()
        );
    }
    Ok(())
}
