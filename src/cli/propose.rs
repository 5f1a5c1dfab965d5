//! `lsmtune propose` (what a model suggests, without benchmarking) and `lsmtune grammar`
//! (the proposal schema: print it, or regenerate the committed copy).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::ModelSource;
use super::args::ProposalArgs;
use crate::bench::workload_file::Source;
use crate::bench::{Sample, Workload};
use crate::grammar::GrammarEnv;
use crate::grammar::schema::{self, SchemaOptions};
use crate::llm::{GenParams, local::LocalModel};
use crate::options::{self, Calibrated};
use crate::sysinfo::Facts;
use crate::tune::ask::ModelProposal;
use crate::tune::context::{Context, Standing};
use crate::tune::journal::Settings;
use crate::tune::objective::Goal;
use crate::tune::prompt::HintLevel;
use crate::tune::proposer::LlmProposer;

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub model: ModelSource,
    /// The workload the proposals are for (a name, a workload file, or trace:FILE; as `bench
    /// --workload`).
    #[arg(long, default_value = "fillrandom", value_parser = |s: &str| s.parse::<Source>())]
    pub workload: Source,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
    /// Starting OPTIONS file, or a RocksDB database folder (its newest OPTIONS-NNNNNN is read;
    /// the database is never opened). Default: the linked RocksDB's defaults.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Proposals to print: the replies a tune with --samples N samples in its first turn.
    #[arg(long, value_parser = super::count::<usize, 1, 100>, default_value_t = 1)]
    pub n: usize,
    /// As `tune --seed`: the first turn's options window and each reply's seed (printed).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Sampling temperature of the proposals after the first (which is greedy, as in `tune`).
    #[arg(long, value_parser = super::temperature, default_value_t = 0.7)]
    pub temperature: f64,
    #[arg(long, value_parser = super::count::<usize, 1, 1048576>, default_value_t = 1024)]
    pub max_tokens: usize,
    /// Let the model write freely (no grammar): shows what the grammar prevents.
    #[arg(long)]
    pub unconstrained: bool,
    /// What a proposal may change and RocksDB's memory budget, as in `tune`.
    #[command(flatten)]
    pub proposal: ProposalArgs,
    /// One JSON object per proposal, a line each (--json=FILE: into FILE, text as usual).
    #[command(flatten)]
    pub json: super::Json,
    /// What the model is told besides the measurements (as `tune --hints`).
    #[arg(long, value_enum, default_value_t = HintLevel::Knowledge)]
    pub hints: HintLevel,
    /// What the tune optimizes and must keep, as in `tune` (the prompt says so).
    #[command(flatten)]
    pub goal: super::tune::GoalArgs,
    /// Do not measure the starting configuration first (the prompt then has no measurements).
    #[arg(long)]
    pub no_measure: bool,
    /// Repeats of the starting configuration's measurement.
    #[arg(long, value_parser = super::count::<usize, 1, 10000>, default_value_t = 2)]
    pub repeats: usize,
    /// Print the prompt the model is sent.
    #[arg(long)]
    pub show_prompt: bool,
}

