#!/usr/bin/env bash
# A tune on a busy machine: the expert's readrandom tune (its first change is the bloom filter)
# run N times, each beside a CPU hog at normal priority (a shell spinning, as another user's job
# on a shared host). Prints one line per tune (verdict, rounds, effect and interval) and the
# share of tunes that kept the filter: the sequential design's power under noise, measured
# rather than asserted (tests/lsmtune/tune.rs `a_tune_beside_a_cpu_hog_still_keeps_the_filter`
# is the same tune, ignored in CI).
#
#   bash benches/noisy_machine.sh [N=10] [max-rounds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
rounds=${2:-10}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
work=$(mktemp -d)
hog=
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null; rm -rf "$work"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
kept=0
for i in $(seq "$n"); do
  sh -c 'while :; do :; done' >/dev/null 2>&1 &
  hog=$!
  "$bin" tune --backend expert --workload readrandom --num 50000 --value-size 100 \
    --iterations 1 --repeats 3 --confirm 2 --max-rounds "$rounds" \
    --work-dir "$work" --out "$work/run$i" -q >/dev/null 2>&1 || true
  kill "$hog"; wait "$hog" 2>/dev/null || true; hog=
  line=$(python3 - "$work/run$i/journal.jsonl" <<'PY'
import json, sys
its = [json.loads(l) for l in open(sys.argv[1]) if '"record":"iteration"' in l]
it = its[0]
c = it.get("comparison") or {}
filt = "table.filter_bits_per_key" in it.get("changes", {})
print(f'{"filter" if filt else "other"} {it["decision"]} rounds={it.get("rounds")} '
      f'effect={100 * c.get("effect", 0):+.1f}% [{100 * c.get("effect_low", 0):+.1f}, '
      f'{100 * c.get("effect_high", 0):+.1f}]')
PY
)
  echo "tune $i: $line"
  case "$line" in "filter accepted"*) kept=$((kept + 1)) ;; esac
done
echo "kept the filter in $kept of $n tunes beside a CPU hog (max rounds $rounds); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
