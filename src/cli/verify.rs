//! `lsmtune verify`: a tuned configuration and its start side by side at a larger scale (see
//! [`crate::verify`]), from a tune's run folder or from two OPTIONS files; and the same at the
//! end of a tune (`tune --verify-scale`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::bench::workload_file::Source;
use crate::tune::journal::{self, Record};
use crate::verify::{self, Plan, Scale, Verification};

// The arguments; the help text is on `Command::Verify` in cli/mod.rs.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub json: super::Json,
    /// A tune's run folder: its OPTIONS-base.ini and OPTIONS-tuned.ini, its workload and
    /// objective, and its final check to compare the gain at scale with.
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// The starting configuration (an OPTIONS file or a database folder; default: the run
    /// folder's OPTIONS-base.ini, else the linked RocksDB's defaults).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// The tuned configuration (default: the run folder's OPTIONS-tuned.ini).
    #[arg(long)]
    pub tuned: Option<PathBuf>,
    /// The workload the configuration was tuned for (default: the run folder's; without one,
    /// required). Its size is the tune's defaults (300,000 keys of 16 + 400 bytes, 2 threads)
    /// unless --num, --value-size... say otherwise; the scale applies on top.
    #[arg(long, value_parser = |s: &str| s.parse::<Source>())]
    pub workload: Option<Source>,
    /// How much larger than the tune: the keys and operations times this (10x, 2.5x).
    /// --dataset-size instead sizes the data itself.
    #[arg(long, value_parser = Scale::parse_factor, default_value = "10x", conflicts_with = "dataset_size")]
    pub scale: Scale,
    /// Interleaved rounds, each measuring both configurations (the tune's final check takes 5).
    #[arg(long, value_parser = super::count::<usize, 2, 100>, default_value_t = 5)]
    pub rounds: usize,
    /// Smallest relative effect called a difference (default: the tune's, else 0.03).
    #[arg(long, allow_hyphen_values = true, value_parser = super::fraction)]
    pub min_effect: Option<f64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub run_args: super::tune::RunArgs,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
}

/// The inputs of a verification, resolved: the two configurations, the tune's workload, its
/// goal and min effect, and its final check.
struct Inputs {
    base: crate::options::ini::OptionsDoc,
    tuned: crate::options::ini::OptionsDoc,
    workload: crate::bench::Workload,
    goal: crate::tune::objective::Goal,
    min_effect: f64,
    tune_comparison: Option<crate::bench::stats::Comparison>,
}

/// Read a run folder: its settings and its final check (None when it kept the start).
fn from_run(dir: &Path) -> Result<(journal::Settings, Option<crate::bench::stats::Comparison>)> {
    let records = journal::load(dir)?;
    let Some(Record::Start { settings, .. }) = records.first() else {
        bail!(
            "{}: not a tune's run folder (no start record in journal.jsonl)",
            dir.display()
        );
    };
    let end = records.iter().find_map(|r| match r {
        Record::End {
            comparison,
            kept_base,
            ..
        } => Some((*comparison, *kept_base)),
        _ => None,
    });
    match end {
        None => bail!(
            "{}: the tune has not finished (resume it: lsmtune tune --resume {})",
            dir.display(),
            dir.display()
        ),
        Some((_, true)) | Some((None, false)) => bail!(
            "{}: the tune kept its start (nothing it tried was confirmed), so there is no tuned configuration to verify",
            dir.display()
        ),
        Some((c, false)) => Ok(((**settings).clone(), c)),
    }
}

