//! `lsmtune compare`: run proposers × workloads × seeds as ordinary tunes under one folder,
//! sharing one baseline measurement per workload, then write one table and one plot. Running the
//! same command again resumes: finished tunes are skipped, an interrupted one continues.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::tune::{EndpointArgs, GoalArgs, JudgeArgs, LiveLine, RunArgs, TUNE_SIZES};
use crate::bench;
use crate::bench::workload_file::Source;
use crate::compare::{self, ProposerSpec, Variant, shard};
use crate::tune::backend::{self, Backend, Request};
use crate::tune::journal::{self, Record, Sample, Settings};
use crate::tune::{Tuner, measure_start};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CompareArgs {
    /// The result rows (results.json's content) on stdout instead of the table (--json=FILE:
    /// into FILE, table as usual).
    #[command(flatten)]
    pub json: super::Json,
    /// Comma-separated: local:MODEL (run here), openai:MODEL (the endpoint), ollama[:MODEL] and
    /// lmstudio[:MODEL] (those servers; no MODEL: the one they have loaded), expert, random.
    #[arg(long, default_value = "expert,random")]
    pub proposers: String,
    /// Comma-separated workloads.
    #[arg(long, default_value = "fillrandom,readrandom")]
    pub workloads: String,
    /// Tunes per proposer and workload, with seeds 1..=N.
    #[arg(long, value_parser = super::count::<u64, 1, 1000>, default_value_t = 3)]
    pub seeds: u64,
    /// Iterations per tune (the same budget for every proposer; tune's default).
    #[arg(long, value_parser = super::count::<usize, 1, 10000>, default_value_t = 8)]
    pub iterations: usize,
    /// Output folder; run the same command again to resume. Must not hold other files unless
    /// --force. With --shard, this shard's folder (e.g. results/shard-$SLURM_ARRAY_TASK_ID).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (counted from 0) of the proposer x workload x seed matrix, for a
    /// cluster: each shard is an ordinary resumable compare folder with its own baselines, and
    /// `lsmtune compare merge` combines them. The split is computed alike by every shard and
    /// balanced by expected cost. `auto` reads a Slurm array's SLURM_ARRAY_TASK_ID (of
    /// SLURM_ARRAY_TASK_COUNT) or a Kubernetes indexed job's JOB_COMPLETION_INDEX (of
    /// --shard-count).
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// How many shards, for --shard auto in a Kubernetes indexed job (its completions).
    #[arg(long, value_parser = super::count::<usize, 1, 10000>)]
    pub shard_count: Option<usize>,
    #[command(subcommand)]
    pub command: Option<CompareCommand>,
    /// Write into an --out folder that holds files lsmtune did not make (results.* and the plot
    /// would be overwritten); and start over the baselines and tunes stored with other settings
    /// than this command's (the old ones are moved aside, to NAME.stale-SECONDS).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Stop a tune after this many iterations without a kept gain (default: never, so every
    /// proposer gets the same number of candidates).
    #[arg(long, value_parser = super::count::<usize, 1, 10000>)]
    pub patience: Option<usize>,
    /// What a proposal may change and RocksDB's memory budget, as in `tune`.
    #[command(flatten)]
    pub proposal: super::args::ProposalArgs,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
    #[command(flatten)]
    pub goal: GoalArgs,
    #[arg(long)]
    pub offline: bool,
    /// The endpoint of openai:MODEL proposers (or where the ollama / lmstudio server is).
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[arg(long, value_parser = super::temperature, default_value_t = 0.6)]
    pub temperature: f64,
    #[arg(long, value_parser = super::count::<usize, 1, 1048576>, default_value_t = 768)]
    pub max_tokens: usize,
    /// Hint levels each model proposer is run with (an ablation: each level is its own row),
    /// comma-separated: none, diagnostics, knowledge.
    #[arg(long, default_value = "knowledge", value_delimiter = ',')]
    pub hints: Vec<crate::tune::prompt::HintLevel>,
    /// Replies a model samples per turn (default: 3 local, 1 endpoint).
    #[arg(long, value_parser = super::count::<usize, 0, 32>)]
    pub samples: Option<usize>,
    /// No value refinement (for every proposer).
    #[arg(long)]
    pub no_refine: bool,
    /// Whether a value search refines each model proposer's kept choices (an ablation: each
    /// value is its own row), comma-separated: on, off.
    #[arg(long, value_enum, default_value = "on", value_delimiter = ',')]
    pub search: Vec<super::tune::Switch>,
    /// The optimizer of the model proposers' value search (search:METHOD proposers name their
    /// own).
    #[arg(long, value_enum, default_value_t = crate::tune::search::Method::Tpe)]
    pub search_method: crate::tune::search::Method,
    /// A folder of best-known configurations, WORKLOAD.ini each (benches/headroom/ holds the
    /// ones the long searches found here): each workload's is measured against the shared
    /// start like a tune's final check, and every proposer's gain is also reported as a share
    /// of it, on a log scale (log gain / log best-known gain).
    #[arg(long)]
    pub best_known: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum CompareCommand {
    /// Combine the shards of a compare run on several machines into one table and plot.
    ///
    /// Each SHARD_DIR is the --out of one `compare --shard I/N` (or --shard auto) run. The
    /// shards must be the whole of one compare: the same proposers, workloads (definitions
    /// included), seeds, settings and lsmtune binary, and every index once; a difference is
    /// refused with what differs. Each tune is copied into OUT/runs/ (each shard's baselines
    /// under OUT/baselines/shard-I/), and OUT gets results.md, .csv, .json and best_so_far.svg
    /// as one compare would write them. When the shards ran on machines that differ (cores,
    /// memory, storage), results.md says so. Merging again (more shards finished) updates OUT.
    ///
    /// Example:
    ///   sbatch --array=0-3 docs/deploy/compare.sbatch     # each task: --shard auto --out cmp/shard-$ID
    ///   lsmtune compare merge cmp/merged cmp/shard-*
    #[command(verbatim_doc_comment)]
    Merge {
        /// The merged compare folder (new, or an earlier merge's).
        out: PathBuf,
        /// The shards' folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Write into an OUT that holds files lsmtune did not make.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: super::Json,
    },
}

impl CompareArgs {
    /// The output folder (required by clap unless `merge` is run, which has its own).
    fn out(&self) -> &std::path::Path {
        self.out.as_deref().unwrap_or(std::path::Path::new("."))
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn compare_cmd(args: CompareArgs) -> Result<()> {
    if let Some(CompareCommand::Merge {
        out,
        shards,
        force,
        json,
    }) = &args.command
    {
        return merge_cmd(out, shards, *force, json);
    }
    if args.hints.is_empty() {
        bail!("--hints must name at least one level (none, diagnostics, knowledge)");
    }
    if args.search.is_empty() {
        bail!("--search must name at least one of on, off");
    }
    let searches: Vec<bool> = args.search.iter().map(|s| s.on()).collect();
    // Each proposer with the text that named it (a shard records it for the merge).
    let mut proposers = Vec::new();
    let mut entries = Vec::new();
    for text in split(&args.proposers) {
        let spec = ProposerSpec::parse(&text)?;
        for v in Variant::expand(&[spec], &args.hints, &searches) {
            entries.push(shard::ProposerEntry {
                spec: text.clone(),
                hints: v.hints,
                search: v.search,
                slug: v.slug(),
            });
            proposers.push(v);
        }
    }
    let names = split(&args.workloads);
    let sources: Vec<Source> = names
        .iter()
        .map(|w| w.parse::<Source>().map_err(|e| anyhow::anyhow!(e)))
        .collect::<Result<_>>()?;
    // --json=FILE must not be one of the workload files this reads.
    let files: Vec<&std::path::Path> = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) | Source::Trace(p) => Some(p.as_path()),
            Source::Named(_) => None,
        })
        .collect();
    args.json.refuse_inputs(&files)?;
    // A label names a workload's baseline, folder and row: two workloads must not share one.
    for (i, s) in sources.iter().enumerate() {
        if let Some(j) = sources[..i].iter().position(|o| o.label() == s.label()) {
            bail!(
                "--workloads: `{}` and `{}` would both be named `{}` (one baseline, one folder, \
                 one row: the second would never run); list each workload once, and rename a \
                 workload file whose name another workload has",
                names[j],
                names[i],
                s.label()
            );
        }
    }
    // Each workload built once (a file or trace read once), named for folders and rows.
    let workloads: Vec<(String, bench::Workload)> = sources
        .iter()
        .map(|s| Ok((s.label(), args.shape.build(s, &TUNE_SIZES)?)))
        .collect::<Result<_>>()?;
    if proposers.is_empty() || workloads.is_empty() || args.seeds == 0 {
        bail!("--proposers, --workloads and --seeds must not be empty");
    }
    for (_, w) in &workloads {
        crate::sysinfo::check_room(args.run.work_dir.as_deref(), w)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    // The same checks as tune's flags and a resumed journal's settings.
    settings(&args, &workloads[0].1, 1, &proposers[0])
        .validate()
        .map_err(|e| anyhow::anyhow!(e))?;
    // An earlier compare in this folder is resumed; anything else is not ours.
    if !compare::is_compare_folder(args.out()) {
        super::check_out_is_ours(args.out(), &[crate::tune::lock::FILE], args.force)?;
    }
    let seeds = seeds_of(&args);
    let manifest = shard_manifest(&args, &proposers, &entries, &workloads, &seeds)?;
    let mine = |kind: &str, v: &Variant, seed: u64| {
        manifest.as_ref().is_none_or(|m| {
            m.mine()
                .any(|t| t.workload == kind && t.proposer == v.slug() && t.seed == seed)
        })
    };
    let _lock = crate::tune::lock::RunLock::acquire(args.out())?;
    compare::mark(args.out())?;
    if let Some(m) = &manifest {
        m.write(args.out())?;
        tracing::info!(
            "shard {}: {} of the {} tunes",
            m.shard,
            m.mine().count(),
            m.tasks.len()
        );
    }
    start_over_stale(&args, &proposers, &workloads, &seeds, &mine)?;
    crate::interrupt::install();
    super::note_swept(args.run.work_dir.as_deref());
    let (engine, live_ops) = args.run.engine()?;
    let mut line = LiveLine::start(args.run.quiet, live_ops);
    let result = run_all(&args, &proposers, &workloads, &seeds, &engine, &line, &mine);
    line.stop();
    result.map_err(|e| super::resumable(e, args.out(), "the same compare command"))?;
    let mut rows = Vec::new();
    for (name, _) in &workloads {
        let known = compare::best_known(args.out(), name)?;
        for p in &proposers {
            let own: Vec<u64> = seeds
                .iter()
                .copied()
                .filter(|s| mine(name, p, *s))
                .collect();
            if own.is_empty() {
                continue;
            }
            let mut r = compare::row(args.out(), name, p, &own)?;
            r.set_best_known(known.as_ref());
            rows.push(r);
        }
    }
    compare::write_results(args.out(), &rows)?;
    // With bare --json the rows are the output and the table goes to stderr.
    let table = compare::markdown(&rows) + "\n" + &compare::summary(&rows);
    let done = format!(
        "wrote {} (results.csv, results.json, best_so_far.svg; each tune under runs/)",
        args.out().join("results.md").display()
    );
    emit_table(&args.json, &rows, &table, &done)
}

/// The rows as JSON where `--json` says (the table and `done` then go to stderr), else the
/// table and `done` on stdout.
fn emit_table(json: &super::Json, rows: &[compare::Row], table: &str, done: &str) -> Result<()> {
    if json.emit(rows)? {
        eprint!("{table}");
        eprintln!("{done}");
    } else {
        print!("{table}");
        println!("{done}");
    }
    Ok(())
}

fn seeds_of(args: &CompareArgs) -> Vec<u64> {
    (1..=args.seeds).collect()
}

/// Stored results this command would reuse although they were made with other settings (a
/// workload file edited, `--num` or `--iterations` changed): the baselines and tunes, each
/// with what differs. Without --force that is an error naming the first difference; with it,
/// each is moved aside (`NAME.stale-SECONDS`, nothing is deleted) and done again.
fn start_over_stale(
    args: &CompareArgs,
    proposers: &[Variant],
    workloads: &[(String, bench::Workload)],
    seeds: &[u64],
    mine: &dyn Fn(&str, &Variant, u64) -> bool,
) -> Result<()> {
    let mut stale: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for (kind, workload) in workloads {
        let first = settings(args, workload, seeds[0], &proposers[0]);
        let base_path = compare::baseline_file(args.out(), kind);
        if let Some((_, Some(with))) = compare::read_baseline(&base_path)? {
            let d = journal::differences(&with, &compare::MeasuredWith::of(&first));
            if !d.is_empty() {
                stale.push((base_path, d));
            }
        }
        for v in proposers {
            for &seed in seeds.iter().filter(|s| mine(kind, v, **s)) {
                let dir = compare::run_dir(args.out(), kind, v, seed);
                let Ok(records) = journal::load(&dir) else {
                    continue;
                };
                if let Some(Record::Start { settings: was, .. }) = records.first() {
                    let d = journal::differences(was.as_ref(), &settings(args, workload, seed, v));
                    if !d.is_empty() {
                        stale.push((dir, d));
                    }
                }
            }
        }
    }
    let Some((path, d)) = stale.first() else {
        return Ok(());
    };
    if !args.force {
        bail!(
            "{} was made with other settings than this command gives ({}){}; rerun the command \
             that made it, pick a new --out, or pass --force to start the {} changed result(s) \
             over (the old ones are kept beside them as *.stale-SECONDS)",
            path.display(),
            d.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
            if d.len() > 3 { "; ..." } else { "" },
            stale.len()
        );
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (path, d) in &stale {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".stale-{secs}"));
        let aside = path.with_file_name(name);
        std::fs::rename(path, &aside)
            .map_err(|e| anyhow::anyhow!("cannot move {} aside: {e}", path.display()))?;
        tracing::warn!(
            "{} was made with other settings ({}): moved to {}, done again",
            path.display(),
            d.join("; "),
            aside.display()
        );
    }
    Ok(())
}

