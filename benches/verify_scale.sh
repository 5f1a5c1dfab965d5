#!/usr/bin/env bash
# Does a tune's gain hold at production scale? Tunes each workload at the defaults (125 MB of
# data, in the page cache), then verifies the tuned configuration against its start, side by side
# and paired (`lsmtune verify --run`), twice: at 10x the keys in the page cache, and at 10x the
# keys in a worker held to a quarter of that data (a memory cgroup, page cache included, every run
# started cold), so reads reach the device.
#
#   bash benches/verify_scale.sh OUT [model] [workloads] [duration] [rounds]
#
# Defaults: the local Qwen2.5-Coder-0.5B (benches/fetch_test_models.sh qwen) with the knowledge
# hints, readrandom readrandomwriterandom fillrandom, 20 s measured phases at scale, 4 rounds.
# Each tune lives in OUT/WORKLOAD and is not re-run when it finished; the verifications write
# OUT/WORKLOAD/verify-10x.json and verify-10x-quarter.json. Needs root (or a delegated memory
# cgroup) for the caged runs. About an hour on 2 cores; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benches/verify_scale.sh OUT [model] [workloads] [duration] [rounds]}
model=${2:-"$HOME/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
workloads=${3:-"readrandom readrandomwriterandom fillrandom"}
duration=${4:-20s}
rounds=${5:-4}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
mkdir -p "$out"
for w in $workloads; do
  dir="$out/$w"
  echo "== $w: tune, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  if ! grep -q '"record":"end"' "$dir/journal.jsonl" 2>/dev/null; then
    if [ -f "$dir/journal.jsonl" ]; then
      "$bin" tune --resume "$dir" --quiet >&2
    else
      "$bin" tune --backend local --model "$model" --hints knowledge --workload "$w" \
        --out "$dir" --quiet >&2
    fi
  fi
  # Nothing to verify when the start was kept, or nothing was kept (no final check).
  if grep -q '"kept_base":true' "$dir/journal.jsonl" ||
    grep '"record":"end"' "$dir/journal.jsonl" | grep -q '"comparison":null'; then
    echo "   $w: the tune kept its start; nothing to verify" >&2
    continue
  fi
  # The tune's data: keys x (key + value); a quarter of ten times that is the cage.
  quarter=$(python3 - "$dir/journal.jsonl" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).readline())["settings"]["workload"]
print(max(64, s["num"] * (s["key_size"] + s["value_size"]) * 10 // 4 >> 20))
PY
)
  echo "== $w: 10x in the page cache, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  [ -f "$dir/verify-10x.json" ] || "$bin" verify --run "$dir" --scale 10x \
    --duration "$duration" --rounds "$rounds" --json="$dir/verify-10x.json" >&2
  echo "== $w: 10x in a worker held to ${quarter} MiB, cold, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  [ -f "$dir/verify-10x-quarter.json" ] || "$bin" verify --run "$dir" --scale 10x \
    --worker-memory "${quarter}M" --drop-caches --duration "$duration" --rounds "$rounds" \
    --json="$dir/verify-10x-quarter.json" >&2
done
python3 - "$out" $workloads <<'PY'
import json, os, sys
out, workloads = sys.argv[1], sys.argv[2:]
def pct(c):
    return f"{c['effect']*100:+.1f}% ({c['effect_low']*100:+.1f} to {c['effect_high']*100:+.1f})" if c else "-"
print("| workload | kept changes | in the tune (125 MB, page cache) | 10x keys, page cache | verdict | 10x keys, worker held to a quarter, cold | verdict |")
print("|---|---|---|---|---|---|---|")
for w in workloads:
    d = os.path.join(out, w)
    try:
        rep = json.load(open(os.path.join(d, "report.json")))
    except OSError:
        continue
    changes = ", ".join(f"{c['key']}={c['tuned']}" for c in rep.get("changes", []))
    cells = []
    for name in ("verify-10x.json", "verify-10x-quarter.json"):
        try:
            v = json.load(open(os.path.join(d, name)))
            ops = f"{v['start_ops']['mean']:.0f} → {v['tuned_ops']['mean']:.0f} ops/s" if v.get("start_ops") and v.get("tuned_ops") else ""
            cells += [f"{pct(v.get('comparison'))}<br>{ops}", v["outcome"]]
        except OSError:
            cells += ["-", "-"]
    print(f"| {w} | {changes or '(start kept)'} | {pct(rep.get('final_comparison'))} | " + " | ".join(cells) + " |")
PY
