//! The loop beyond a fixed number of rounds and beyond the rule book, on the fake engine of
//! `tuner`: a promising candidate gets more rounds and a clearly worse one stops after one
//! (the sequential design), the value search on its own finds the fake engine's optimum
//! and resumes as it would have gone on, and the hybrid searches the options a model kept, then
//! asks the model again.

use lsmtune::bench::Kind;
use lsmtune::bench::sequential::Stop;
use lsmtune::tune::hybrid::Hybrid;
use lsmtune::tune::journal::{self, Decision, Iteration, Record};
use lsmtune::tune::search::{Method, SearchProposer};
use lsmtune::tune::{Quiet, Tuner};

use crate::tuner::{FakeEngine, Scripted, run, settings};

fn noisy() -> FakeEngine {
    FakeEngine {
        noise: 0.08,
        ..FakeEngine::new()
    }
}

/// A candidate 8% faster, which three rounds of ±8% noise leave undecided, is measured on and
/// kept; then one a third slower than the best stops after its first round.
#[test]
fn a_promising_candidate_gets_more_rounds_and_a_clearly_worse_one_stops_at_once() {
    let better = r#"{"reasoning": "smaller", "changes": [{"write_buffer_size": "32 MiB"}]}"#;
    let worse = r#"{"reasoning": "huge memtables", "changes": [{"write_buffer_size": "1 GiB"}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let engine = noisy();
    let mut p = Scripted::new(vec![vec![better], vec![worse]]);
    let mut s = settings(Kind::FillRandom, 2, false);
    s.max_rounds = 8;
    let its = run(s, &engine, &mut p, dir.path());
    assert_eq!(its.len(), 2);
    assert_eq!(
        its[0].decision,
        Decision::Accepted,
        "{:?} {:?} {}",
        its[0].comparison,
        its[0].stopped,
        its[0].rounds
    );
    assert!(
        its[0].rounds > 3 && its[0].rounds <= 8,
        "{} rounds: a +8% gain under ±8% noise is undecided after 3",
        its[0].rounds
    );
    assert_eq!(
        its[0].candidate.as_ref().unwrap().ops_per_sec.len(),
        its[0].rounds
    );
    assert_eq!(its[1].decision, Decision::Rejected);
    assert_eq!(its[1].stopped, Some(Stop::FirstRoundWorse));
    assert_eq!(its[1].rounds, 1);
    assert_eq!(its[1].candidate.as_ref().unwrap().ops_per_sec.len(), 1);
    let c = its[1].comparison.unwrap();
    assert!(c.effect < -0.2, "{c:?}");
}

fn search_settings(iterations: usize) -> lsmtune::tune::journal::Settings {
    let mut s = settings(Kind::ReadRandom, iterations, false);
    s.max_changes = 16;
    s.search_method = Method::Tpe;
    s
}

