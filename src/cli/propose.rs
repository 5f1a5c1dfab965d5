//! `lsmtune propose` (what a model suggests, without benchmarking) and `lsmtune grammar`
//! (the proposal schema: print it, or regenerate the committed copy).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::ModelSource;
use crate::grammar::GrammarEnv;
use crate::grammar::schema::{self, SchemaOptions};
use crate::llm::{GenParams, Llm, Message, local::LocalModel};
use crate::options::{self, CalibrateOptions, Calibrator};

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub model: ModelSource,
    /// The workload the proposals are for (a name, a workload file, or trace:FILE; as `bench
    /// --workload`).
    #[arg(long, default_value = "fillrandom", value_parser = |s: &str| s.parse::<crate::bench::workload_file::Source>())]
    pub workload: crate::bench::workload_file::Source,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
    /// Starting OPTIONS file, or a RocksDB database folder (its newest OPTIONS-NNNNNN is read;
    /// the database is never opened). Default: the linked RocksDB's defaults.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Proposals to print (seeds --seed, --seed+1, ...).
    #[arg(long, value_parser = super::count::<usize, 1, 100>, default_value_t = 1)]
    pub n: usize,
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
    pub proposal: super::args::ProposalArgs,
    /// One JSON object per proposal, a line each (--json=FILE: into FILE, text as usual).
    #[command(flatten)]
    pub json: super::Json,
    /// What the model is told besides the measurements (as `tune --hints`).
    #[arg(long, value_enum, default_value_t = crate::tune::prompt::HintLevel::Knowledge)]
    pub hints: crate::tune::prompt::HintLevel,
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