fn inputs(args: &VerifyArgs) -> Result<Inputs> {
    // Each file made ready for RocksDB as `bench --options` does (deployment paths out).
    let calibrator = crate::options::Calibrator::new(
        crate::options::catalog()?,
        crate::options::CalibrateOptions::default(),
    );
    let doc = |flag: &str, p: &Path| -> Result<crate::options::ini::OptionsDoc> {
        let file = crate::options::ini::options_file(flag, p)?;
        let (config, notes) = calibrator
            .prepare_base(crate::options::ini::OptionsDoc::read(&file)?)
            .with_context(|| format!("{flag} {}", p.display()))?;
        for n in notes {
            tracing::warn!("{n}");
        }
        Ok(config.doc)
    };
    let mut shape = args.shape.clone();
    // --dataset-size sizes the verification, not the tune's workload.
    shape.dataset_size = None;
    if let Some(dir) = &args.run {
        let s = &args.shape;
        if s.num.is_some()
            || s.key_size.is_some()
            || s.value_size.is_some()
            || s.threads.is_some()
            || s.ops.is_some()
            || args.workload.is_some()
        {
            bail!(
                "with --run the workload is the tune's: drop --workload, --num, --key-size, --value-size, --threads and --ops (--scale, --dataset-size and --duration still apply)"
            );
        }
        let (settings, c) = from_run(dir)?;
        let mut workload = settings.workload.clone();
        if let Some(d) = s.duration {
            workload.duration = Some(d);
        }
        let base = doc(
            "--base",
            &args
                .base
                .clone()
                .unwrap_or(dir.join(crate::tune::BASE_FILE)),
        )?;
        let tuned = doc(
            "--tuned",
            &args
                .tuned
                .clone()
                .unwrap_or(dir.join(crate::tune::TUNED_FILE)),
        )?;
        return Ok(Inputs {
            base,
            tuned,
            workload,
            goal: settings.goal.clone(),
            min_effect: args.min_effect.unwrap_or(settings.min_effect),
            tune_comparison: c,
        });
    }
    let Some(tuned) = &args.tuned else {
        bail!("say what to verify: --run DIR (a tune's folder), or --tuned FILE with --workload");
    };
    let Some(source) = &args.workload else {
        bail!("--workload is needed without --run (the workload the configuration was tuned for)");
    };
    let workload = shape.build(source, &super::tune::TUNE_SIZES)?;
    let base = match &args.base {
        Some(p) => doc("--base", p)?,
        None => crate::options::rocks::linked_defaults()?.clone(),
    };
    Ok(Inputs {
        base,
        tuned: doc("--tuned", tuned)?,
        workload,
        goal: Default::default(),
        min_effect: args.min_effect.unwrap_or(0.03),
        tune_comparison: None,
    })
}

/// The scale the flags ask for.
fn scale_of(args: &VerifyArgs) -> Scale {
    match args.shape.dataset_size {
        Some(b) => Scale::DataBytes(b),
        None => args.scale,
    }
}

/// Verify and print; also what `tune --verify-scale` calls with the tune's own inputs.
#[allow(clippy::too_many_arguments)]
pub fn verify_with(
    engine: &dyn crate::bench::BenchEngine,
    run: &super::tune::RunArgs,
    base: &crate::options::ini::OptionsDoc,
    tuned: &crate::options::ini::OptionsDoc,
    tune_workload: &crate::bench::Workload,
    scale: Scale,
    rounds: usize,
    goal: crate::tune::objective::Goal,
    min_effect: f64,
    seed: u64,
    tune_comparison: Option<crate::bench::stats::Comparison>,
) -> Result<Verification> {
    let workload = scale.apply(tune_workload)?;
    workload.validate().map_err(|e| anyhow::anyhow!(e))?;
    crate::sysinfo::check_room(run.work_dir.as_deref(), &workload)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = Plan {
        engine,
        tuned_workload: tune_workload.clone(),
        scale: scale.describe(tune_workload),
        workload,
        rounds,
        min_effect,
        goal,
        seed,
        work_dir: run.work_dir.clone(),
        worker_memory: run.worker_memory,
        tune_comparison,
    };
    let w = &plan.workload;
    if !run.quiet {
        eprintln!(
            "verifying at scale: {} ({} keys x {} + {} bytes = {}, {} threads), {} interleaved rounds",
            plan.scale,
            w.num,
            w.key_size,
            w.value_size,
            crate::options::value::human_bytes(w.data_bytes() as i64),
            w.threads,
            rounds
        );
    }
    let quiet = run.quiet;
    let v = verify::run(&plan, base, tuned, &mut |label, round, ops| {
        if !quiet {
            match ops {
                Some(o) => eprintln!("  round {}/{rounds} {label}: {o:.0} ops/s", round + 1),
                None => eprintln!("  round {}/{rounds} {label}: failed", round + 1),
            }
        }
    });
    crate::interrupt::check()?;
    Ok(v)
}

pub fn run(args: &VerifyArgs) -> Result<()> {
    let mut named: Vec<PathBuf> = [&args.base, &args.tuned]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if let Some(dir) = &args.run {
        named.push(dir.join(crate::tune::TUNED_FILE));
        named.push(dir.join(crate::tune::BASE_FILE));
        named.push(dir.join("journal.jsonl"));
    }
    let named: Vec<&Path> = named.iter().map(|p| p.as_path()).collect();
    args.json.refuse_inputs(&named)?;
    let i = inputs(args)?;
    let (engine, _) = args.run_args.engine()?;
    let v = verify_with(
        &engine,
        &args.run_args,
        &i.base,
        &i.tuned,
        &i.workload,
        scale_of(args),
        args.rounds,
        i.goal,
        i.min_effect,
        args.seed,
        i.tune_comparison,
    )?;
    if args.json.emit(&v)? {
        eprint!("{}", verify::text(&v));
        return Ok(());
    }
    print!("{}", verify::text(&v));
    Ok(())
}
