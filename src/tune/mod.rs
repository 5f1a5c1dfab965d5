//! The tuning loop, the product: measure the starting configuration, then per iteration ask a
//! proposer for changes, calibrate them, benchmark the candidate interleaved with the best so far,
//! keep it only when it is significantly better (confirmed with extra repeats), and feed the
//! processed result back. Stops at convergence (no gain in `patience` iterations in a row), at
//! `--iterations` or at `--time-budget`; a final interleaved comparison of the best against the
//! start gives the gain with its interval, and the start is kept if the best is not confirmed.
//! Every step lands in `journal.jsonl` as it completes; `--resume` continues from it.

pub mod ask;
pub mod backend;
pub mod context;
pub mod expert;
pub mod hybrid;
pub mod journal;
pub mod knowledge;
pub mod lock;
pub mod objective;
pub mod prompt;
pub mod proposer;
pub mod refine;
pub mod report;
pub mod search;
pub mod warm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::bench::BenchEngine;
use crate::bench::sample::mean;
use crate::bench::sequential;
use crate::bench::stats::{Comparison, Verdict, compare, compare_paired};
use crate::grammar::schema::SchemaOptions;
use crate::options::{Calibrator, Catalog, Config, OptionsDoc};
use journal::{Decision, Iteration, Record, Sample, Settings};
use objective::Goal;
use proposer::{Context, Proposer};

/// What the loop reports as it goes (the CLI draws a progress line from it).
pub trait Progress {
    /// A new phase: `baseline`, `iteration 3/8: asking expert`, ...
    fn phase(&self, text: &str);
    /// Generated text from a model, as it streams.
    fn text(&self, _piece: &str) {}
    /// One benchmark repeat finished.
    fn repeat(&self, _label: &str, _ops_per_sec: Option<f64>) {}
    /// One iteration finished.
    fn iteration(&self, _it: &Iteration) {}
}

/// Progress that says nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn phase(&self, _text: &str) {}
}

/// The output folder's files.
pub const TUNED_FILE: &str = "OPTIONS-tuned.ini";
pub const BASE_FILE: &str = "OPTIONS-base.ini";

/// Everything the loop needs besides the proposer.
pub struct Tuner<'a> {
    pub settings: Settings,
    pub out: PathBuf,
    pub engine: &'a dyn BenchEngine,
    /// Parent of the run folders (None: the temp folder).
    pub work_dir: Option<PathBuf>,
    pub progress: &'a dyn Progress,
    /// One-line reason the proposer was chosen (for the journal and report).
    pub proposer_reason: String,
    /// A measurement of the starting configuration to use instead of measuring it (compare
    /// mode shares one per workload); it must be of the same configuration and workload.
    pub baseline: Option<Sample>,
    /// The history's past tunes, to start warm from the nearest similar ones (None: a cold
    /// start, as `--no-history` and `compare` ask).
    pub past: Option<&'a crate::history::Past>,
}

/// Measure a configuration `repeats` times on the tuner's engine (compare mode's shared
/// baseline). Seeds as the tuner's own baseline.
pub fn measure_start(tuner: &Tuner, doc: &OptionsDoc) -> Sample {
    tuner
        .measure_interleaved(
            &[("start", doc)],
            tuner.settings.repeats,
            tuner.settings.seed,
        )
        .remove(0)
}

/// What a finished tune hands back: the end record as journaled, and the report written.
pub struct Finished {
    pub end: Record,
    pub report: report::Report,
}

/// The state rebuilt from a journal (or fresh).
struct State {
    /// The journal's start record.
    start: Record,
    catalog: &'static Catalog,
    facts: crate::sysinfo::Facts,
    base: Config,
    best: Config,
    baseline: Sample,
    best_sample: Sample,
    history: Vec<Iteration>,
    /// Seconds spent before this process (a resumed run).
    elapsed_before: f64,
    schema: SchemaOptions,
    /// Every configuration measured so far (the start included), as [`fingerprint`]s: none is
    /// benchmarked twice.
    measured: Vec<String>,
    /// The warm start (from the start record).
    past: Option<crate::history::Warm>,
}

