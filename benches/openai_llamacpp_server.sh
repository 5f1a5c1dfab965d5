#!/usr/bin/env bash
# The OpenAI-compatible backend against a real server on loopback: llama.cpp's server
# (llama-cpp-python[server] from PyPI) serving a random-weight GGUF that lsmtune writes, driven
# by a short `lsmtune tune --backend openai`. Prints which response_format the server accepted
# (or what it was downgraded to), token usage, and the invalid-entry rate before calibration.
#
#   bash benches/openai_llamacpp_server.sh [python-with-llama_cpp] [shape]
#
# Not run in CI. Setup: the llama-cpp-python venv of benches/llm_vs_llamacpp.sh, plus
#   /tmp/llamacpp-venv/bin/pip install uvicorn fastapi sse-starlette starlette-context pydantic-settings
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-/tmp/llamacpp-venv/bin/python}
shape=${2:-tiny}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" models make-test-model --shape "$shape" --out "$work/m" >/dev/null
"$py" -m llama_cpp.server --model "$work/m/model.gguf" --host 127.0.0.1 --port "$port" \
  --n_threads 2 --n_ctx 8192 --model_alias lsmtune-test >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null || { cat "$work/server.log"; exit 1; }
OPENAI_API_KEY=sk-not-needed-for-llama-cpp "$bin" tune --backend openai \
  --openai-base-url "http://127.0.0.1:$port/v1" --openai-model lsmtune-test \
  --workload fillrandom --num 20000 --value-size 100 --iterations 3 --patience 5 \
  --repeats 2 --confirm 1 --max-tokens 400 --quiet --out "$work/run" 2>&1 | tee "$work/tune.log"
python3 - "$work/run" <<'PY'
import json, sys, os
out = sys.argv[1]
its = [json.loads(l) for l in open(os.path.join(out, "journal.jsonl")) if '"record":"iteration"' in l]
for it in its:
    llm = it.get("llm") or {}
    print(f"iteration {it['iteration']}: proposer {it['proposer']}, decision {it['decision']}, "
          f"entries {it['proposed']}, invalid {it['invalid']}, prompt {llm.get('prompt_tokens')}, "
          f"completion {llm.get('completion_tokens')}, finish {llm.get('finish')}, "
          f"failure {it.get('failure')}")
PY
grep -h "note:" "$work/tune.log" || true
