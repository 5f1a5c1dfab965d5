#!/usr/bin/env bash
# A/A at the tune level: how often does a whole tune keep a "gain" that cannot exist?
#
#   bash benches/aa_tune.sh [tunes] [iterations] [workload]
#
# Runs TUNES (default 20) complete `lsmtune tune` runs whose proposer only ever changes
# `stats_dump_period_sec` (how often RocksDB writes its statistics to its LOG: no effect on
# throughput at these run lengths), each value new so nothing is skipped as a repeat. The
# proposer is a stub OpenAI-compatible server on 127.0.0.1 (this script's Python), so the loop,
# the calibrator, the interleaved measurement and the acceptance test are the product's own.
# Reports how many tunes accepted a candidate in any iteration and how many ended above the
# start; the goal is at most 5% of tunes. Not run in CI (about a minute per tune on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
tunes=${1:-20}
iterations=${2:-4}
workload=${3:-fillrandom}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/port" <<'PY' &
import http.server, json, sys, itertools
count = itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = json.dumps({"data": [{"id": "aa-stub"}]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        n = next(count)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = {"reasoning": "A/A: a change with no effect on throughput",
                 "changes": [{"stats_dump_period_sec": 300 + 7 * n}]}
        body = json.dumps({"id": "x", "object": "chat.completion", "model": "aa-stub",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(reply)}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $(seq 1 "$tunes"); do
  "$bin" tune --workload "$workload" --backend openai --openai-base-url "http://127.0.0.1:$port/v1" \
    --openai-model aa-stub --iterations "$iterations" --patience 99 --seed "$t" --quiet \
    --out "$work/tune-$t" >/dev/null 2>"$work/tune-$t.err" || { echo "tune $t failed:" >&2; tail -3 "$work/tune-$t.err" >&2; }
  echo "tune $t/$tunes done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$work" "$tunes" "$iterations" "$workload" <<'PY'
import json, os, sys
work, tunes, iterations, workload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
accepted = ended_above = candidates = done = 0
effects = []
for t in range(1, tunes + 1):
    path = os.path.join(work, f"tune-{t}", "journal.jsonl")
    if not os.path.exists(path):
        continue
    recs = [json.loads(l) for l in open(path) if l.strip()]
    its = [r for r in recs if r.get("record") == "iteration"]
    end = [r for r in recs if r.get("record") == "end"]
    if not end:
        continue
    done += 1
    candidates += sum(1 for i in its if i.get("candidate"))
    if any(i.get("decision") == "accepted" for i in its):
        accepted += 1
    c = end[0].get("comparison")
    if c and not end[0].get("kept_base") and c["verdict"] == "better":
        ended_above += 1
    for i in its:
        if i.get("comparison"):
            effects.append(i["comparison"]["effect"])
print(f"| workload | tunes | candidates measured | tunes that kept a candidate | tunes ending 'better' than the start | median candidate effect |")
print("|---|---|---|---|---|---|")
effects.sort()
med = effects[len(effects) // 2] if effects else 0.0
print(f"| {workload} | {done} | {candidates} | {accepted} ({100 * accepted / max(done, 1):.0f}%) | "
      f"{ended_above} ({100 * ended_above / max(done, 1):.0f}%) | {100 * med:+.1f}% |")
PY
