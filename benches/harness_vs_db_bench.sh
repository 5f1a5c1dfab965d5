#!/usr/bin/env bash
# Side by side, in one run: the in-process harness vs db_bench on the same workload, options
# and parameters. Repeats are interleaved (A B A B ...) so machine noise hits both engines alike.
# Prints a Markdown table of ops/s (mean +- 95% CI) and the ratio inprocess/db_bench.
#
#   bash benches/harness_vs_db_bench.sh [repeats] [num] [threads]
#
# Needs a release build (cargo build --release) and db_bench (apt-get install rocksdb-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
num=${2:-500000}
threads=${3:-2}
target=${CARGO_TARGET_DIR:-target}
bin="$target/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for workload in fillrandom readrandom; do
  for r in $(seq 1 "$repeats"); do
    for engine in inprocess db_bench; do
      "$bin" bench --workload "$workload" --engine "$engine" --num "$num" --threads "$threads" \
        --repeats 1 --seed "$r" --json="$out/$workload-$engine-$r.json" >/dev/null
    done
  done
done
python3 - "$out" "$repeats" "$num" "$threads" <<'PY'
import json, glob, sys, statistics, math
out, repeats, num, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
T = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}
def summary(xs):
    m = statistics.mean(xs); sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, T.get(len(xs), 2.0) * sd / math.sqrt(len(xs))
print(f"| workload | in-process ops/s | db_bench ops/s | ratio | n |")
print(f"|---|---|---|---|---|")
for w in ["fillrandom", "readrandom"]:
    ops = {}
    for e in ["inprocess", "db_bench"]:
        ops[e] = [json.load(open(f))["measurements"][0]["ops_per_sec"] for f in sorted(glob.glob(f"{out}/{w}-{e}-*.json"))]
    (mi, ci), (md, cd) = summary(ops["inprocess"]), summary(ops["db_bench"])
    # Ratio of means with a delta-method CI.
    ratio = mi / md
    rci = ratio * math.sqrt((ci / mi) ** 2 + (cd / md) ** 2)
    print(f"| {w} (num={num}, threads={threads}) | {mi:,.0f} ± {ci:,.0f} | {md:,.0f} ± {cd:,.0f} | {ratio:.2f}x ± {rci:.2f} | {len(ops['inprocess'])} |")
PY