/// A candidate measured against the best: both samples, the rounds, why it was stopped early
/// (if it was), and the comparison its verdict rests on.
struct Measured {
    best: Sample,
    candidate: Sample,
    rounds: usize,
    stopped: Option<sequential::Stop>,
    comparison: Option<Comparison>,
}

impl State {
    /// Take a finished iteration into the state, the same way when it was just run and when it
    /// is replayed from the journal: the configuration it measured (if any) counts as measured;
    /// a kept candidate becomes the best; otherwise the best's freshest measurement is kept (its
    /// diagnostics go into the next prompt).
    fn apply(&mut self, it: Iteration, candidate: Option<Config>) {
        if let Some(c) = &candidate
            && it.candidate.is_some()
        {
            self.measured.push(fingerprint(c, &self.base, self.catalog));
        }
        match (it.decision, candidate, &it.candidate) {
            (Decision::Accepted, Some(c), Some(s)) => {
                self.best = c;
                self.best_sample = s.clone();
            }
            _ => {
                if let Some(b) = &it.best
                    && b.ops_per_sec.len() >= 2
                {
                    self.best_sample = b.clone();
                }
            }
        }
        self.history.push(it);
    }
}

/// A configuration's identity for "measured already": its tunable options that differ from the
/// start, `key=value` sorted.
pub fn fingerprint(config: &Config, base: &Config, catalog: &Catalog) -> String {
    config
        .diff(base, catalog)
        .iter()
        .map(|(k, (now, _))| format!("{k}={now}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Candidate vs best from interleaved rounds: the paired test when every round produced both
/// measurements (drift cancels), else Welch's test on what was measured.
/// The comparison is of the goal's objective (ops/s, or the reciprocal of a latency or an
/// amplification), so "better" always means higher goodness.
pub fn judge(best: &Sample, cand: &Sample, min_effect: f64, goal: &Goal) -> Option<Comparison> {
    let (b, c) = (goal.goodness(best), goal.goodness(cand));
    if best.failures.is_empty() && cand.failures.is_empty() && b.len() == c.len() {
        compare_paired(&b, &c, min_effect)
    } else {
        compare(&b, &c, min_effect)
    }
}

/// The noise of a pair's log ratio before a candidate is measured: the tune's earlier
/// candidates' rounds, each around its own mean; without any yet, the start's repeats (a pair
/// varies about twice as much as one run).
fn noise(st: &State, goal: &Goal) -> sequential::Noise {
    let mut n = sequential::Noise::default();
    for it in &st.history {
        if let (Some(b), Some(c)) = (&it.best, &it.candidate) {
            n.add(&goal.pair_logs(b, c));
        }
    }
    if n.df < 1.0 {
        let logs: Vec<f64> = goal
            .goodness(&st.baseline)
            .iter()
            .filter(|x| **x > 0.0)
            .map(|x| x.ln())
            .collect();
        n = sequential::Noise::from_unpaired(&logs);
    }
    n
}

/// The comparison a sequential verdict rests on: the mean per-round log ratio with the pooled
/// noise, its 95% interval and one-sided p-value (the verdict is set by the design).
fn sequential_comparison(
    logs: &[f64],
    prior: sequential::Noise,
    min_effect: f64,
) -> Option<Comparison> {
    let (mean, se, df) = sequential::statistic(logs, prior)?;
    let half = crate::bench::stats::t_quantile(0.975, df) * se;
    let t = if se > 0.0 { mean / se } else { 0.0 };
    let effect = mean.exp() - 1.0;
    Some(Comparison {
        verdict: if effect > min_effect {
            Verdict::Better
        } else {
            Verdict::NoSignificantDifference
        },
        effect,
        effect_low: (mean - half).exp() - 1.0,
        effect_high: (mean + half).exp() - 1.0,
        p_value: (2.0 * sequential::p_one_sided(t.abs(), df)).min(1.0),
        df,
    })
}

/// A finished tune's report as its journal and files have it, written again (a newer lsmtune
/// may show more of the same journal); `None` when the journal has no end record yet.
fn finished(records: &[Record], out: &Path) -> Result<Option<Finished>> {
    let Some(end @ Record::End { .. }) = records.last() else {
        return Ok(None);
    };
    let report = report::build_from(records, out)?;
    report::write(out, &report)?;
    Ok(Some(Finished {
        end: end.clone(),
        report,
    }))
}

/// `tune --resume` of a finished tune: its report rewritten, under the run's lock, with no
/// proposer (an endpoint or a model need not be reachable for that); `None` when the tune in
/// `out` has not finished.
pub fn rewrite_finished(out: &Path) -> Result<Option<Finished>> {
    let _lock = lock::RunLock::acquire(out)?;
    finished(&journal::load(out)?, out)
}

impl Tuner<'_> {
    /// How each candidate is measured: looks after `--repeats` rounds, after `--confirm` more,
    /// and at `--max-rounds`.
    fn design(&self) -> sequential::Design {
        let s = &self.settings;
        sequential::Design::new(
            s.repeats,
            s.confirm_repeats,
            s.max_rounds.max(s.repeats + s.confirm_repeats),
            s.min_effect,
        )
    }

    /// Measure `configs` in turn, `rounds` times (a, b, a, b, ...), each repeat in a fresh
    /// folder with its own seed ([`crate::bench::measure_interleaved`]); returns one sample per
    /// config, each repeat reported to the progress line under its label.
    fn measure_interleaved(
        &self,
        configs: &[(&str, &OptionsDoc)],
        rounds: usize,
        seed: u64,
    ) -> Vec<Sample> {
        let docs: Vec<&OptionsDoc> = configs.iter().map(|(_, d)| *d).collect();
        crate::bench::measure_interleaved(
            self.engine,
            &self.settings.workload,
            self.work_dir.as_deref(),
            &docs,
            rounds,
            seed,
            &mut |i, _, outcome| {
                self.progress
                    .repeat(configs[i].0, outcome.as_ref().ok().map(|m| m.ops_per_sec))
            },
        )
    }

    /// Start a new tune in an empty (or new) output folder.
    pub fn start(&self, proposer: &mut dyn Proposer) -> Result<Finished> {
        let _lock = lock::RunLock::acquire(&self.out)?;
        if self.out.join(journal::FILE).exists() {
            bail!(
                "{} already holds a tune (journal.jsonl); continue it with --resume {} or pick a new --out",
                self.out.display(),
                self.out.display()
            );
        }
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        let catalog = crate::options::catalog()?;
        let calibrator = self.settings.calibrator(catalog);
        let (base, notes) = self.settings.base(&calibrator)?;
        crate::runfolder::write_options(
            &base.doc,
            &self.out.join(BASE_FILE),
            "the starting configuration",
        )?;
        let facts_dir = self.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        self.progress.phase("probing the storage");
        let facts = crate::sysinfo::Facts::gather_and_probe(&facts_dir, &catalog.rocksdb_version);
        let baseline = match &self.baseline {
            Some(b) => b.clone(),
            None => {
                self.progress.phase("measuring the starting configuration");
                measure_start(self, &base.doc)
            }
        };
        if baseline.ops_per_sec.len() < 2 {
            bail!(
                "the starting configuration could not be measured twice: {}",
                baseline.failure_text()
            );
        }
        let start = Record::Start {
            version: env!("CARGO_PKG_VERSION").to_string(),
            settings: Box::new(self.settings.clone()),
            facts: facts.clone(),
            rocksdb: catalog.rocksdb_version.clone(),
            base_notes: notes.iter().map(|c| c.to_string()).collect(),
            baseline: baseline.clone(),
            proposer: proposer.name(),
            proposer_reason: self.proposer_reason.clone(),
            past: self.past.map(|p| {
                p.warm(
                    &facts,
                    &self.settings.workload,
                    self.settings.goal.objective.name(),
                    &base,
                    catalog,
                )
            }),
        };
        journal::append(&self.out, &start)?;
        if let Record::Start { past: Some(w), .. } = &start {
            match w.neighbours.first() {
                Some(n) => tracing::info!(
                    "history: {} past tune(s), {} similar; the nearest: {} ({})",
                    w.considered,
                    w.neighbours.len(),
                    crate::input::clip(&n.workload),
                    n.similarity.describe()
                ),
                None => tracing::info!(
                    "history: {} past tune(s), none similar: a cold start",
                    w.considered
                ),
            }
        }
        let state = State {
            catalog,
            facts,
            best: base.clone(),
            base,
            best_sample: baseline.clone(),
            baseline,
            history: Vec::new(),
            elapsed_before: 0.0,
            schema: self.settings.schema(),
            measured: vec![String::new()],
            past: match &start {
                Record::Start { past, .. } => past.clone(),
                _ => None,
            },
            start,
        };
        self.run_noting_stops(state, proposer)
    }

    /// Continue the tune journaled in `self.out`: the journal is read once, under the run-folder
    /// lock, and the state rebuilt by replaying each journaled iteration the way [`Self::run`]
    /// applied it ([`State::apply`]), reading each measured candidate's file.
    pub fn resume(&self, proposer: &mut dyn Proposer) -> Result<Finished> {
        let _lock = lock::RunLock::acquire(&self.out)?;
        let records = journal::load(&self.out)?;
        let (start, facts, baseline) = match records.first() {
            Some(
                r @ Record::Start {
                    facts, baseline, ..
                },
            ) => (r.clone(), facts.clone(), baseline.clone()),
            _ => bail!(
                "{} has no start record",
                self.out.join(journal::FILE).display()
            ),
        };
        if let Some(done) = finished(&records, &self.out)? {
            return Ok(done);
        }
        let catalog = crate::options::catalog()?;
        let base = Config::new(crate::runfolder::read_options(&self.out.join(BASE_FILE))?);
        let mut state = State {
            past: match &start {
                Record::Start { past, .. } => past.clone(),
                _ => None,
            },
            start,
            measured: vec![String::new()],
            catalog,
            facts,
            best: base.clone(),
            base,
            best_sample: baseline.clone(),
            baseline,
            history: Vec::new(),
            elapsed_before: 0.0,
            schema: self.settings.schema(),
        };
        for r in records {
            let Record::Iteration(it) = r else {
                continue;
            };
            let candidate = match &it.candidate_file {
                Some(f) => Some(Config::new(crate::runfolder::read_options(
                    &self.out.join(f),
                )?)),
                None => None,
            };
            state.elapsed_before = it.elapsed;
            state.apply(*it, candidate);
        }
        {
            let ctx = self.context(&state, state.history.len() + 1);
            proposer.restore(&ctx);
        }
        self.run_noting_stops(state, proposer)
    }

    fn context<'s>(&'s self, st: &'s State, iteration: usize) -> Context<'s> {
        let at = context::Standing {
            catalog: st.catalog,
            facts: &st.facts,
            schema: &st.schema,
            base: &st.base,
            best: &st.best,
            best_sample: &st.best_sample,
            baseline: &st.baseline,
            history: &st.history,
            past: st.past.as_ref(),
        };
        Context::new(&self.settings, &at, iteration)
    }

    /// [`Self::run`], writing a stop by signal into the journal (a resume continues from the
    /// last whole iteration either way).
    fn run_noting_stops(&self, mut st: State, proposer: &mut dyn Proposer) -> Result<Finished> {
        let started = Instant::now();
        let reason = self.run(&mut st, proposer, started);
        let done = st.history.len();
        let result = reason.and_then(|reason| {
            let elapsed_now = st.elapsed_before + started.elapsed().as_secs_f64();
            self.finish(st, reason, elapsed_now)
        });
        if let Err(e) = &result
            && let Some(i) = e.downcast_ref::<crate::interrupt::Interrupted>()
        {
            journal::append(
                &self.out,
                &Record::Interrupted {
                    signal: i.name().to_string(),
                    iterations_done: done,
                },
            )?;
        }
        result
    }

    /// Iterate until a stopping rule says stop; returns why.
    fn run(&self, st: &mut State, proposer: &mut dyn Proposer, started: Instant) -> Result<String> {
        let elapsed = |st: &State| st.elapsed_before + started.elapsed().as_secs_f64();
        let budget = self.settings.time_budget_secs;
        let calibrator = self.settings.calibrator(st.catalog);
        let reason = loop {
            let n = st.history.len() + 1;
            if n > self.settings.iterations {
                break format!("{} iterations done", self.settings.iterations);
            }
            let stale = st
                .history
                .iter()
                .rev()
                .take_while(|it| it.decision != Decision::Accepted)
                .count();
            if stale >= self.settings.patience {
                break format!(
                    "converged: no significant gain in {} iterations in a row",
                    self.settings.patience
                );
            }
            if let Some(b) = budget {
                // Stop when the next iteration would likely overrun the budget.
                let per = if st.history.is_empty() {
                    0.0
                } else {
                    elapsed(st) / st.history.len() as f64
                };
                if elapsed(st) + per > b {
                    break format!("time budget of {b:.0} s reached");
                }
            }
            crate::interrupt::check()?;
            let (it, candidate) = self.iteration(st, n, proposer, &calibrator, elapsed(st))?;
            // An iteration cut short by a stop is not journaled: a resume runs it again whole.
            crate::interrupt::check()?;
            journal::append(&self.out, &Record::Iteration(Box::new(it.clone())))?;
            self.progress.iteration(&it);
            st.apply(it, candidate);
        };
        Ok(reason)
    }

    fn iteration(
        &self,
        st: &State,
        n: usize,
        proposer: &mut dyn Proposer,
        calibrator: &Calibrator,
        elapsed_at_start: f64,
    ) -> Result<(Iteration, Option<Config>)> {
        let t0 = Instant::now();
        let of = self.settings.iterations;
        let best_ops = mean(&st.best_sample.ops_per_sec);
        let mut it = Iteration {
            constraints: Vec::new(),
            iteration: n,
            proposer: proposer.name(),
            prompt: None,
            reply: None,
            llm: None,
            reasoning: None,
            proposed: 0,
            invalid: 0,
            changes: Default::default(),
            changes_from: Default::default(),
            corrections: Vec::new(),
            candidate_file: None,
            best: None,
            candidate: None,
            comparison: None,
            decision: Decision::Failed,
            failure: None,
            bench_seconds: 0.0,
            llm_seconds: 0.0,
            elapsed: 0.0,
            best_ops,
            notes: Vec::new(),
            replies: Default::default(),
            rounds: 0,
            stopped: None,
            failure_kind: None,
            mask: None,
        };
        // A refinement step when the last kept change calls for one, else the proposer.
        let step = (self.settings.refine && !proposer.searches_values())
            .then(|| refine::next(&st.history, st.catalog))
            .flatten()
            .map(|step| {
                let changes: Vec<_> = step.changes.into_iter().collect();
                let reply = proposer::Reply::typed(&step.why, &changes);
                (calibrator.calibrate(&st.best, &reply.raw), reply.text)
            })
            .filter(|(cal, _)| {
                !cal.changes.is_empty()
                    && !st
                        .measured
                        .contains(&fingerprint(&cal.config, &st.base, st.catalog))
            });
        let chosen = match step {
            Some((cal, text)) => {
                it.proposer = refine::REFINE.to_string();
                it.reply = Some(text);
                Some(cal)
            }
            None => {
                self.progress
                    .phase(&format!("iteration {n}/{of}: asking {}", proposer.name()));
                match self.ask(st, n, proposer, calibrator, &mut it) {
                    Ok(c) => c,
                    Err(e) => {
                        it.failure = Some(format!("{PROPOSER_FAILED}: {e:#}"));
                        it.failure_kind = Some(journal::FailureKind::Proposer);
                        it.llm_seconds = t0.elapsed().as_secs_f64();
                        it.elapsed = elapsed_at_start + t0.elapsed().as_secs_f64();
                        return Ok((it, None));
                    }
                }
            }
        };
        it.llm_seconds = t0.elapsed().as_secs_f64();
        let Some(cal) = chosen else {
            it.decision = if it.replies.repeated > 0 {
                Decision::Repeat
            } else {
                Decision::NoChange
            };
            it.elapsed = elapsed_at_start + t0.elapsed().as_secs_f64();
            return Ok((it, None));
        };
        it.reasoning = cal.reasoning.clone();
        it.proposed = cal.proposed;
        it.invalid = cal.invalid_entries();
        it.corrections = cal
            .corrections
            .iter()
            .cloned()
            .map(journal::JournaledCorrection::Typed)
            .collect();
        it.changes = cal
            .changes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        it.changes_from = cal
            .changes
            .keys()
            .filter_map(|k| {
                let e = st.catalog.get(k)?;
                Some((k.clone(), st.best.get(e).to_string()))
            })
            .collect();
        let file = format!("candidates/iter-{n:03}.ini");
        crate::runfolder::ensure_dir(&self.out.join("candidates"))?;
        crate::runfolder::write_options(
            &cal.config.doc,
            &self.out.join(&file),
            &format!("lsmtune candidate of iteration {n}"),
        )?;
        it.candidate_file = Some(file);

        let tb = Instant::now();
        let m = self.measure_candidate(st, &cal.config, n)?;
        let (best, cand) = (m.best, m.candidate);
        it.rounds = m.rounds;
        it.stopped = m.stopped;
        let cmp = m.comparison;
        let goal = &self.settings.goal;
        if cand.ops_per_sec.is_empty() {
            it.failure = Some(format!(
                "the candidate could not be measured: {}",
                cand.failure_text()
            ));
        }
        // Constraints first: a candidate that meets them all where the best does not is kept
        // for that alone; otherwise a gain counts only when the candidate meets them.
        it.constraints = goal.checks(&cand.runs.iter().collect::<Vec<_>>());
        let cand_ok = it.constraints.iter().all(|(_, c)| c.met());
        let best_ok = goal.feasible(&best);
        let better = cmp.is_some_and(|c| c.verdict == Verdict::Better);
        it.decision = if it.failure.is_some() {
            Decision::Failed
        } else if !cand.failures.is_empty() {
            it.failure = Some(format!(
                "{} of the candidate's runs failed: {}",
                cand.failures.len(),
                cand.failure_text()
            ));
            Decision::Failed
        } else if cand_ok && (better || !best_ok) {
            Decision::Accepted
        } else {
            Decision::Rejected
        };
        it.comparison = cmp;
        if it.decision == Decision::Accepted {
            it.best_ops = mean(&cand.ops_per_sec);
        } else if best.ops_per_sec.len() >= 2 {
            it.best_ops = mean(&best.ops_per_sec);
        }
        if it.failure.is_some() {
            it.failure_kind = Some(journal::FailureKind::Candidate);
        }
        it.best = Some(best);
        it.candidate = Some(cand);
        it.bench_seconds = tb.elapsed().as_secs_f64();
        it.elapsed = elapsed_at_start + t0.elapsed().as_secs_f64();
        Ok((it, Some(cal.config)))
    }

    /// Measure a candidate against the best, interleaved (best, candidate, best, ...), one
    /// round at a time, judged at each look of the sequential design: a clearly worse first
    /// round stops it, a promising undecided one gets more rounds, up to the cap.
    fn measure_candidate(&self, st: &State, candidate: &Config, n: usize) -> Result<Measured> {
        let of = self.settings.iterations;
        self.progress
            .phase(&format!("iteration {n}/{of}: benchmarking the candidate"));
        let seed = self.settings.seed.wrapping_add(1000 * n as u64);
        let goal = &self.settings.goal;
        let design = self.design();
        let prior = noise(st, goal);
        let mut best = Sample::default();
        let mut cand = Sample::default();
        let mut next = sequential::Next::Continue;
        let mut look = 0;
        while cand.ops_per_sec.len() + cand.failures.len() < design.cap() {
            let round = cand.ops_per_sec.len() + cand.failures.len();
            if round == design.looks[look] {
                self.progress.phase(&format!(
                    "iteration {n}/{of}: more rounds for a promising candidate"
                ));
            }
            let mut s = self.measure_interleaved(
                &[("best", &st.best.doc), ("candidate", &candidate.doc)],
                1,
                seed.wrapping_add(round as u64),
            );
            crate::interrupt::check()?;
            cand.extend(s.pop().unwrap_or_default());
            best.extend(s.pop().unwrap_or_default());
            // A failed run breaks the pairing: judged below on what was measured.
            if !cand.failures.is_empty() || !best.failures.is_empty() {
                break;
            }
            let logs = goal.pair_logs(&best, &cand);
            let rounds = cand.ops_per_sec.len();
            if rounds == 1
                && logs
                    .first()
                    .is_some_and(|l| sequential::abort_after_first(*l, prior, &design))
            {
                next = sequential::Next::Reject(sequential::Stop::FirstRoundWorse);
                break;
            }
            if rounds == design.looks[look] {
                next = sequential::judge(&logs, prior, &design, look);
                if next != sequential::Next::Continue {
                    break;
                }
                look += 1;
            }
        }
        best.summarize();
        cand.summarize();
        let logs = goal.pair_logs(&best, &cand);
        let mut comparison = sequential_comparison(&logs, prior, self.settings.min_effect)
            .or_else(|| judge(&best, &cand, self.settings.min_effect, goal));
        if let Some(c) = &mut comparison {
            c.verdict = match next {
                sequential::Next::Accept => Verdict::Better,
                sequential::Next::Reject(sequential::Stop::Worse) => Verdict::Worse,
                _ => Verdict::NoSignificantDifference,
            };
        }
        Ok(Measured {
            rounds: cand.ops_per_sec.len() + cand.failures.len(),
            stopped: match next {
                sequential::Next::Reject(stop) => Some(stop),
                _ => None,
            },
            best,
            candidate: cand,
            comparison,
        })
    }

    /// Ask the proposer, calibrate every reply against the best configuration, drop replies
    /// that change nothing or repeat a measured configuration, and pick the reply most replies
    /// agree with. When every reply is dropped for repeating, ask again (twice at most) with a
    /// note saying so. Records the prompt, the picked reply, model use and reply counts in `it`.
    fn ask(
        &self,
        st: &State,
        n: usize,
        proposer: &mut dyn Proposer,
        calibrator: &Calibrator,
        it: &mut Iteration,
    ) -> Result<Option<crate::options::Calibrated>> {
        const ASKS: usize = 3;
        let mut note: Option<String> = None;
        let mut mask: Option<ask::MaskTimes> = None;
        for _ in 0..ASKS {
            let mut ctx = self.context(st, n);
            ctx.note = note.as_deref();
            let mut on_text = |t: &str| self.progress.text(t);
            let proposal = proposer.propose(&ctx, &mut on_text)?;
            it.replies.asks += 1;
            it.proposer = proposer.name();
            it.notes.extend(proposal.notes.iter().cloned());
            if let Some(m) = &proposal.mask {
                let all = mask.get_or_insert_with(ask::MaskTimes::default);
                all.extend(m);
                it.mask = Some(all.stats());
            }
            if it.prompt.is_none() {
                it.prompt = proposal.prompt.clone();
            }
            if let Some(u) = proposal.llm {
                match &mut it.llm {
                    None => it.llm = Some(u),
                    Some(acc) => {
                        acc.completion_tokens += u.completion_tokens;
                        acc.prefilled_tokens += u.prefilled_tokens;
                        acc.seconds += u.seconds;
                        acc.prefill_seconds += u.prefill_seconds;
                        acc.decode_seconds += u.decode_seconds;
                        acc.samples += u.samples;
                        acc.notices.extend(u.notices);
                    }
                }
            }
            let mut kept: Vec<(usize, crate::options::Calibrated)> = Vec::new();
            for (i, r) in proposal.replies.iter().enumerate() {
                let cal = calibrator.calibrate(&st.best, &r.raw);
                it.replies.replies += 1;
                it.replies.entries += cal.proposed;
                it.replies.invalid += cal.invalid_entries();
                it.replies.noop += cal
                    .corrections
                    .iter()
                    .filter(|c| c.rule == crate::options::calibrate::Rule::NoChange)
                    .count();
                if cal.changes.is_empty() {
                    continue;
                }
                if st
                    .measured
                    .contains(&fingerprint(&cal.config, &st.base, st.catalog))
                {
                    it.replies.repeated += 1;
                    continue;
                }
                kept.push((i, cal));
            }
            if it.reply.is_none() {
                it.reply = proposal.replies.first().map(|r| r.text.clone());
            }
            let changes: Vec<&std::collections::BTreeMap<String, crate::options::value::Value>> =
                kept.iter().map(|(_, c)| &c.changes).collect();
            let new = changes.len();
            if let Some(pick) = proposer::most_agreed(&changes) {
                let (i, cal) = kept.swap_remove(pick);
                it.reply = Some(proposal.replies[i].text.clone());
                if proposal.replies.len() > 1 {
                    it.notes.push(format!(
                        "picked reply {} of {}: the changes most replies agree on ({} new, {} repeating a measured configuration)",
                        i + 1,
                        proposal.replies.len(),
                        new,
                        it.replies.repeated
                    ));
                }
                return Ok(Some(cal));
            }
            if it.replies.repeated == 0 {
                // Nothing to change, and not for repeating: asking again gives the same.
                return Ok(None);
            }
            note = Some(
                "your last answer repeated a configuration that was already measured (see Tried so far); pick values not tried yet".into(),
            );
        }
        Ok(None)
    }

    /// A configuration measured side by side with the start, interleaved, for `--repeats` +
    /// `--confirm` rounds, and judged by the paired test on the objective: the final check of a
    /// tune, and how compare measures a best-known configuration. Returns the start's sample,
    /// the other's, and the comparison.
    pub fn against_start(
        &self,
        start: &OptionsDoc,
        other: &OptionsDoc,
        label: &str,
    ) -> (Sample, Sample, Option<Comparison>) {
        let mut s = self.measure_interleaved(
            &[("start", start), (label, other)],
            self.settings.repeats + self.settings.confirm_repeats,
            self.settings.seed.wrapping_add(999_999),
        );
        let b = s.pop().unwrap_or_default();
        let a = s.pop().unwrap_or_default();
        let c = judge(&a, &b, self.settings.min_effect, &self.settings.goal);
        (a, b, c)
    }

    /// The final comparison, the tuned file, the report.
    fn finish(&self, st: State, reason: String, elapsed_now: f64) -> Result<Finished> {
        let improved = st.best.diff(&st.base, st.catalog);
        let (final_base, final_best, comparison) = if improved.is_empty() {
            (st.baseline.clone(), st.baseline.clone(), None)
        } else {
            self.progress
                .phase("final check: the best against the start, interleaved");
            let (a, b, c) = self.against_start(&st.base.doc, &st.best.doc, "best");
            crate::interrupt::check()?;
            (a, b, c)
        };
        // Never end below the start: keep it unless the best is at least not worse, and not
        // when the start meets the constraints and the best does not.
        let goal = &self.settings.goal;
        let (start_ok, best_ok) = (goal.feasible(&final_base), goal.feasible(&final_best));
        let kept_base = !improved.is_empty()
            && if start_ok != best_ok {
                // Constraints first: keep whichever meets them.
                start_ok
            } else {
                comparison.is_none_or(|c: Comparison| c.verdict == Verdict::Worse)
            };
        let tuned = if kept_base { &st.base } else { &st.best };
        crate::runfolder::write_options(
            &tuned.doc,
            &self.out.join(TUNED_FILE),
            "tuned by lsmtune (see report.md)",
        )?;
        let end = Record::End {
            reason,
            final_base,
            final_best,
            comparison,
            kept_base,
            elapsed: elapsed_now,
        };
        journal::append(&self.out, &end)?;
        let report = report::assemble(&st.start, st.history, Some(&end), Some((&st.base, tuned)))?;
        report::write(&self.out, &report)?;
        Ok(Finished { end, report })
    }
}

/// The words a failed proposer's message starts with (journals before `failure_kind` are read
/// by them).
pub const PROPOSER_FAILED: &str = "the proposer failed";

/// The proposer's last failure when it failed in every iteration of a run (so the run tuned
/// nothing for a reason the user must fix: an endpoint that never answers, a model that cannot
/// load); None when any iteration got a proposal.
pub fn never_proposed(its: &[Iteration]) -> Option<&str> {
    let failures: Vec<&str> = its
        .iter()
        .map(|i| i.failure.as_deref().filter(|_| i.proposer_failed()))
        .collect::<Option<_>>()?;
    failures.last().copied()
}

/// Where a tune's files are, for users of a finished run.
pub fn tuned_file(out: &Path) -> PathBuf {
    out.join(TUNED_FILE)
}

/// A duration from seconds, for settings.
pub fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}