fn settings(args: &CompareArgs, workload: &bench::Workload, seed: u64, v: &Variant) -> Settings {
    let mut w = workload.clone();
    w.seed = seed;
    Settings {
        goal: args.goal.goal(),
        workload: w,
        base_file: None,
        iterations: args.iterations,
        time_budget_secs: None,
        repeats: args.judge.repeats,
        confirm_repeats: args.judge.confirm,
        min_effect: args.judge.min_effect,
        patience: args.patience.unwrap_or(usize::MAX).max(1),
        memory_budget: super::tune::budget_within(
            args.proposal.memory_budget,
            args.run.worker_memory,
        ),
        allow_unsafe: args.proposal.schema.allow_unsafe,
        max_changes: args.proposal.schema.max_changes,
        reasoning_chars: args.proposal.schema.reasoning_chars,
        backend: v.spec.backend().name().into(),
        model: v.spec.model(),
        seed,
        // A proposer without hint levels (expert, search, random) records the first --hints
        // level, as `tune` records its --hints whatever the backend.
        hints: v
            .hints
            .or_else(|| args.hints.first().copied())
            .unwrap_or_default(),
        samples: args.samples.unwrap_or(0),
        refine: !args.no_refine,
        max_rounds: args.judge.max_rounds,
        search: v.search,
        search_method: match v.spec {
            ProposerSpec::Search(m) => m,
            _ => args.search_method,
        },
    }
}

