#!/usr/bin/env bash
# Does the sequential measurement reach a tune's final gain sooner than fixed rounds?
#
#   OLD=path/to/lsmtune-before NEW=path/to/lsmtune bash benches/measurement_time.sh [pairs] [workload] [OUT]
#
# OLD is a binary from before the sequential design (every candidate 3 rounds, 2 more to confirm a
# gain, then a verdict); NEW is today's (a clearly worse first round stops a candidate, a promising
# undecided one gets up to --max-rounds). Both tune the same workload with the same six candidates,
# in the same order, from a stub OpenAI-compatible server on 127.0.0.1 (this script's Python; a
# fresh server per tune), so the only difference is how each candidate is measured and judged: a
# neutral change, a clear loser, a large gain, a small loser, a modest gain, a neutral change (on
# readrandom: statistics period, 256 KiB blocks, a 10-bit bloom filter, ZSTD, a 256 MiB block
# cache, background jobs). No value refinement and no value search (`--no-refine`, NEW also
# `--search off`), patience off, so both measure all six.
#
# PAIRS tunes per binary (default 3), interleaved (old, new; then new, old; ...), with seeds
# 1..PAIRS. Reports per binary: wall time per tune, the seconds until its last kept step (when the
# final configuration was reached), rounds per candidate, which candidates it kept, and the final
# check's gain. Not run in CI (about 4 minutes per tune on 2 cores). The tunes stay in OUT
# (default: a temporary folder, removed).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
workload=${2:-readrandom}
old=${OLD:?"set OLD to a binary from before the sequential design"}
new=${NEW:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
if [ -n "${3:-}" ]; then
  work=$3
  [ -e "$work" ] && { echo "$work exists: give a new folder" >&2; exit 2; }
  mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d)
  keep=0
fi
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/stub.py" <<'PY'
import http.server, json, sys, itertools
CANDIDATES = [
    ("neutral: statistics period", {"stats_dump_period_sec": 301}),
    ("clear loser: 256 KiB blocks", {"table.block_size": 262144}),
    ("large gain: a 10-bit bloom filter", {"table.filter_bits_per_key": 10, "table.filter_type": "bloom"}),
    ("small loser: ZSTD", {"compression": "kZSTD"}),
    ("modest gain: a 256 MiB block cache", {"table.block_cache_size": 268435456}),
    ("neutral: 4 background jobs", {"max_background_jobs": 4}),
]
count = itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        self.send({"data": [{"id": "fixed-list"}]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        why, changes = CANDIDATES[min(next(count), len(CANDIDATES) - 1)]
        reply = {"reasoning": why, "changes": changes}
        self.send({"id": "x", "object": "chat.completion", "model": "fixed-list",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(reply)}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY

# One tune with binary $1 as label $2 and seed $3, against a fresh stub server.
tune() {
  local bin=$1 label=$2 seed=$3 extra=()
  rm -f "$work/port"
  python3 "$work/stub.py" "$work/port" &
  server=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ "$label" = new ] && extra=(--search off)
  local t0 t1
  t0=$(date +%s.%N)
  LSMTUNE_WORKER_EXE=$bin "$bin" tune --workload "$workload" --backend openai \
    --openai-base-url "http://127.0.0.1:$(cat "$work/port")/v1" --openai-model fixed-list \
    --iterations 6 --patience 99 --no-refine "${extra[@]}" --seed "$seed" --quiet \
    --out "$work/$label-$seed" >/dev/null 2>"$work/$label-$seed.err" ||
    { echo "$label tune $seed failed:" >&2; tail -3 "$work/$label-$seed.err" >&2; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc >"$work/$label-$seed.wall"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
  echo "$label tune $seed done in $(cat "$work/$label-$seed.wall") s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for p in $(seq 1 "$pairs"); do
  if [ $((p % 2)) = 1 ]; then tune "$old" old "$p"; tune "$new" new "$p"
  else tune "$new" new "$p"; tune "$old" old "$p"; fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work" "$pairs" "$workload" <<'PY'
import json, os, sys, statistics
work, pairs, workload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
print(f"| binary | seed | wall s | s to the last kept step | rounds per candidate | kept (candidate number) | final check |")
print("|---|---|---|---|---|---|---|")
for label in ("old", "new"):
    for seed in range(1, pairs + 1):
        path = os.path.join(work, f"{label}-{seed}", "journal.jsonl")
        if not os.path.exists(path):
            print(f"| {label} | {seed} | failed | | | | |")
            continue
        recs = [json.loads(l) for l in open(path) if l.strip()]
        its = [r for r in recs if r.get("record") == "iteration"]
        end = [r for r in recs if r.get("record") == "end"]
        wall = float(open(os.path.join(work, f"{label}-{seed}.wall")).read())
        # Seconds into the tune at the end of each iteration: the journal's own clock when it
        # has one, else the sum of the iterations' benchmark and model seconds after the start.
        start_s = wall - sum(i.get("bench_seconds", 0) + i.get("llm_seconds", 0) for i in its)
        clock, acc = [], start_s
        for i in its:
            acc += i.get("bench_seconds", 0) + i.get("llm_seconds", 0)
            clock.append(i.get("elapsed", acc))
        kept = [k for k, i in enumerate(its) if i.get("decision") == "accepted"]
        to_final = clock[kept[-1]] if kept else None  # never reached a gain
        rounds = [len((i.get("candidate") or {}).get("ops_per_sec", [])) for i in its]
        c = end[0].get("comparison") if end else None
        final = "start kept" if end and end[0].get("kept_base") else (
            f"{100 * c['effect']:+.0f}% [{100 * c['effect_low']:+.0f}, {100 * c['effect_high']:+.0f}]" if c else "?")
        rows.setdefault(label, []).append((wall, to_final, sum(rounds)))
        print(f"| {label} | {seed} | {wall:.0f} | {'never' if to_final is None else f'{to_final:.0f}'} | {' '.join(map(str, rounds))} | "
              f"{' '.join(str(k + 1) for k in kept) or 'none'} | {final} |")
print()
print("| binary | tunes | mean wall s | tunes that kept a gain | mean s to the last kept step (those) | mean rounds per tune |")
print("|---|---|---|---|---|---|")
for label, r in rows.items():
    reached = [x[1] for x in r if x[1] is not None]
    print(f"| {label} | {len(r)} | {statistics.mean(x[0] for x in r):.0f} | {len(reached)} | "
          f"{statistics.mean(reached) if reached else float('nan'):.0f} | {statistics.mean(x[2] for x in r):.1f} |")
if "old" in rows and "new" in rows:
    o, n = rows["old"], rows["new"]
    print(f"\nnew / old: wall {statistics.mean(x[0] for x in n) / statistics.mean(x[0] for x in o):.2f}")
PY
