#!/usr/bin/env bash
# Side by side, in one run: candle (lsmtune llm bench) vs llama.cpp (llama-cpp-python) on the same
# Qwen2.5-0.5B-shaped random-weight GGUF files, 2 threads, interleaved per repeat.
#
#   bash benches/llm_vs_llamacpp.sh [python-with-llama_cpp] [repeats]
#
# Not run in CI. Setup (builds llama.cpp from source, ~10 min on 2 cores). On CPUs that advertise
# AMX without the kernel granting it (seen on this project's VMs), llama.cpp's AMX kernels crash,
# so build without them:
#   python3 -m venv /tmp/llamacpp-venv
#   CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
#     -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON \
#     -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
#     -DGGML_AMX_BF16=OFF" /tmp/llamacpp-venv/bin/pip install llama-cpp-python
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-/tmp/llamacpp-venv/bin/python}
repeats=${2:-3}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for dt in q8_0 q4_0; do
  "$bin" models make-test-model --shape qwen2.5-0.5b --dtype "$dt" --out "$work/$dt" >/dev/null
  for r in $(seq 1 "$repeats"); do
    "$bin" llm bench --model "$work/$dt" --prompt-tokens 128 --gen-tokens 64 --repeats 1 --json >> "$work/candle-$dt.jsonl"
    "$py" benches/llamacpp_speed.py "$work/$dt/model.gguf" 128 64 1 2 >> "$work/llamacpp-$dt.jsonl"
  done
done
python3 - "$work" <<'PY'
import json, sys, statistics, math, glob
work = sys.argv[1]
T = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}
def load(f, key):
    return [json.loads(l)[key]["mean"] for l in open(f)]
def s(xs):
    m = statistics.mean(xs); sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, T.get(len(xs), 2.0) * sd / math.sqrt(len(xs))
print("| weights | phase | candle tok/s | llama.cpp tok/s | ratio | n |")
print("|---|---|---|---|---|---|")
for dt in ["q8_0", "q4_0"]:
    for phase in ["prefill_tok_s", "decode_tok_s"]:
        c = load(f"{work}/candle-{dt}.jsonl", phase); l = load(f"{work}/llamacpp-{dt}.jsonl", phase)
        (mc, cc), (ml, cl) = s(c), s(l)
        r = mc / ml; rc = r * math.sqrt((cc / mc) ** 2 + (cl / ml) ** 2)
        print(f"| {dt} | {phase.split('_')[0]} | {mc:.1f} ± {cc:.1f} | {ml:.1f} ± {cl:.1f} | {r:.2f}x ± {rc:.2f} | {len(c)} |")
PY