fn run_all(
    args: &CompareArgs,
    proposers: &[Variant],
    workloads: &[(String, bench::Workload)],
    seeds: &[u64],
    engine: &bench::InProcess,
    line: &LiveLine,
    mine: &dyn Fn(&str, &Variant, u64) -> bool,
) -> Result<()> {
    let total = workloads
        .iter()
        .map(|(k, _)| {
            proposers
                .iter()
                .map(|v| seeds.iter().filter(|s| mine(k, v, **s)).count())
                .sum::<usize>()
        })
        .sum::<usize>();
    let mut done = 0;
    for (kind, workload) in workloads {
        // A shard measures the baseline of a workload only when it has tunes of it.
        if !proposers
            .iter()
            .any(|v| seeds.iter().any(|s| mine(kind, v, *s)))
        {
            continue;
        }
        // One baseline per workload, measured once and kept on disk for resumes.
        let base_path = compare::baseline_file(args.out(), kind);
        let first = settings(args, workload, seeds[0], &proposers[0]);
        crate::runfolder::ensure_dirs(args.out(), base_path.parent().unwrap_or(args.out()))?;
        let baseline: Sample = match compare::read_baseline(&base_path)? {
            Some((sample, _)) => sample,
            None => {
                let tuner = Tuner {
                    past: None,
                    settings: first.clone(),
                    out: args.out().to_path_buf(),
                    engine,
                    work_dir: args.run.work_dir.clone(),
                    progress: line.live.as_ref(),
                    proposer_reason: String::new(),
                    baseline: None,
                };
                crate::tune::Progress::phase(
                    line.live.as_ref(),
                    &format!("{kind}: measuring the shared baseline"),
                );
                let doc = crate::options::rocks::linked_defaults()?.clone();
                let (base, _) = crate::options::Calibrator::new(
                    crate::options::catalog()?,
                    crate::options::CalibrateOptions {
                        memory_budget: first.memory_budget,
                        allow_unsafe: first.allow_unsafe,
                        max_changes: first.max_changes,
                    },
                )
                .prepare_base(doc)?;
                let s = measure_start(&tuner, &base.doc);
                if s.ops_per_sec.len() < 2 {
                    bail!(
                        "{kind}: the baseline could not be measured: {:?}",
                        s.failures
                    );
                }
                compare::write_baseline(&base_path, &compare::MeasuredWith::of(&first), &s)?;
                s
            }
        };
        // Seed by seed, every proposer in turn: drift of a shared machine over the hours a
        // compare takes falls on all proposers alike, and an interrupted compare has rows for
        // every proposer.
        for &seed in seeds {
            for v in proposers.iter().filter(|v| mine(kind, v, seed)) {
                done += 1;
                let dir = compare::run_dir(args.out(), kind, v, seed);
                // Every folder on the way is a real one, never a link to elsewhere.
                crate::runfolder::ensure_dirs(args.out(), &dir)?;
                let records = journal::load(&dir).ok();
                if matches!(
                    records.as_ref().and_then(|r| r.last()),
                    Some(Record::End { .. })
                ) {
                    continue;
                }
                let s = settings(args, workload, seed, v);
                let mut request = Request {
                    backend: Backend::Auto,
                    model: None,
                    offline: args.offline,
                    endpoint: args.endpoint.options(),
                    openai_model: None,
                    temperature: args.temperature,
                    max_tokens: args.max_tokens,
                    seed,
                    hints: s.hints,
                    samples: s.samples,
                };
                v.spec.apply(&mut request);
                let (mut proposer, reason) = backend::choose(&request, &s)?;
                line.live.bar.println(format!(
                    "[{done}/{total}] {kind} · {} · seed {seed}",
                    v.label()
                ));
                let tuner = Tuner {
                    past: None,
                    settings: s,
                    out: dir.clone(),
                    engine,
                    work_dir: args.run.work_dir.clone(),
                    progress: line.live.as_ref(),
                    proposer_reason: reason,
                    baseline: Some(baseline.clone()),
                };
                if records.is_some_and(|r| !r.is_empty()) {
                    tuner.resume(proposer.as_mut())?;
                } else {
                    tuner.start(proposer.as_mut())?;
                }
            }
        }
        if let Some(known) = &args.best_known {
            measure_best_known(args, kind, workload, known, &baseline, engine, line)?;
        }
    }
    Ok(())
}

