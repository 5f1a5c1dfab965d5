//! The tune's side of the tuning memory ([`crate::history`]): a finished run folder read into
//! a history record ([`recorded`], [`record`]), and the warm start's first candidate for the
//! expert, the search and the model-steered search ([`seed`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::journal::{self, Decision, Record};
use super::proposer::Context;
use crate::history::similar::pct;
use crate::history::{self, Features, Machine, Outcome, Step, Tune};
use crate::options::value::Value;

/// A finished tune's record for the history, from its run folder (journal, OPTIONS-base.ini and
/// OPTIONS-tuned.ini). An unfinished tune is an error saying so.
pub fn recorded(dir: &Path) -> Result<Tune> {
    let records = journal::load(dir)?;
    let Some(start @ Record::Start { .. }) = records.first() else {
        bail!("{} holds no tune (no journal start record)", dir.display());
    };
    let Record::Start {
        version,
        settings,
        facts,
        proposer,
        ..
    } = start
    else {
        unreachable!()
    };
    let Some(Record::End {
        comparison,
        kept_base,
        elapsed,
        ..
    }) = records.iter().find(|r| matches!(r, Record::End { .. }))
    else {
        bail!(
            "{} is not finished: only a finished tune is recorded (`lsmtune tune --resume {}` finishes it)",
            dir.display(),
            dir.display()
        );
    };
    let catalog = crate::options::catalog()?;
    let base = crate::options::Config::new(crate::runfolder::read_options(
        &dir.join(crate::tune::BASE_FILE),
    )?);
    let best = if *kept_base {
        BTreeMap::new()
    } else {
        let tuned = crate::options::Config::new(crate::runfolder::read_options(
            &crate::tune::tuned_file(dir),
        )?);
        tuned
            .diff(&base, catalog)
            .into_iter()
            .map(|(k, (t, _))| (k, t.to_string()))
            .collect()
    };
    let iterations: Vec<&journal::Iteration> = records
        .iter()
        .filter_map(|r| match r {
            Record::Iteration(it) => Some(it.as_ref()),
            _ => None,
        })
        .collect();
    let steps = iterations
        .iter()
        .filter_map(|it| {
            let c = it.comparison?;
            Some(Step {
                iteration: it.iteration,
                proposer: it.proposer.clone(),
                changes: it.changes.clone(),
                from: it.changes_from.clone(),
                kept: it.decision == Decision::Accepted,
                effect: c.effect,
                low: c.effect_low,
                high: c.effect_high,
            })
        })
        .collect();
    let first_line = serde_json::to_string(start)?;
    Ok(Tune {
        format: history::FORMAT.to_string(),
        id: history::hex(history::fnv(first_line.as_bytes())),
        recorded: history::now(),
        version: version.clone(),
        machine: Machine::of(facts),
        workload: Features::of(&settings.workload),
        objective: settings.goal.objective.name().to_string(),
        proposer: proposer.clone(),
        start: history::start_hash(&base, catalog),
        steps,
        outcome: comparison.map(|c| Outcome {
            effect: c.effect,
            low: c.effect_low,
            high: c.effect_high,
            kept_start: *kept_base,
        }),
        best,
        iterations: iterations.len(),
        elapsed_secs: *elapsed,
        source: Some(dir.display().to_string()),
    })
}

/// Record a finished tune's folder into the history at `path`; returns the tune recorded and
/// whether it was new.
pub fn record(path: &Path, dir: &Path) -> Result<(Tune, bool)> {
    let tune = recorded(dir)?;
    let mut store = history::store::Store::open(path)?;
    let new = store
        .insert(&tune)
        .with_context(|| format!("cannot record into {}", path.display()))?;
    Ok((tune, new))
}

/// The first candidate a warm start gives the expert, the search and the model-steered
/// search: the nearest neighbour's kept changes, when its gain was confirmed, no similar tune
/// measured them as a whole and dropped them, and the tune has measured
/// nothing yet. Values are typed by the catalog; options it does not know are left out (the
/// calibrator checks the rest as any proposal).
pub fn seed(ctx: &Context) -> Option<(String, Vec<(String, Value)>)> {
    if !ctx.history.is_empty() {
        return None;
    }
    let warm = ctx.past?;
    // Not what a similar tune already tried as a whole and did not keep.
    let tried_and_dropped = |best: &BTreeMap<String, String>| {
        warm.neighbours
            .iter()
            .flat_map(|n| &n.steps)
            .any(|s| !s.kept && &s.changes == best)
    };
    let n = warm.neighbours.iter().find(|n| {
        n.outcome.is_some_and(|o| o.confirmed())
            && !n.best.is_empty()
            && !tried_and_dropped(&n.best)
    })?;
    let o = n.outcome?;
    let changes: Vec<(String, Value)> = n
        .best
        .iter()
        .filter_map(|(k, v)| {
            let e = ctx.catalog.get(k)?;
            let value = crate::options::value::value_of(&e.spec.ty, v)?;
            (ctx.best.get(e) != value).then(|| (k.clone(), value))
        })
        .collect();
    if changes.is_empty() {
        return None;
    }
    Some((
        format!(
            "history: the kept changes of a past tune of {} ({}), {} [{}, {}] there",
            crate::input::clip(&n.workload),
            n.similarity.describe(),
            pct(o.effect),
            pct(o.low),
            pct(o.high)
        ),
        changes,
    ))
}