/// Alone, the search explores the readrandom space and finds the fake engine's optimum (a
/// filter and a cache holding the data) within 10 candidates, never measuring a configuration
/// twice, and a tune stopped after 6 iterations and resumed proposes what the uninterrupted
/// tune did.
#[test]
fn the_search_alone_finds_the_optimum_and_resumes_as_it_would_have_gone_on() {
    let engine = FakeEngine::new();
    let whole = tempfile::tempdir().unwrap();
    let mut p = SearchProposer::new(Method::Tpe, 7);
    let its = run(search_settings(10), &engine, &mut p, whole.path());
    assert_eq!(its.len(), 10);
    assert!(
        its.iter().all(|i| i.proposer == "search:tpe"),
        "{:?}",
        names(&its)
    );
    let gain = final_gain(whole.path());
    assert!(
        gain > 2.5,
        "tuned/start {gain:.2}: the filter and a large cache give ~3.4x"
    );
    let tuned = std::fs::read_to_string(whole.path().join("OPTIONS-tuned.ini")).unwrap();
    assert!(
        tuned.contains("bloomfilter") || tuned.contains("ribbon"),
        "{tuned}"
    );
    // No configuration twice (the start counts once; every candidate ran 3+ rounds, the best
    // alongside it).
    let mut prints: Vec<String> = its.iter().map(|i| format!("{:?}", i.changes)).collect();
    let n = prints.len();
    prints.sort();
    prints.dedup();
    assert_eq!(prints.len(), n, "a configuration was proposed twice");

    // Six iterations, then a resume to ten: the same candidates.
    let part = tempfile::tempdir().unwrap();
    let mut p = SearchProposer::new(Method::Tpe, 7);
    run(search_settings(6), &engine, &mut p, part.path());
    // Drop the end record so the tune can go on, with a larger budget.
    let records = journal::load(part.path()).unwrap();
    let text: String = records
        .iter()
        .filter(|r| !matches!(r, Record::End { .. }))
        .map(|r| {
            let mut r = r.clone();
            if let Record::Start { settings, .. } = &mut r {
                settings.iterations = 10;
            }
            serde_json::to_string(&r).unwrap() + "\n"
        })
        .collect();
    std::fs::write(part.path().join(journal::FILE), text).unwrap();
    let work = tempfile::tempdir().unwrap();
    let t = Tuner {
        past: None,
        settings: search_settings(10),
        out: part.path().to_path_buf(),
        engine: &engine,
        work_dir: Some(work.path().to_path_buf()),
        progress: &Quiet,
        proposer_reason: "test".into(),
        baseline: None,
    };
    let mut fresh = SearchProposer::new(Method::Tpe, 7);
    t.resume(&mut fresh).unwrap();
    let resumed = iterations(part.path());
    assert_eq!(resumed.len(), 10);
    for (a, b) in its.iter().zip(&resumed) {
        assert_eq!(a.changes, b.changes, "iteration {}", a.iteration);
    }
}

/// The hybrid: the model's kept change is followed by searched turns over the options it kept
/// (in the direction it moved them), and after two searched candidates in a row that are not
/// kept the model is asked again; the model's prompt state shows the searched values.
#[test]
fn the_hybrid_searches_what_the_model_kept_then_asks_the_model_again() {
    let first = r#"{"reasoning": "cache", "changes": [{"table.block_cache_size": "48 MiB"}]}"#;
    let second = r#"{"reasoning": "filter", "changes": [{"table.filter_bits_per_key": 10}]}"#;
    let third = r#"{"reasoning": "jobs", "changes": [{"max_background_jobs": 4}]}"#;
    let model = Scripted::new(vec![vec![first], vec![second], vec![third]]);
    let mut hybrid = Hybrid::new(Box::new(model), Method::Tpe, 3);
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let its = run(search_settings(9), &engine, &mut hybrid, dir.path());
    let who = names(&its);
    assert_eq!(its[0].proposer, "scripted", "{who:?}");
    assert_eq!(its[0].decision, Decision::Accepted);
    assert_eq!(its[1].proposer, "search:tpe", "{who:?}");
    // Searched turns only move the kept option, upwards from 48 MiB.
    for it in its.iter().filter(|i| i.proposer == "search:tpe") {
        let keys: Vec<&String> = it.changes.keys().collect();
        assert!(
            keys.iter()
                .all(|k| *k == "table.block_cache_size" || *k == "table.filter_bits_per_key"),
            "{keys:?}"
        );
    }
    // The model is asked again only after two searched candidates in a row were not kept.
    let back = its
        .iter()
        .skip(1)
        .position(|i| i.proposer == "scripted")
        .map(|i| i + 1)
        .expect("the model was asked again");
    assert!(back >= 3, "{who:?}");
    let before: Vec<&Iteration> = its[1..back].iter().collect();
    assert!(before.iter().all(|i| i.proposer == "search:tpe"), "{who:?}");
    let tail: Vec<Decision> = before.iter().rev().take(2).map(|i| i.decision).collect();
    assert!(
        tail.iter().all(|d| *d != Decision::Accepted) || before.len() >= 4,
        "{who:?} {tail:?}"
    );
}