/// The best-known configuration of a workload (`DIR/WORKLOAD.ini`) measured against the start,
/// interleaved, as a tune's final check; kept under runs/WORKLOAD/ for resumes. No file for the
/// workload: nothing to measure.
fn measure_best_known(
    args: &CompareArgs,
    kind: &str,
    workload: &bench::Workload,
    dir: &std::path::Path,
    baseline: &Sample,
    engine: &bench::InProcess,
    line: &LiveLine,
) -> Result<()> {
    let file = dir.join(format!("{kind}.ini"));
    let out = compare::best_known_file(args.out(), kind);
    if !file.is_file() || out.is_file() {
        return Ok(());
    }
    let known = crate::options::OptionsDoc::read(&file)?;
    let first = settings(
        args,
        workload,
        1,
        &Variant {
            spec: ProposerSpec::Expert,
            hints: None,
            search: false,
        },
    );
    let (base, _) = crate::options::Calibrator::new(
        crate::options::catalog()?,
        crate::options::CalibrateOptions {
            memory_budget: first.memory_budget,
            allow_unsafe: first.allow_unsafe,
            max_changes: first.max_changes,
        },
    )
    .prepare_base(crate::options::rocks::linked_defaults()?.clone())?;
    crate::tune::Progress::phase(
        line.live.as_ref(),
        &format!("{kind}: measuring the best-known configuration against the start"),
    );
    let tuner = Tuner {
        past: None,
        settings: first,
        out: args.out().to_path_buf(),
        engine,
        work_dir: args.run.work_dir.clone(),
        progress: line.live.as_ref(),
        proposer_reason: String::new(),
        baseline: Some(baseline.clone()),
    };
    let (start, best, comparison) = tuner.against_start(&base.doc, &known, "best-known");
    crate::interrupt::check()?;
    let record = compare::BestKnown {
        file: file.display().to_string(),
        start,
        known: best,
        comparison,
    };
    crate::runfolder::ensure_dirs(args.out(), out.parent().unwrap_or(args.out()))?;
    crate::runfolder::write(&out, &serde_json::to_vec_pretty(&record)?)?;
    Ok(())
}

