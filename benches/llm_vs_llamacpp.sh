#!/usr/bin/env bash
# Side by side, in one run: lsmtune's own forward pass (`lsmtune llm bench`), candle-transformers'
# models (the same command with LSMTUNE_LOCAL_RUNTIME=candle) and llama.cpp (llama-cpp-python) on
# the same Qwen2.5-0.5B-shaped random-weight GGUF files, 2 threads, interleaved per repeat.
#
#   bash benches/llm_vs_llamacpp.sh [python-with-llama_cpp] [repeats] [prompt sizes] [models]
#
# prompt sizes: comma-separated token counts (default 128); models: comma-separated
# shape:dtype for `lsmtune models make-test-model` (default
# qwen2.5-0.5b:q8_0,qwen2.5-0.5b:q4_0,qwen2.5-0.5b:q4_k_m).
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
prompts=${3:-128}
models=${4:-qwen2.5-0.5b:q8_0,qwen2.5-0.5b:q4_0,qwen2.5-0.5b:q4_k_m}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for spec in ${models//,/ }; do
  shape=${spec%%:*}; dt=${spec##*:}
  "$bin" models make-test-model --shape "$shape" --dtype "$dt" --out "$work/$spec" >/dev/null
  for p in ${prompts//,/ }; do
    for r in $(seq 1 "$repeats"); do
      # lsmtune's own forward pass, candle-transformers' models, llama.cpp: interleaved.
      "$bin" llm bench --model "$work/$spec" --prompt-tokens "$p" --gen-tokens 64 --repeats 1 --json >> "$work/lsmtune-$spec-$p.jsonl"
      LSMTUNE_LOCAL_RUNTIME=candle "$bin" llm bench --model "$work/$spec" --prompt-tokens "$p" --gen-tokens 64 --repeats 1 --json >> "$work/candle-$spec-$p.jsonl"
      "$py" benches/llamacpp_speed.py "$work/$spec/model.gguf" "$p" 64 1 2 >> "$work/llamacpp-$spec-$p.jsonl"
    done
  done
  rm -f "$work/$spec/model.gguf"
done
python3 - "$work" "$prompts" "$models" <<'PY'
import json, sys, statistics, math
work, prompts, models = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
T = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}
def load(f, key):
    return [json.loads(l)[key]["mean"] for l in open(f)]
def s(xs):
    m = statistics.mean(xs); sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, T.get(len(xs), 2.0) * sd / math.sqrt(len(xs))
def ratio(a, b):
    (ma, ca), (mb, cb) = a, b
    r = ma / mb
    return r, r * math.sqrt((ca / ma) ** 2 + (cb / mb) ** 2)
print("| model | prompt | phase | lsmtune tok/s | candle tok/s | llama.cpp tok/s | lsmtune / llama.cpp | candle / llama.cpp | n |")
print("|---|---|---|---|---|---|---|---|---|")
for dt in models:
    for p in prompts:
        for phase in ["prefill_tok_s", "decode_tok_s"]:
            o = s(load(f"{work}/lsmtune-{dt}-{p}.jsonl", phase))
            c = s(load(f"{work}/candle-{dt}-{p}.jsonl", phase))
            l = s(load(f"{work}/llamacpp-{dt}-{p}.jsonl", phase))
            ro, rc = ratio(o, l), ratio(c, l)
            n = len(load(f"{work}/lsmtune-{dt}-{p}.jsonl", phase))
            print(f"| {dt.replace(':', ' ')} | {p} | {phase.split('_')[0]} | {o[0]:.1f} ± {o[1]:.1f} | {c[0]:.1f} ± {c[1]:.1f} | {l[0]:.1f} ± {l[1]:.1f} | **{ro[0]:.2f}x ± {ro[1]:.2f}** | {rc[0]:.2f}x ± {rc[1]:.2f} | {n} |")
PY
