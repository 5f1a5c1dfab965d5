//! `lsmtune llm`: a local model measured and tried by hand. `llm bench` measures prefill and
//! decode speed (free and under the proposal grammar); `llm chat` sends one message; `llm turns`
//! measures what keeping the KV cache across turns saves in a tuning session, side by side
//! (cache kept vs every turn prefilled from scratch), each turn the tuner's self-contained state
//! prompt after a synthetic history of that many iterations (the cache keeps the prefix turns
//! share: system message, machine, workload).

use anyhow::Result;
use clap::Subcommand;

use super::args::{Json, ModelSource};
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
        constraints: Vec::new(),
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
        rounds: 5,
        stopped: None,
        failure_kind: None,
        mask: None,
    }
}

/// The best configuration's and the start's measurements of the synthetic session: 200 000
/// and 180 000 ops/s, a few symptoms.
fn synthetic_measurements() -> (crate::bench::Sample, crate::bench::Sample) {
    let best = crate::bench::Sample {
        ops_per_sec: vec![200_000.0],
        diagnostics: Some(crate::bench::measure::Diagnostics {
            stall_share: Some(0.0),
            write_amplification: Some(2.1),
            l0_files: 3,
            compaction_cpu_share: Some(0.3),
            ..Default::default()
        }),
        p50_us: Some(6.0),
        p99_us: Some(40.0),
        ..Default::default()
    };
    let baseline = crate::bench::Sample {
        ops_per_sec: vec![180_000.0],
        ..Default::default()
    };
    (best, baseline)
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
    let facts = crate::sysinfo::Facts::gather(&std::env::temp_dir(), &catalog.rocksdb_version);
    let mut workload = crate::bench::Workload::new(crate::bench::Kind::FillRandom);
    (workload.num, workload.value_size, workload.threads) = (300_000, 400, 2);
    let mut settings = super::propose::turn_settings(
        workload,
        &super::args::defaults::<super::args::ProposalArgs>(),
        crate::tune::objective::Goal::default(),
    );
    settings.memory_budget = 4 << 30;
    let schema = settings.schema();
    let base = crate::options::default_config()?;
    let history: Vec<_> = (1..turns.max(1)).map(synthetic_iteration).collect();
    let (best, baseline) = synthetic_measurements();
    // The prompt of turn t (1-based): the state after t - 1 iterations.
    let prompt = |t: usize| {
        let at = crate::tune::context::Standing {
            catalog,
            facts: &facts,
            schema: &schema,
            base: &base,
            best: &base,
            best_sample: &best,
            baseline: &baseline,
            history: &history[..t - 1],
            past: None,
        };
        let ctx = crate::tune::context::Context::new(&settings, &at, t);
        let level = crate::tune::prompt::HintLevel::Knowledge;
        let offers = crate::tune::prompt::offers(&ctx, level, Default::default());
        let max = crate::tune::prompt::MODEL_MAX_CHANGES;
        [
            Message::system(crate::tune::prompt::system(max)),
            Message::user(crate::tune::prompt::state(&ctx, level, &offers, max)),
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

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Measure prefill and decode speed (tokens/s) of a local model.
    ///
    /// A prompt of about --prompt-tokens tokens, then exactly --gen-tokens generated
    /// (end-of-sequence ignored), each repeat from an empty KV cache.
    ///
    /// Example:
    ///   lsmtune models make-test-model --shape qwen2.5-0.5b --out /tmp/q05
    ///   lsmtune llm bench --model /tmp/q05 --prompt-tokens 128 --gen-tokens 64
    #[command(verbatim_doc_comment)]
    Bench {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also decode under the proposal grammar, interleaved with the unconstrained runs
        /// (same model, prompt and seeds; the free run is cut to the constrained run's length,
        /// since decode speed falls as the context grows): tokens/s of both, their ratio, and
        /// the grammar's mask time per token (p50, p99). Reasoning is bounded to 120 characters
        /// so the run reaches the option keys and values.
        #[arg(long)]
        grammar: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Measure what the KV cache kept across turns saves.
    ///
    /// A tuning conversation (the real first turn, then feedback turns of the tuner's size) run
    /// twice, cache kept and from scratch, with prompt tokens, tokens actually prefilled and
    /// prefill seconds per turn.
    ///
    /// Example:
    ///   lsmtune llm turns --model /tmp/q05 --turns 4
    #[command(verbatim_doc_comment)]
    Turns {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long, default_value_t = 4)]
        turns: usize,
        /// Reply length (greedy, so both runs see the same conversation).
        #[arg(long, default_value_t = 48)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 1)]
        repeats: usize,
        #[command(flatten)]
        json: Json,
    },
    /// Send one prompt, stream the reply, print token counts and tokens/s.
    Chat {
        #[command(flatten)]
        model: ModelSource,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
        #[arg(long, default_value_t = 0.9)]
        top_p: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

pub fn run(cmd: LlmCommand) -> Result<()> {
    match cmd {
        LlmCommand::Turns {
            model,
            turns,
            gen_tokens,
            repeats,
            json,
        } => turns_cmd(&model, turns, gen_tokens, repeats, json),
        LlmCommand::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            repeats,
            grammar,
            json,
        } => bench_cmd(&model, prompt_tokens, gen_tokens, repeats, grammar, json),
        LlmCommand::Chat {
            model,
            prompt,
            system,
            max_tokens,
            temperature,
            top_p,
            seed,
        } => {
            let params = GenParams {
                max_tokens,
                temperature,
                top_p,
                seed,
                ..GenParams::default()
            };
            chat_cmd(&model, &prompt, system, &params)
        }
    }
}

/// `llm bench`'s measurements over every repeat: tokens/s of each kind of run, the mask times
/// and the tokens the grammar forced.
#[derive(Default)]
struct SpeedRuns {
    prefill: Vec<f64>,
    decode: Vec<f64>,
    /// Under the grammar, forced tokens taken in batches (as in use).
    decode_constrained: Vec<f64>,
    /// Under the grammar, every token sampled under its mask.
    decode_masked: Vec<f64>,
    /// Mask times with forced tokens taken, and at every position.
    masks_in_use: Vec<f64>,
    masks_everywhere: Vec<f64>,
    forced: usize,
    constrained_tokens: usize,
    prompt_tokens: usize,
}

/// A prompt of about `tokens` tokens for `llm bench`.
fn bench_prompt(llm: &LocalModel, tokens: usize) -> Result<String> {
    let mut text = String::from("Tune RocksDB for a write-heavy workload. ");
    while llm.count_tokens(&text)? < tokens {
        text.push_str("Compaction, memtables, block cache, bloom filters and write stalls. ");
    }
    Ok(text)
}

/// The whole proposal grammar (reasoning bounded to 120 characters, so a run reaches the
/// option keys and values), compiled for `llm`.
fn bench_grammar(llm: &LocalModel) -> Result<crate::grammar::Grammar> {
    let opts = crate::grammar::schema::SchemaOptions {
        reasoning_chars: 120,
        ..Default::default()
    };
    let schema = crate::grammar::schema::proposal_schema(crate::options::catalog()?, &opts);
    let t = std::time::Instant::now();
    let g = crate::grammar::Grammar::json_schema(llm.tokenizer(), llm.eos_tokens(), &schema)?;
    tracing::info!(
        "grammar compiled in {:.2} s for a {}-token vocabulary",
        t.elapsed().as_secs_f64(),
        llm.tokenizer().n_ids()
    );
    Ok(g)
}

impl SpeedRuns {
    /// One repeat: under the grammar first (every token sampled under its mask, then the same
    /// seed with forced tokens taken in batches), then free, cut to the constrained run's
    /// length (decode speed falls as the context grows: equal lengths are compared).
    fn repeat(
        &mut self,
        llm: &mut LocalModel,
        grammar: Option<&crate::grammar::Grammar>,
        prompt: &[Message],
        params: &GenParams,
    ) -> Result<()> {
        let mut free_len = params.max_tokens;
        if let Some(g) = grammar {
            let cparams = GenParams {
                ignore_eos: false,
                ..params.clone()
            };
            for take_forced in [false, true] {
                let mut con = g.constraint();
                con.take_forced = take_forced;
                let c = llm.chat(prompt, Some(&mut con), &cparams, &mut |_| {})?;
                if take_forced {
                    self.decode_constrained.push(c.decode_tokens_per_second());
                    self.constrained_tokens += c.completion_tokens;
                    self.forced += con.forced;
                    self.masks_in_use.extend_from_slice(&con.mask_seconds);
                } else {
                    self.decode_masked.push(c.decode_tokens_per_second());
                    self.masks_everywhere.extend_from_slice(&con.mask_seconds);
                    free_len = c.completion_tokens.max(1);
                }
            }
        }
        let fparams = GenParams {
            max_tokens: free_len,
            ..params.clone()
        };
        let c = llm.chat(prompt, None, &fparams, &mut |_| {})?;
        self.prompt_tokens = c.prompt_tokens;
        self.prefill.push(c.prefill_tokens_per_second());
        self.decode.push(c.decode_tokens_per_second());
        Ok(())
    }

    /// The result as `--json` prints it.
    fn json(&self, model: &str, gen_tokens: usize, grammar: bool) -> serde_json::Value {
        use crate::bench::stats::{Summary, quantile};
        let us = |v: &[f64], q: f64| grammar.then(|| quantile(v, q) * 1e6);
        serde_json::json!({"model": model, "prompt_tokens": self.prompt_tokens,
            "gen_tokens": gen_tokens, "prefill_tok_s": Summary::of(&self.prefill),
            "decode_tok_s": Summary::of(&self.decode),
            "constrained_decode_tok_s": Summary::of(&self.decode_constrained),
            "constrained_over_free": self.over_free(&self.decode_constrained),
            "masked_decode_tok_s": Summary::of(&self.decode_masked),
            "masked_over_free": self.over_free(&self.decode_masked),
            "mask_p50_us": us(&self.masks_in_use, 0.5),
            "mask_p99_us": us(&self.masks_in_use, 0.99),
            "sampled_masks": self.masks_in_use.len(),
            "every_position_mask_p50_us": us(&self.masks_everywhere, 0.5),
            "every_position_mask_p99_us": us(&self.masks_everywhere, 0.99),
            "masks": self.masks_everywhere.len(), "forced_tokens": self.forced,
            "constrained_tokens": self.constrained_tokens})
    }

    /// Each repeat's tokens/s in `xs` over its free run's.
    fn over_free(&self, xs: &[f64]) -> Option<crate::bench::stats::Summary> {
        let r: Vec<f64> = xs.iter().zip(&self.decode).map(|(g, u)| g / u).collect();
        crate::bench::stats::Summary::of(&r)
    }

    /// The result in text.
    fn print(&self, model: &str, gen_tokens: usize, repeats: usize) {
        use crate::bench::stats::{Summary, quantile};
        println!(
            "{model}: prompt {} tokens, {gen_tokens} generated, {repeats} repeat(s)",
            self.prompt_tokens
        );
        if let (Some(p), Some(d)) = (Summary::of(&self.prefill), Summary::of(&self.decode)) {
            println!(
                "prefill {:.1} tok/s +- {:.1}, decode {:.1} tok/s +- {:.1} (95% CI)",
                p.mean, p.ci95, d.mean, d.ci95
            );
        }
        if let (Some(dm), Some(r)) = (
            Summary::of(&self.decode_masked),
            self.over_free(&self.decode_masked),
        ) {
            println!(
                "masked decode (every token sampled under the mask) {:.1} tok/s +- {:.1}; masked/free {:.3} +- {:.3}",
                dm.mean, dm.ci95, r.mean, r.ci95
            );
        }
        if let (Some(dg), Some(r)) = (
            Summary::of(&self.decode_constrained),
            self.over_free(&self.decode_constrained),
        ) {
            println!(
                "constrained decode (forced tokens batched) {:.1} tok/s +- {:.1} ({} tokens, {} forced); constrained/free {:.3} +- {:.3}",
                dg.mean, dg.ci95, self.constrained_tokens, self.forced, r.mean, r.ci95
            );
            let (used, every) = (&self.masks_in_use, &self.masks_everywhere);
            println!(
                "mask per sampled token (forced tokens taken, as in use): p50 {:.1} us, p99 {:.1} us ({} masks)",
                quantile(used, 0.5) * 1e6,
                quantile(used, 0.99) * 1e6,
                used.len()
            );
            println!(
                "mask at every position (nothing forced): p50 {:.1} us, p99 {:.1} us ({} masks)",
                quantile(every, 0.5) * 1e6,
                quantile(every, 0.99) * 1e6,
                every.len()
            );
        }
    }
}

/// `llm bench`: prefill and decode speed, free and (with `grammar`) under the proposal
/// grammar, each repeat from an empty KV cache.
fn bench_cmd(
    model: &ModelSource,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    grammar: bool,
    json: Json,
) -> Result<()> {
    let files = model.files()?;
    let mut llm = LocalModel::load(&files)?;
    llm.reuse_kv = false;
    let prompt = [Message::user(bench_prompt(&llm, prompt_tokens)?)];
    let constrained = grammar.then(|| bench_grammar(&llm)).transpose()?;
    let mut runs = SpeedRuns::default();
    for r in 0..repeats.max(1) {
        let params = GenParams {
            max_tokens: gen_tokens,
            temperature: 0.7,
            seed: r as u64,
            repeat_penalty: 1.0,
            ignore_eos: true,
            ..GenParams::default()
        };
        runs.repeat(&mut llm, constrained.as_ref(), &prompt, &params)?;
    }
    if !json.emit_text(&runs.json(&llm.name(), gen_tokens, grammar).to_string())? {
        runs.print(&llm.name(), gen_tokens, repeats);
    }
    Ok(())
}

/// `llm chat`: one message (and an optional system message), the reply streamed.
fn chat_cmd(
    model: &ModelSource,
    prompt: &str,
    system: Option<String>,
    params: &GenParams,
) -> Result<()> {
    use std::io::Write;
    let files = model.files()?;
    let load_start = std::time::Instant::now();
    let mut llm = LocalModel::load(&files)?;
    tracing::info!(
        "loaded {} in {:.2} s",
        llm.name(),
        load_start.elapsed().as_secs_f64()
    );
    for note in llm.notes() {
        tracing::info!("{note}");
    }
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(Message::system(s));
    }
    messages.push(Message::user(prompt.to_string()));
    let mut stdout = std::io::stdout();
    let c = llm.chat(&messages, None, params, &mut |t| {
        let _ = stdout.write_all(t.as_bytes());
        let _ = stdout.flush();
    })?;
    println!();
    tracing::info!(
        "prompt {} tokens ({:.1} tok/s prefill), reply {} tokens ({:.1} tok/s decode), finished by {:?}",
        c.prompt_tokens,
        c.prefill_tokens_per_second(),
        c.completion_tokens,
        c.decode_tokens_per_second(),
        c.finish
    );
    Ok(())
}