/// With --shard: this shard's manifest (the whole matrix split, this shard's part, the binary
/// and the machine); None without. A folder that is another shard's is refused.
fn shard_manifest(
    args: &CompareArgs,
    proposers: &[Variant],
    entries: &[shard::ProposerEntry],
    workloads: &[(String, bench::Workload)],
    seeds: &[u64],
) -> Result<Option<shard::Manifest>> {
    let Some(text) = &args.shard else {
        if args.shard_count.is_some() {
            bail!("--shard-count goes with --shard auto");
        }
        return Ok(None);
    };
    let which = if text == "auto" {
        shard::Shard::from_env(&|k| std::env::var(k).ok(), args.shard_count)
    } else if args.shard_count.is_some() {
        Err("--shard-count goes with --shard auto (--shard I/N names the count)".into())
    } else {
        shard::Shard::parse(text)
    }
    .map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
    let mut tasks = Vec::new();
    for (kind, w) in workloads {
        let data = w.data_bytes();
        for v in proposers {
            for &seed in seeds {
                tasks.push(shard::Task {
                    workload: kind.clone(),
                    proposer: v.slug(),
                    seed,
                    cost: shard::cost(v.spec.backend(), data),
                });
            }
        }
    }
    let assigned = shard::assign(&tasks, which.count);
    let catalog = crate::options::catalog()?;
    let data_dir = args.run.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let manifest = shard::Manifest {
        shard: which,
        version: env!("CARGO_PKG_VERSION").to_string(),
        rocksdb: catalog.rocksdb_version.clone(),
        proposers: entries.to_vec(),
        workloads: workloads
            .iter()
            .map(|(k, w)| (k.clone(), settings(args, w, seeds[0], &proposers[0])))
            .collect(),
        seeds: seeds.to_vec(),
        tasks: tasks.into_iter().zip(assigned).collect(),
        facts: crate::sysinfo::Facts::gather(&data_dir, &catalog.rocksdb_version),
    };
    if let Ok(was) = shard::Manifest::read(args.out())
        && (was.shard != manifest.shard || was.tasks != manifest.tasks)
    {
        bail!(
            "{} holds shard {} of another split or matrix; this command is shard {}: give each shard its own --out",
            args.out().display(),
            was.shard,
            manifest.shard
        );
    }
    Ok(Some(manifest))
}

