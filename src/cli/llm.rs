//! `lsmtune llm turns`: what keeping the KV cache across turns saves in a tuning session,
//! measured side by side (cache kept vs every turn prefilled from scratch). Each turn is the
//! tuner's self-contained state prompt after a synthetic history of that many iterations; the
//! cache keeps the prefix turns share (system message, machine, workload).

use anyhow::Result;

use super::ModelSource;
use crate::llm::{GenParams, Llm, Message, local::LocalModel};

/// A finished iteration of the kind the tuner journals, for a synthetic history: iteration
/// `n` tried one option and kept it when `n` is odd.
fn synthetic_iteration(n: usize) -> crate::tune::journal::Iteration {
    use crate::bench::stats::{Comparison, Verdict};
    use crate::tune::journal::{Decision, Iteration, Sample};
    let changes: [(&str, &str, &str); 6] = [
        ("write_buffer_size", "67108864", "33554432"),
        ("enable_pipelined_write", "false", "true"),
        ("max_background_jobs", "2", "4"),
        ("max_write_buffer_number", "2", "4"),
        ("bytes_per_sync", "0", "1048576"),
        ("compression", "kLZ4Compression", "kNoCompression"),
    ];
    let (k, from, to) = changes[(n - 1) % changes.len()];
    let kept = n % 2 == 1;
    let effect = if kept { 0.12 } else { -0.02 };
    let sample = Sample {
        ops_per_sec: vec![200_000.0, 205_000.0],
        ..Sample::default()
    };
    Iteration {
        iteration: n,
        proposer: "local".into(),
        prompt: None,
        reply: None,
        llm: None,
        reasoning: None,
        proposed: 1,
        invalid: 0,
        changes: [(k.to_string(), to.to_string())].into(),
        changes_from: [(k.to_string(), from.to_string())].into(),
        corrections: Vec::new(),
        candidate_file: None,
        best: Some(sample.clone()),
        candidate: Some(sample),
        comparison: Some(Comparison {
            verdict: if kept {
                Verdict::Better
            } else {
                Verdict::NoSignificantDifference
            },
            effect,
            effect_low: effect - 0.04,
            effect_high: effect + 0.04,
            p_value: 0.01,
            df: 3.0,
        }),
        decision: if kept {
            Decision::Accepted
        } else {
            Decision::Rejected
        },
        failure: None,
        bench_seconds: 20.0,
        llm_seconds: 5.0,
        elapsed: 25.0 * n as f64,
        best_ops: 200_000.0,
        notes: Vec::new(),
        replies: Default::default(),
    }
}

pub fn turns_cmd(
    model: &ModelSource,
    turns: usize,
    gen_tokens: usize,
    repeats: usize,
    json: super::Json,
) -> Result<()> {
    let files = model.files()?;
    let mut llm = LocalModel::load(&files)?;
    let catalog = crate::options::catalog()?;
    let schema = crate::grammar::schema::SchemaOptions::default();
    let facts = crate::sysinfo::Facts::gather(&std::env::temp_dir(), &catalog.rocksdb_version);
    let mut workload = crate::bench::Workload::new(crate::bench::Kind::FillRandom);
    (workload.num, workload.value_size, workload.threads) = (300_000, 400, 2);
    let base = crate::options::default_config()?;
    let history: Vec<_> = (1..turns.max(1)).map(synthetic_iteration).collect();
    let diagnostics = crate::bench::measure::Diagnostics {
        stall_share: Some(0.0),
        write_amplification: Some(2.1),
        l0_files: 3,
        compaction_cpu_share: Some(0.3),
        ..Default::default()
    };
    // The prompt of turn t (1-based): the state after t - 1 iterations.
    let prompt = |t: usize| {
        let ctx = crate::tune::proposer::Context {
            catalog,
            facts: &facts,
            workload: &workload,
            base: &base,
            best: &base,
            best_diagnostics: Some(diagnostics),
            best_ops: 200_000.0,
            best_p50_us: Some(6.0),
            best_p99_us: Some(40.0),
            baseline_ops: 180_000.0,
            history: &history[..t - 1],
            memory_budget: 4 << 30,
            schema: &schema,
            iteration: t,
            note: None,
        };
        let level = crate::prompt::HintLevel::Knowledge;
        let offers = crate::prompt::offers(&ctx, level, Default::default());
        let max = crate::prompt::MODEL_MAX_CHANGES;
        [
            Message::system(crate::prompt::system(max)),
            Message::user(crate::prompt::state(&ctx, level, &offers, max)),
        ]
    };
    let params = GenParams {
        max_tokens: gen_tokens,
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..GenParams::default()
    };
    // rows[mode][turn] = (prompt tokens, prefilled tokens, prefill seconds) per repeat.
    let mut rows: Vec<Vec<Vec<(usize, usize, f64)>>> = vec![vec![Vec::new(); turns]; 2];
    for _ in 0..repeats.max(1) {
        for (mode, keep) in [true, false].into_iter().enumerate() {
            llm.reuse_kv = keep;
            llm.reset()?;
            for (t, row) in rows[mode].iter_mut().enumerate() {
                let c = llm.chat(&prompt(t + 1), None, &params, &mut |_| {})?;
                row.push((
                    c.prompt_tokens,
                    c.prompt_tokens - c.cached_tokens,
                    c.prefill_seconds,
                ));
            }
        }
    }
    let mean = |v: &[(usize, usize, f64)], f: &dyn Fn(&(usize, usize, f64)) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
    };
    let mut out = Vec::new();
    for (t, (kept, scratch)) in rows[0].iter().zip(&rows[1]).enumerate() {
        out.push(serde_json::json!({
            "turn": t + 1,
            "prompt_tokens": mean(kept, &|r| r.0 as f64),
            "prefilled_kept": mean(kept, &|r| r.1 as f64),
            "prefill_s_kept": mean(kept, &|r| r.2),
            "prefilled_scratch": mean(scratch, &|r| r.1 as f64),
            "prefill_s_scratch": mean(scratch, &|r| r.2),
        }));
    }
    if json.emit_text(&serde_json::json!({"model": llm.name(), "turns": out}).to_string())? {
        return Ok(());
    }
    println!(
        "{}: {turns} turns, {gen_tokens}-token greedy replies, {repeats} repeat(s)",
        llm.name()
    );
    println!(
        "turn | prompt tokens | prefilled (cache kept) | prefill s | prefilled (scratch) | prefill s"
    );
    for r in &out {
        println!(
            "{:>4} | {:>13.0} | {:>22.0} | {:>9.2} | {:>19.0} | {:>9.2}",
            r["turn"].as_u64().unwrap_or(0),
            r["prompt_tokens"].as_f64().unwrap_or(0.0),
            r["prefilled_kept"].as_f64().unwrap_or(0.0),
            r["prefill_s_kept"].as_f64().unwrap_or(0.0),
            r["prefilled_scratch"].as_f64().unwrap_or(0.0),
            r["prefill_s_scratch"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