pub fn propose_cmd(args: ProposeArgs) -> Result<()> {
    // --json=FILE must not be one of the files this reads, nor lie in a database folder.
    let mut inputs: Vec<&std::path::Path> = args.base.iter().map(|p| p.as_path()).collect();
    if let crate::bench::workload_file::Source::File(p)
    | crate::bench::workload_file::Source::Trace(p) = &args.workload
    {
        inputs.push(p);
    }
    args.json.refuse_inputs(&inputs)?;
    if let (Some(base), Some(file)) = (args.base.as_deref(), args.json.file())
        && base.is_dir()
    {
        super::args::refuse_output_inside("--json", file, base)?;
    }
    let catalog = options::catalog()?;
    let opts = args.proposal.schema.options();
    let budget = args
        .proposal
        .memory_budget
        .unwrap_or_else(crate::sysinfo::default_memory_budget);
    let calibrator = Calibrator::new(
        catalog,
        CalibrateOptions {
            memory_budget: budget,
            allow_unsafe: opts.allow_unsafe,
            max_changes: opts.max_changes,
        },
    );
    let base_doc = match &args.base {
        Some(p) => options::OptionsDoc::read(&options::ini::options_file("--base", p)?)?,
        None => options::rocks::linked_defaults()?.clone(),
    };
    let (base, _) = calibrator.prepare_base(base_doc)?;
    let workload = args.shape.build(
        &args.workload,
        &super::args::SizeDefaults {
            num: 100_000,
            value_size: 100,
            threads: 1,
        },
    )?;
    let facts =
        crate::sysinfo::Facts::gather_and_probe(&std::env::temp_dir(), &catalog.rocksdb_version);
    // Measure before asking, as the tuner does: the prompt starts from symptoms.
    let sample = if args.no_measure {
        crate::bench::Sample::default()
    } else {
        if !args.json.stdout() {
            tracing::info!(
                "measuring the starting configuration ({} x {} repeats)...",
                workload.label(),
                args.repeats
            );
        }
        let engine = crate::bench::InProcess {
            exe: crate::bench::worker::worker_exe()?,
            limits: crate::bench::Limits {
                timeout: std::time::Duration::from_secs(300),
                memory: crate::sysinfo::total_memory() / 4 * 3,
                cage: None,
                drop_caches: false,
            },
            live_ops: Default::default(),
        };
        let s = crate::bench::measure_interleaved(
            &engine,
            &workload,
            None,
            &[&base.doc],
            args.repeats.max(1),
            args.seed,
            &mut |_, _, _| {},
        )
        .remove(0);
        if s.ops_per_sec.is_empty() {
            bail!(
                "the starting configuration could not be measured: {}",
                s.failure_text()
            );
        }
        s
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let goal = crate::tune::objective::Goal::default();
    let ctx = crate::tune::proposer::Context {
        goal: &goal,
        catalog,
        facts: &facts,
        workload: &workload,
        base: &base,
        best: &base,
        best_diagnostics: sample.diagnostics,
        best_ops: mean(&sample.ops_per_sec),
        best_p50_us: sample.p50_us,
        best_p99_us: sample.p99_us,
        baseline_ops: mean(&sample.ops_per_sec),
        history: &[],
        memory_budget: budget,
        schema: &opts,
        iteration: 1,
        note: None,
        min_effect: 0.03,
    };
    // The first turn of a tune with this seed: the options window `tune` would offer first.
    let turn = crate::tune::prompt::Turn {
        seed: args.seed,
        index: 0,
    };
    let offers = crate::tune::prompt::offers(&ctx, args.hints, turn);
    if offers.is_empty() {
        bail!("no option has a value to offer (every option is excluded)");
    }
    let max = crate::tune::prompt::MODEL_MAX_CHANGES.min(opts.max_changes);
    let user = crate::tune::prompt::state(&ctx, args.hints, &offers, max);
    let messages = [
        Message::system(crate::tune::prompt::system(max)),
        Message::user(user.clone()),
    ];
    if args.show_prompt {
        // With bare --json, stdout holds only the JSON lines.
        if args.json.stdout() {
            eprintln!("--- prompt\n{user}");
        } else {
            println!("--- prompt\n{user}");
        }
    }

    let files = args.model.files()?;
    let mut llm = LocalModel::load(&files)?;
    if !args.json.stdout() {
        for note in llm.notes() {
            tracing::info!("{note}");
        }
    }
    let grammar = if args.unconstrained {
        None
    } else {
        let started = std::time::Instant::now();
        let g = GrammarEnv::new(llm.tokenizer(), llm.eos_tokens())?.compile(
            &crate::tune::prompt::schema(
                &offers,
                max,
                opts.reasoning_chars
                    .min(crate::tune::prompt::MODEL_REASONING_CHARS),
            ),
        )?;
        if !args.json.stdout() {
            tracing::info!(
                "grammar compiled for {} in {:.2} s",
                llm.name(),
                started.elapsed().as_secs_f64()
            );
        }
        Some(g)
    };
    let mut json_lines: Vec<String> = Vec::new();
    for i in 0..args.n.max(1) {
        let params = GenParams {
            max_tokens: args.max_tokens,
            seed: args.seed + i as u64,
            temperature: if i == 0 { 0.0 } else { args.temperature },
            ..GenParams::default()
        };
        let live = !args.json.stdout() && std::io::IsTerminal::is_terminal(&std::io::stdout());
        if !args.json.stdout() {
            println!("--- proposal {} (seed {})", i + 1, params.seed);
        }
        let p = crate::tune::ask::ask(&mut llm, grammar.as_ref(), &messages, &params, &mut |t| {
            if live {
                print!("{t}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
        })?;
        let cal = calibrator.calibrate(&base, &p.raw);
        let changes = &cal.changes;
        if args.json.dest.is_some() {
            json_lines.push(
                serde_json::json!({
                    "seed": params.seed,
                    "text": p.completion.text,
                    "finish": p.completion.finish,
                    "prompt_tokens": p.completion.prompt_tokens,
                    "completion_tokens": p.completion.completion_tokens,
                    "decode_tok_s": p.completion.decode_tokens_per_second(),
                    "mask": p.mask,
                    "parsed_entries": p.raw.entries.len(),
                    "changes": changes.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                    "corrections": cal.corrections.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                })
                .to_string(),
            );
            if args.json.stdout() {
                println!("{}", json_lines.last().expect("just pushed"));
                continue;
            }
        }
        if !live {
            print!("{}", p.completion.text);
        }
        println!();
        let c = &p.completion;
        let mask = p
            .mask
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
            changes.len(),
            cal.corrections.len(),
            cal.invalid_entries()
        );
        for (k, to) in changes {
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
    // --json=FILE: the lines go there (on stdout they were printed as they came).
    if !args.json.stdout() {
        args.json.emit_text(&json_lines.join("\n"))?;
    }
    Ok(())
}
