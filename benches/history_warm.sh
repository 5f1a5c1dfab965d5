#!/usr/bin/env bash
# Does the tuning memory pay? A second tune of a workload on the same machine, warm from the
# history of the first, against the first tune (cold); and a tune of another workload with that
# history against the same tune without one (a history must not mislead).
#
#   bash benches/history_warm.sh OUT [FIRST_DIR] [model]
#
# The first tunes: FIRST_DIR/readrandom and FIRST_DIR/readrandomwriterandom when given (finished
# tune folders, e.g. benches/verify_scale.sh's), else run here cold into OUT/first/WORKLOAD.
# They are added to a history of this script's own (OUT/history.sqlite, never the user's); then
# OUT/warm/readrandom and OUT/warm/readrandomwriterandom are tuned with it, and fillrandom twice
# with the same seed: OUT/fill-history with it, OUT/fill-cold with --no-history. Every tune is
# the default local-model tune (the model steering the search, the knowledge hints), 8
# iterations, the tune defaults' sizes. Folders that finished are not re-run. Prints, per
# workload, the first tune's final gain, the second tune's gain after each of its first
# iterations (the chained kept steps, with the interval of the last) and its final check, the
# iteration and the seconds into the tune at which it reached 95% of the first's final gain,
# and the load. About 30 minutes on 2 cores; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benches/history_warm.sh OUT [FIRST_DIR] [model]}
first=${2:-"$out/first"}
model=${3:-"$HOME/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
mkdir -p "$out"
history="$out/history.sqlite"
export LSMTUNE_HISTORY=off
tune() { # DIR [flags...]: a default local-model tune into DIR unless it finished
  local dir=$1; shift
  grep -q '"record":"end"' "$dir/journal.jsonl" 2>/dev/null && return 0
  echo "== $dir: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  if [ -f "$dir/journal.jsonl" ]; then
    "$bin" tune --resume "$dir" --quiet >&2
  else
    "$bin" tune --backend local --model "$model" --hints knowledge --out "$dir" --quiet "$@" >&2
  fi
}
for w in readrandom readrandomwriterandom; do
  tune "$first/$w" --workload "$w" --no-history
  "$bin" history add "$first/$w" --history "$history" >&2
done
for w in readrandom readrandomwriterandom; do
  tune "$out/warm/$w" --workload "$w" --history "$history"
done
# fillrandom: the history holds only read-heavy tunes. Copied, so both runs read the same one.
cp "$history" "$out/history-fill.sqlite"
tune "$out/fill-history" --workload fillrandom --history "$out/history-fill.sqlite"
tune "$out/fill-cold" --workload fillrandom --no-history
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$first" "$out" <<'PY'
import json, math, os, sys
first, out = sys.argv[1], sys.argv[2]

def load(d):
    return [json.loads(l) for l in open(os.path.join(d, "journal.jsonl")) if l.strip()]

def final(recs):
    end = next((r for r in recs if r["record"] == "end"), None)
    if not end or not end.get("comparison") or end.get("kept_base"):
        return None
    return end["comparison"]

def pct(x):
    return f"{x * 100:+.0f}%"

def curve(recs):
    """(iteration, chained gain, the step's interval or None, elapsed, proposer) per iteration."""
    log, rows = 0.0, []
    for r in recs:
        if r["record"] != "iteration":
            continue
        c = r.get("comparison")
        step = None
        if r["decision"] == "accepted" and c:
            log += math.log1p(c["effect"])
            step = c
        rows.append((r["iteration"], math.exp(log) - 1, step, r["elapsed"], r["proposer"].split(" ")[0]))
    return rows

print("| workload | first tune (cold): final check | its iterations, seconds | second tune (warm): first candidate | after iteration 1 | after 2 | final check | reached 95% of the first's gain at | iterations, seconds |")
print("|---|---|---|---|---|---|---|---|---|")
for w in ("readrandom", "readrandomwriterandom"):
    a, b = load(os.path.join(first, w)), load(os.path.join(out, "warm", w))
    fa, fb = final(a), final(b)
    g1 = fa["effect"] if fa else 0.0
    ca, cb = curve(a), curve(b)
    reach = next(((i, t) for i, g, _, t, _ in cb if g >= 0.95 * g1), None)
    first_it = next((r for r in b if r["record"] == "iteration"), {})
    seeded = (first_it.get("reasoning") or "").split(" (")[0]
    def at(rows, k):
        if len(rows) < k:
            return "-"
        i, g, step, _, who = rows[k - 1]
        iv = f" [{pct(step['effect_low'])}, {pct(step['effect_high'])}]" if step else " (not kept)"
        return f"{pct(g)}{iv} ({who})"
    fin = lambda f: f"{pct(f['effect'])} [{pct(f['effect_low'])}, {pct(f['effect_high'])}]" if f else "start kept"
    end_a = next(r for r in a if r["record"] == "end")
    end_b = next(r for r in b if r["record"] == "end")
    print(f"| {w} | {fin(fa)} | {len(ca)}, {end_a['elapsed']:.0f} s | {seeded} | {at(cb, 1)} | {at(cb, 2)} | {fin(fb)} | "
          + (f"iteration {reach[0]}, {reach[1]:.0f} s" if reach else "not reached") + f" | {len(cb)}, {end_b['elapsed']:.0f} s |")
print()
print("| fillrandom | history read | neighbours | first candidate | kept | final check | iterations, seconds |")
print("|---|---|---|---|---|---|---|")
for name in ("fill-history", "fill-cold"):
    recs = load(os.path.join(out, name))
    past = recs[0].get("past")
    its = [r for r in recs if r["record"] == "iteration"]
    f = final(recs)
    end = next(r for r in recs if r["record"] == "end")
    print(f"| {name} | {'yes, ' + str(past['considered']) + ' tunes' if past else 'no (--no-history)'} | "
          f"{len(past['neighbours']) if past else '-'} | {(its[0].get('reasoning') or '')[:60] if its else '-'} | "
          f"{sum(1 for r in its if r['decision'] == 'accepted')} | "
          f"{(pct(f['effect']) + ' [' + pct(f['effect_low']) + ', ' + pct(f['effect_high']) + ']') if f else 'start kept'} | {len(its)}, {end['elapsed']:.0f} s |")
PY