#[derive(Debug, Subcommand)]
pub enum GrammarCommand {
    /// Print the proposal JSON Schema generated from the option catalog.
    ///
    /// The catalog is the linked RocksDB's; the schema is the grammar local models decode
    /// under, and what OpenAI-compatible endpoints receive.
    ///
    /// Examples:
    ///   lsmtune grammar schema --max-changes 4
    ///   lsmtune grammar schema --write    # regenerate grammars/proposal.schema.json
    #[command(verbatim_doc_comment)]
    Schema {
        #[command(flatten)]
        schema: super::args::SchemaArgs,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Regenerate the committed default schema (grammars/proposal.schema.json, relative to
        /// the current folder); refuses other flags.
        #[arg(long, conflicts_with = "out")]
        write: bool,
    },
}

pub fn grammar_cmd(cmd: GrammarCommand) -> Result<()> {
    match cmd {
        GrammarCommand::Schema { schema, out, write } => {
            let opts = schema.options();
            if write && opts != SchemaOptions::default() {
                bail!("--write regenerates the default schema; drop the other flags");
            }
            let text = schema::render(&schema::proposal_schema(options::catalog()?, &opts));
            let target = if write {
                let p = PathBuf::from(schema::COMMITTED_PATH);
                if !p.parent().is_some_and(|d| d.is_dir()) {
                    bail!(
                        "run --write from the repository root ({} has no grammars/ folder)",
                        std::env::current_dir()?.display()
                    );
                }
                Some(p)
            } else {
                out
            };
            match target {
                Some(p) => {
                    options::ini::write_atomic(&p, text.as_bytes())?;
                    tracing::info!("wrote {} ({} bytes)", p.display(), text.len());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// The settings of a tune whose first turn `propose` runs (and `llm turns` repeats): the
/// workload, what a proposal may change, the objective; `tune`'s judging defaults; one
/// iteration from RocksDB's defaults with seed 42, which the caller may change.
pub(super) fn turn_settings(workload: Workload, proposal: &ProposalArgs, goal: Goal) -> Settings {
    let judge = super::args::defaults::<super::tune::JudgeArgs>();
    Settings {
        goal,
        workload,
        base_file: None,
        iterations: 1,
        time_budget_secs: None,
        repeats: judge.repeats,
        confirm_repeats: judge.confirm,
        min_effect: judge.min_effect,
        patience: 1,
        memory_budget: super::tune::budget_within(proposal.memory_budget, None),
        allow_unsafe: proposal.schema.allow_unsafe,
        max_changes: proposal.schema.max_changes,
        reasoning_chars: proposal.schema.reasoning_chars,
        backend: "local".into(),
        model: None,
        seed: 42,
        hints: HintLevel::Knowledge,
        samples: 1,
        refine: false,
        max_rounds: judge.max_rounds,
        search: false,
        search_method: Default::default(),
    }
}

impl ProposeArgs {
    /// --json=FILE must not be one of the files this reads, nor lie in a database folder.
    fn refuse_output_among_inputs(&self) -> Result<()> {
        let mut inputs: Vec<&std::path::Path> = self.base.iter().map(|p| p.as_path()).collect();
        if let Source::File(p) | Source::Trace(p) = &self.workload {
            inputs.push(p);
        }
        self.json.refuse_inputs(&inputs)?;
        if let (Some(base), Some(file)) = (self.base.as_deref(), self.json.file())
            && base.is_dir()
        {
            super::args::refuse_output_inside("--json", file, base)?;
        }
        Ok(())
    }

    /// The settings of the tune whose first turn this is.
    fn settings(&self) -> Result<Settings> {
        let workload = self.shape.build(&self.workload, &PROPOSE_SIZES)?;
        Ok(Settings {
            base_file: match &self.base {
                Some(p) => Some(options::ini::options_file("--base", p)?),
                None => None,
            },
            repeats: self.repeats,
            seed: self.seed,
            hints: self.hints,
            samples: self.n,
            ..turn_settings(workload, &self.proposal, self.goal.goal())
        })
    }

    /// The starting configuration measured as `tune` measures it (its engine and limits), unless
    /// --no-measure: the prompt starts from symptoms.
    fn measure_start(&self, settings: &Settings, base: &options::Config) -> Result<Sample> {
        if self.no_measure {
            return Ok(Sample::default());
        }
        if !self.json.stdout() {
            tracing::info!(
                "measuring the starting configuration ({} x {} repeats)...",
                settings.workload.label(),
                settings.repeats
            );
        }
        let (engine, _) = super::args::defaults::<super::tune::RunArgs>().engine()?;
        let s = crate::bench::measure_interleaved(
            &engine,
            &settings.workload,
            None,
            &[&base.doc],
            settings.repeats.max(1),
            settings.seed,
            &mut |_, _, _| {},
        )
        .remove(0);
        if s.ops_per_sec.is_empty() {
            bail!(
                "the starting configuration could not be measured: {}",
                s.failure_text()
            );
        }
        Ok(s)
    }

    /// The model as `tune` asks it: under the proposal grammar unless --unconstrained, --n
    /// replies per turn (the first greedy).
    fn proposer(&self) -> Result<LlmProposer> {
        let files = self.model.files()?;
        let llm = LocalModel::load(&files)?;
        if !self.json.stdout() {
            for note in llm.notes() {
                tracing::info!("{note}");
            }
        }
        let grammar = if self.unconstrained {
            None
        } else {
            Some(GrammarEnv::new(llm.tokenizer(), llm.eos_tokens())?)
        };
        let params = GenParams {
            max_tokens: self.max_tokens,
            seed: self.seed,
            temperature: self.temperature,
            ..GenParams::default()
        };
        Ok(LlmProposer::new(
            Box::new(llm),
            grammar,
            params,
            self.hints,
            self.n,
        ))
    }

    /// Print to stdout, or to stderr when bare --json keeps stdout for the JSON lines.
    fn say(&self, text: &str) {
        if self.json.stdout() {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// `propose`'s default workload size (as `bench`'s).
const PROPOSE_SIZES: super::args::SizeDefaults = super::args::SizeDefaults {
    num: 100_000,
    value_size: 100,
    threads: 1,
};

/// `propose`: the first turn of a tune, as the loop runs it ([`Context::new`],
/// [`LlmProposer::question`], [`LlmProposer::sample`], the settings' calibrator), each of the
/// turn's replies printed with what calibration made of it.
pub fn propose_cmd(args: ProposeArgs) -> Result<()> {
    args.refuse_output_among_inputs()?;
    let settings = args.settings()?;
    let catalog = options::catalog()?;
    let calibrator = settings.calibrator(catalog);
    let (base, _) = settings.base(&calibrator)?;
    let facts = Facts::gather_and_probe(&std::env::temp_dir(), &catalog.rocksdb_version);
    let sample = args.measure_start(&settings, &base)?;
    let schema = settings.schema();
    let at = Standing {
        catalog,
        facts: &facts,
        schema: &schema,
        base: &base,
        best: &base,
        best_sample: &sample,
        baseline: &sample,
        history: &[],
        past: None,
    };
    let ctx = Context::new(&settings, &at, 1);
    let mut proposer = args.proposer()?;
    let started = std::time::Instant::now();
    let Some(question) = proposer.question(&ctx)? else {
        bail!("no option has a value to offer (every option is excluded)");
    };
    if !args.unconstrained && !args.json.stdout() {
        tracing::info!(
            "grammar compiled for {} in {:.2} s",
            proposer.llm().name(),
            started.elapsed().as_secs_f64()
        );
    }
    if args.show_prompt {
        args.say(&format!("--- prompt\n{}", question.user));
    }
    let mut json_lines: Vec<String> = Vec::new();
    for i in 0..args.n.max(1) {
        let seed = proposer.sample_params(ctx.iteration, i).seed;
        let live = !args.json.stdout() && std::io::IsTerminal::is_terminal(&std::io::stdout());
        if !args.json.stdout() {
            println!("--- proposal {} (seed {seed})", i + 1);
        }
        let p = proposer.sample(&question, ctx.iteration, i, &mut |t| {
            if live {
                print!("{t}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
        })?;
        let cal = calibrator.calibrate(&base, &p.raw);
        if args.json.dest.is_some() {
            json_lines.push(json_line(seed, &p, &cal).to_string());
            if args.json.stdout() {
                println!("{}", json_lines.last().expect("just pushed"));
                continue;
            }
        }
        if !live {
            print!("{}", p.completion.text);
        }
        println!();
        print_reply(&p, &cal, catalog, &base);
    }
    // --json=FILE: the lines go there (on stdout they were printed as they came).
    if !args.json.stdout() {
        args.json.emit_text(&json_lines.join("\n"))?;
    }
    Ok(())
}

/// One reply as a JSON line: the text, how it was generated, and what calibration made of it.
fn json_line(seed: u64, p: &ModelProposal, cal: &Calibrated) -> serde_json::Value {
    serde_json::json!({
        "seed": seed,
        "text": p.completion.text,
        "finish": p.completion.finish,
        "prompt_tokens": p.completion.prompt_tokens,
        "completion_tokens": p.completion.completion_tokens,
        "decode_tok_s": p.completion.decode_tokens_per_second(),
        "mask": p.mask_stats(),
        "parsed_entries": p.raw.entries.len(),
        "changes": cal.changes.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        "corrections": cal.corrections.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    })
}

/// One reply in text, after its text: tokens, speed, the grammar's cost, the calibrated
/// changes (from -> to) and the corrections.
fn print_reply(
    p: &ModelProposal,
    cal: &Calibrated,
    catalog: &options::Catalog,
    base: &options::Config,
) {
    let c = &p.completion;
    let mask = p
        .mask_stats()
        .map(|m| {
            format!(
                ", mask p50 {:.0} us p99 {:.0} us, {} forced tokens",
                m.p50_us, m.p99_us, m.forced_tokens
            )
        })
        .unwrap_or_default();
    println!(
        "[{} prompt tokens, {} generated at {:.1} tok/s, finished by {:?}{mask}]",
        c.prompt_tokens,
        c.completion_tokens,
        c.decode_tokens_per_second(),
        c.finish
    );
    println!(
        "calibrated: {} change(s), {} correction(s) ({} for wrong keys, types or ranges)",
        cal.changes.len(),
        cal.corrections.len(),
        cal.invalid_entries()
    );
    for (k, to) in &cal.changes {
        let from = catalog
            .get(k)
            .map(|e| base.get(e).to_string())
            .unwrap_or_default();
        println!("  {k}: {from} -> {to}");
    }
    for corr in &cal.corrections {
        println!("  {corr}");
    }
}