/// The hybrid whose model keeps nothing: after two model turns the search takes the turns over
/// the workload's whole space (not only what the model kept, which is nothing) and finds what
/// the model missed; once something is kept, it refines that as usual.
#[test]
fn the_hybrid_searches_the_whole_space_when_the_model_keeps_nothing() {
    let jobs = r#"{"reasoning": "jobs", "changes": [{"max_background_jobs": 4}]}"#;
    let more = r#"{"reasoning": "more jobs", "changes": [{"max_background_jobs": 6}]}"#;
    let model = Scripted::new(vec![vec![jobs], vec![more]]);
    let mut hybrid = Hybrid::new(Box::new(model), Method::Tpe, 3);
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let its = run(search_settings(8), &engine, &mut hybrid, dir.path());
    let who = names(&its);
    assert!(
        its[..2]
            .iter()
            .all(|i| i.proposer == "scripted" && i.decision != Decision::Accepted),
        "{who:?}"
    );
    assert_eq!(its[2].proposer, "search:tpe", "{who:?}");
    assert!(
        its[2]
            .reasoning
            .as_deref()
            .unwrap_or("")
            .contains("the model's last turns kept nothing"),
        "{:?}",
        its[2].reasoning
    );
    // Over the whole space: options the model never named.
    assert!(
        its[2].changes.keys().any(|k| k != "max_background_jobs"),
        "{:?}",
        its[2].changes
    );
    assert!(
        its[2..]
            .iter()
            .any(|i| i.proposer == "search:tpe" && i.decision == Decision::Accepted),
        "the search found nothing the fake engine rewards: {who:?}"
    );
    assert!(final_gain(dir.path()) > 1.0, "{who:?}");
}

/// The hybrid whose model keeps a switch (pipelined writes, no value to search): the model's
/// turns go on while they keep something; after two of them in a row keep nothing (the fake
/// engine ignores background jobs), the search over the workload's whole space takes the turns,
/// leaving the kept switch as it is.
#[test]
fn after_a_kept_switch_two_model_misses_hand_the_turns_to_the_whole_space_search() {
    let pipelined = r#"{"reasoning": "pipelining", "changes": [{"enable_pipelined_write": true}]}"#;
    let jobs = r#"{"reasoning": "jobs", "changes": [{"max_background_jobs": 4}]}"#;
    let more = r#"{"reasoning": "more jobs", "changes": [{"max_background_jobs": 6}]}"#;
    let subs = r#"{"reasoning": "subcompactions", "changes": [{"max_subcompactions": 2}]}"#;
    let model = Scripted::new(vec![vec![pipelined], vec![jobs], vec![more], vec![subs]]);
    let mut hybrid = Hybrid::new(Box::new(model), Method::Tpe, 3);
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let mut s = settings(Kind::FillRandom, 5, false);
    s.max_changes = 16;
    s.search = true;
    let its = run(s, &engine, &mut hybrid, dir.path());
    let who = names(&its);
    assert_eq!(its.len(), 5, "{who:?}");
    assert_eq!(its[0].decision, Decision::Accepted, "{who:?}");
    assert_eq!(
        its[0]
            .changes
            .get("enable_pipelined_write")
            .map(String::as_str),
        Some("true"),
        "{:?}",
        its[0].changes
    );
    // Two model turns after the kept switch, neither kept: then the whole-space search.
    assert!(its[..3].iter().all(|i| i.proposer == "scripted"), "{who:?}");
    assert!(
        its[1..3].iter().all(|i| i.decision != Decision::Accepted),
        "{who:?}"
    );
    for it in &its[3..] {
        assert!(it.proposer.starts_with("search:"), "{who:?}");
        let why = it.reasoning.as_deref().unwrap_or_default();
        assert!(why.contains("search over the workload's options"), "{why}");
        // It explores the rest and leaves the kept switch as it is.
        assert!(!why.contains("enable_pipelined_write"), "{why}");
        assert!(
            !it.changes.contains_key("enable_pipelined_write"),
            "{:?}",
            it.changes
        );
    }
    assert!(final_gain(dir.path()) > 1.1, "{who:?}");
}

fn names(its: &[Iteration]) -> Vec<String> {
    its.iter()
        .map(|i| format!("{}:{:?}", i.proposer, i.decision))
        .collect()
}

fn iterations(out: &std::path::Path) -> Vec<Iteration> {
    journal::load(out)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Iteration(it) => Some(*it),
            _ => None,
        })
        .collect()
}

/// The final check's tuned/start ratio (1 when the start was kept).
fn final_gain(out: &std::path::Path) -> f64 {
    match journal::load(out).unwrap().last() {
        Some(Record::End {
            comparison: Some(c),
            kept_base: false,
            ..
        }) => 1.0 + c.effect,
        _ => 1.0,
    }
}
