#!/usr/bin/env bash
# The headroom, measured: a long value search per workload (`lsmtune tune --backend search`),
# whose best configuration is the best known for that workload on this machine, the limit the
# other proposers are judged against (`compare --best-known benches/headroom`).
#
#   bash benches/headroom.sh OUT [method] [candidates] [workloads] [max-changes]
#
# Defaults: method tpe (or gp), 60 candidates, fillrandom readrandom readrandomwriterandom
# ycsb-a at the tune defaults (300,000 keys of 16 + 400 bytes, 2 threads), 16 options searched.
# Each workload's tune lives in OUT/METHOD/WORKLOAD and resumes when the command is run again.
# Prints, per workload, the final check (best against the start, interleaved), the candidates
# measured and the wall time, and the best-so-far curve per candidate (the chained ratios of
# the loop's interleaved comparisons), for comparing methods on gain per evaluation. Copy a
# workload's OUT/METHOD/WORKLOAD/OPTIONS-tuned.ini to benches/headroom/WORKLOAD.ini to make it
# the best known. Hours on 2 cores; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benches/headroom.sh OUT [method] [candidates] [workloads] [max-changes]}
method=${2:-tpe}
candidates=${3:-60}
workloads=${4:-"fillrandom readrandom readrandomwriterandom ycsb-a"}
max_changes=${5:-16}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
for w in $workloads; do
  dir="$out/$method/$w"
  echo "== $w ($method, $candidates candidates) load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  if [ -f "$dir/journal.jsonl" ]; then
    "$bin" tune --resume "$dir" --quiet >&2 || true
  else
    mkdir -p "$(dirname "$dir")"
    "$bin" tune --backend search --search-method "$method" --workload "$w" \
      --iterations "$candidates" --patience "$candidates" --max-changes "$max_changes" \
      --out "$dir" --quiet >&2
  fi
  echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
python3 - "$out" "$method" $workloads <<'PY'
import json, math, os, sys
out, method, workloads = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"| workload | method | candidates | best-known gain (final check, 95% CI) | kept | rounds measured | wall time |")
print("|---|---|---|---|---|---|---|")
curves = {}
for w in workloads:
    path = os.path.join(out, method, w, "journal.jsonl")
    if not os.path.exists(path):
        continue
    recs = [json.loads(l) for l in open(path) if l.strip()]
    its = [r for r in recs if r.get("record") == "iteration"]
    end = next((r for r in recs if r.get("record") == "end"), None)
    # Best so far per candidate, chained through the loop's interleaved comparisons.
    best, curve = 0.0, []
    for it in its:
        c = it.get("comparison")
        if it["decision"] == "accepted" and c:
            best += math.log1p(c["effect"])
        curve.append(math.exp(best))
    curves[w] = curve
    rounds = sum(it.get("rounds", 0) for it in its)
    if end and end.get("comparison") and not end.get("kept_base"):
        c = end["comparison"]
        gain = f"**{1 + c['effect']:.2f}x** ({1 + c['effect_low']:.2f}..{1 + c['effect_high']:.2f})"
    else:
        gain = "1.00x (start kept)" if end else "(running)"
    kept = sum(1 for it in its if it["decision"] == "accepted")
    secs = end["elapsed"] if end else (its[-1]["elapsed"] if its else 0)
    print(f"| {w} | {method} | {len(its)} | {gain} | {kept} | {rounds} | {secs / 60:.0f} min |")
print()
print("Best so far (chained ratio to the start) after 10, 20, 30, 40, 50, 60 candidates:")
print()
print("| workload | " + " | ".join(str(k) for k in (10, 20, 30, 40, 50, 60)) + " |")
print("|---|" + "---|" * 6)
for w, c in curves.items():
    cells = [f"{c[min(k, len(c)) - 1]:.2f}x" if c else "-" for k in (10, 20, 30, 40, 50, 60)]
    print(f"| {w} | " + " | ".join(cells) + " |")
PY
