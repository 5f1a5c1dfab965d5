#!/usr/bin/env bash
# The model as tuner, measured: `lsmtune compare` with local models, the expert and random on
# the same workloads, seeds and candidate budget, then a summary: geometric-mean gain per
# proposer with each workload's 95% interval, and the ablation columns (invalid-before-
# calibration, no-op and repeated-reply rates, model seconds and tokens per iteration, the first
# turn's prompt size).
#
#   bash benches/model_tuner.sh OUT [proposers] [workloads] [seeds] [iterations] [hints]
#
# Defaults: the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M (benches/fetch_test_models.sh qwen),
# expert and random; fillrandom, readrandom, readrandomwriterandom, ycsb-a; 3 seeds; 8
# iterations; hints `knowledge`. For the ablation, pass hints `none,diagnostics,knowledge`.
# OUT is a compare folder: run the same command again to resume after an interruption. Hours
# on 2 cores (each tune takes 3-8 minutes); not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benches/model_tuner.sh OUT [proposers] [workloads] [seeds] [iterations] [hints]}
models=${LSMTUNE_TEST_MODELS:-$HOME/.cache/lsmtune/models}
proposers=${2:-"local:$models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf,expert,random"}
workloads=${3:-"fillrandom,readrandom,readrandomwriterandom,ycsb-a"}
seeds=${4:-3}
iterations=${5:-8}
hints=${6:-knowledge}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" compare --proposers "$proposers" --workloads "$workloads" --seeds "$seeds" \
  --iterations "$iterations" --hints "$hints" --out "$out" --quiet >&2
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out" <<'PY'
import json, math, os, sys, glob
out = sys.argv[1]
rows = json.load(open(os.path.join(out, "results.json")))
def short(p):
    return p.replace(os.path.expanduser("~/.cache/lsmtune/models/"), "")
print("| proposer | workload | seeds | tuned/start (95% CI over seeds) | per seed | iterations to 95% |")
print("|---|---|---|---|---|---|")
by = {}
for r in rows:
    g = 1 + r["gain_mean"]
    by.setdefault(r["proposer"], []).append(g)
    seeds = ", ".join(f"{1 + x:.2f}x" for x in r["gains"])
    print(f"| {short(r['proposer'])} | {r['workload']} | {r['seeds']} | **{g:.2f}x** "
          f"({1 + r['gain_low']:.2f}..{1 + r['gain_high']:.2f}) | {seeds} | {r['iterations_to_95']:.1f} |")
print()
print("| proposer | geometric mean tuned/start | workloads |")
print("|---|---|---|")
for p, gs in by.items():
    gm = math.exp(sum(math.log(max(g, 1e-9)) for g in gs) / len(gs))
    print(f"| {short(p)} | **{gm:.2f}x** | {len(gs)} |")
print()
# Ablation columns from the journals.
print("| proposer | invalid before calibration | no-op entries | repeated replies | replies/iteration | model s/iteration | prompt tok (first turn) | prefilled tok/iteration | completion tok/iteration | bench s/iteration |")
print("|---|---|---|---|---|---|---|---|---|---|")
for p in by:
    slug_rows = [r for r in rows if r["proposer"] == p]
    its = []
    firsts = []
    for path in glob.glob(os.path.join(out, "runs", "*", "*", "seed-*", "journal.jsonl")):
        recs = [json.loads(l) for l in open(path) if l.strip()]
        if not recs or recs[0].get("record") != "start":
            continue
        st = recs[0]
        label = st["proposer"]
        s = st["settings"]
        # Match the run to the row by its folder (the row label's slug is the folder name).
        folder = path.split(os.sep)[-3]
        want = "".join(c if c.isalnum() or c in "-." else "_" for c in p.split(" [")[0])
        if " [hints=" in p:
            want += "_hints-" + p.split("[hints=")[1].rstrip("]")
        if folder != want:
            continue
        first = True
        for r in recs:
            if r.get("record") != "iteration":
                continue
            its.append(r)
            if first and r.get("llm"):
                firsts.append(r["llm"]["prompt_tokens"])
                first = False
    if not its:
        continue
    rep = lambda k: sum(i.get("replies", {}).get(k, 0) for i in its)
    entries = rep("entries") or sum(i["proposed"] for i in its)
    invalid = rep("invalid") if rep("entries") else sum(i["invalid"] for i in its)
    replies = rep("replies")
    llm = [i["llm"] for i in its if i.get("llm")]
    n = len(its)
    pct = lambda a, b: f"{100 * a / b:.1f}%" if b else "-"
    print(f"| {short(p)} | {pct(invalid, entries)} | {pct(rep('noop'), entries)} | {pct(rep('repeated'), replies)} | "
          f"{replies / n:.1f} | {sum(i['llm_seconds'] for i in its) / n:.1f} | "
          f"{(sum(firsts) / len(firsts)) if firsts else 0:.0f} | "
          f"{sum(l.get('prefilled_tokens', 0) for l in llm) / n:.0f} | "
          f"{sum(l['completion_tokens'] for l in llm) / n:.0f} | {sum(i['bench_seconds'] for i in its) / n:.0f} |")
PY
