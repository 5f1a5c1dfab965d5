#!/usr/bin/env bash
# Tuned / default throughput per workload and proposer, with the final interleaved comparison
# (95% CI) each tune ends with, the number of benchmarked candidates, and the wall time of the
# whole tune. Default tune settings (300k keys x 16 + 400 bytes, 2 threads, 3 + 2 repeats).
#
#   bash benches/tune_gains.sh [iterations] [proposers] [workloads]
#   bash benches/tune_gains.sh 8 "expert random" "fillrandom readrandom readrandomwriterandom ycsb-a"
#
# Not run in CI (about 30 minutes on 2 cores for the default set).
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-8}
proposers=${2:-"expert random"}
workloads=${3:-"fillrandom readrandom readrandomwriterandom ycsb-a"}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for w in $workloads; do
  for p in $proposers; do
    start=$(date +%s.%N)
    "$bin" tune --workload "$w" --backend "$p" --iterations "$iterations" --out "$work/$w-$p" --quiet >/dev/null
    end=$(date +%s.%N)
    echo "$w $p $(echo "$end - $start" | bc)" >> "$work/times"
  done
done
python3 - "$work" <<'PY'
import json, sys, math, os
work = sys.argv[1]
times = {}
for line in open(os.path.join(work, "times")):
    w, p, t = line.split()
    times[(w, p)] = float(t)
print("| workload | proposer | start ops/s | tuned ops/s | tuned/start (95% CI) | candidates | kept | wall time |")
print("|---|---|---|---|---|---|---|---|")
ratios = {}
for (w, p), t in times.items():
    r = json.load(open(os.path.join(work, f"{w}-{p}", "report.json")))
    its = r["iterations"]
    benched = sum(1 for i in its if i["candidate"])
    kept = sum(1 for i in its if i["decision"] == "accepted")
    c = r["final_comparison"]
    if c and not r["kept_start"]:
        ratio = 1 + c["effect"]
        ci = f"{1 + c['effect']:.2f}x ({1 + c['effect_low']:.2f}..{1 + c['effect_high']:.2f})"
        a, b = r["final_start"], r["final_best"]
    else:
        ratio = 1.0
        ci = "1.00x (start kept)"
        a = b = r["baseline"]
    ratios.setdefault(p, []).append(ratio)
    fmt = lambda s: f"{s['mean']:.0f} ± {s['ci95']:.0f}" if s else "-"
    print(f"| {w} | {p} | {fmt(a)} | {fmt(b)} | {ci} | {benched} | {kept} | {t:.0f} s |")
for p, rs in ratios.items():
    g = math.exp(sum(math.log(x) for x in rs) / len(rs))
    print(f"\n{p}: geometric mean tuned/start {g:.2f}x over {len(rs)} workloads")
PY