/// `compare merge`: the shards checked to be one compare, their tunes copied under `out`, and
/// the tables and plot written as one compare writes them.
fn merge_cmd(
    out: &std::path::Path,
    dirs: &[PathBuf],
    force: bool,
    json: &super::Json,
) -> Result<()> {
    let shards: Vec<(PathBuf, shard::Manifest)> = dirs
        .iter()
        .map(|d| Ok((d.clone(), shard::Manifest::read(d)?)))
        .collect::<Result<_>>()?;
    let mut notes = shard::check(&shards)?;
    for d in dirs {
        super::args::refuse_output_inside("the merged folder", out, d)?;
    }
    if !compare::is_compare_folder(out) {
        super::check_out_is_ours(out, &[crate::tune::lock::FILE], force)?;
    }
    let _lock = crate::tune::lock::RunLock::acquire(out)?;
    compare::mark(out)?;
    let mut unfinished = Vec::new();
    for (dir, m) in &shards {
        for t in m.mine() {
            let rel = std::path::Path::new("runs")
                .join(&t.workload)
                .join(&t.proposer)
                .join(format!("seed-{}", t.seed));
            let from = dir.join(&rel);
            let finished =
                journal::load(&from).is_ok_and(|r| matches!(r.last(), Some(Record::End { .. })));
            if !finished {
                unfinished.push(format!(
                    "{} seed {} (shard {})",
                    t.workload, t.seed, m.shard
                ));
                continue;
            }
            shard::copy_tree(&from, out, &out.join(&rel))?;
        }
        for (w, _) in &m.workloads {
            let base = compare::baseline_file(dir, w);
            if crate::runfolder::is_file(&base) {
                let to = out
                    .join("baselines")
                    .join(format!("shard-{}", m.shard.index))
                    .join(format!("{w}.json"));
                crate::runfolder::ensure_dirs(out, to.parent().unwrap_or(out))?;
                crate::runfolder::write(&to, &crate::runfolder::read(&base)?)?;
            }
            let known = compare::best_known_file(dir, w);
            let to = compare::best_known_file(out, w);
            if crate::runfolder::is_file(&known) && !crate::runfolder::is_file(&to) {
                crate::runfolder::ensure_dirs(out, to.parent().unwrap_or(out))?;
                crate::runfolder::write(&to, &crate::runfolder::read(&known)?)?;
            }
        }
    }
    if !unfinished.is_empty() {
        notes.push(format!(
            "{} tune(s) not finished in their shard, left out (run that shard's command again, then merge again): {}.",
            unfinished.len(),
            unfinished.join(", ")
        ));
    }
    let first = &shards[0].1;
    let mut rows = Vec::new();
    for (w, _) in &first.workloads {
        let known = compare::best_known(out, w)?;
        for e in &first.proposers {
            let v = Variant {
                spec: ProposerSpec::parse(&e.spec)?,
                hints: e.hints,
                search: e.search,
            };
            let mut r = compare::row(out, w, &v, &first.seeds)?;
            r.set_best_known(known.as_ref());
            rows.push(r);
        }
    }
    compare::write_results(out, &rows)?;
    let mut table = compare::markdown(&rows) + "\n" + &compare::summary(&rows);
    let shards_note = format!(
        "\nMerged from {} shards ({}).\n{}",
        shards.len(),
        shards
            .iter()
            .map(|(d, m)| format!("{}: {}", m.shard, d.display()))
            .collect::<Vec<_>>()
            .join(", "),
        notes.iter().map(|n| format!("\n{n}\n")).collect::<String>()
    );
    table.push_str(&shards_note);
    let md = out.join("results.md");
    crate::runfolder::append(&md, shards_note.as_bytes())?;
    let done = format!(
        "wrote {} (results.csv, results.json, best_so_far.svg)",
        md.display()
    );
    emit_table(json, &rows, &table, &done)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    /// A compare's tune is an ordinary tune: for the same flags, the settings `compare` builds for
    /// a proposer equal those `tune` builds with that proposer (every field of the journal's
    /// start record).
    #[test]
    fn a_compare_builds_the_settings_tune_builds_for_the_same_flags() {
        let shared = [
            "--workload-flags-go-here",
            "--iterations",
            "4",
            "--patience",
            "2",
            "--max-changes",
            "3",
            "--allow-unsafe",
            "--reasoning-chars",
            "300",
            "--memory-budget",
            "1G",
            "--repeats",
            "4",
            "--confirm",
            "1",
            "--max-rounds",
            "6",
            "--min-effect",
            "0.05",
            "--num",
            "5000",
            "--value-size",
            "200",
            "--threads",
            "1",
            "--hints",
            "diagnostics",
            "--objective",
            "p99",
        ];
        let args = |head: &[&str], tail: &[&str]| -> Vec<String> {
            (["lsmtune"].iter().chain(head))
                .chain(shared[1..].iter())
                .chain(tail)
                .map(|s| s.to_string())
                .collect()
        };
        let Command::Tune(t) = Cli::try_parse_from(args(
            &["tune", "--backend", "expert", "--workload", "readrandom"],
            &["--seed", "1", "--search", "off"],
        ))
        .unwrap()
        .command
        else {
            unreachable!()
        };
        let Command::Compare(c) = Cli::try_parse_from(args(
            &[
                "compare",
                "--proposers",
                "expert",
                "--workloads",
                "readrandom",
            ],
            &["--seeds", "1", "--out", "unused"],
        ))
        .unwrap()
        .command
        else {
            unreachable!()
        };
        let from_tune = t.settings().unwrap();
        let specs = vec![crate::compare::ProposerSpec::parse(&c.proposers).unwrap()];
        let searches: Vec<bool> = c.search.iter().map(|s| s.on()).collect();
        let variants = crate::compare::Variant::expand(&specs, &c.hints, &searches);
        assert_eq!(variants.len(), 1);
        let source: crate::bench::workload_file::Source = c.workloads.parse().unwrap();
        let workload = c.shape.build(&source, &super::TUNE_SIZES).unwrap();
        let from_compare = super::settings(&c, &workload, 1, &variants[0]);
        assert_eq!(
            serde_json::to_value(&from_compare).unwrap(),
            serde_json::to_value(&from_tune).unwrap()
        );
    }
}
