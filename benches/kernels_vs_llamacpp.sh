#!/usr/bin/env bash
# lsmtune's own kernels against llama.cpp, side by side on the same GGUF files, on both SIMD
# paths: lsmtune on AVX-512 (the default) against llama.cpp built with AVX-512, and lsmtune with
# LSMTUNE_NO_AVX512=1 (its AVX2 path) against llama.cpp built without AVX-512. THREADS threads
# each (default 2; lsmtune through RAYON_NUM_THREADS), a prompt of about 128 tokens then 64
# decoded tokens; the four runs interleaved per repeat, so load from other processes on the
# machine hits them alike. The load average before each repeat is recorded and summarized.
#
#   [THREADS=n] bash benches/kernels_vs_llamacpp.sh [repeats] [models]
#
# models: comma-separated; each either a GGUF file (a real model) or shape:dtype for
# `lsmtune models make-test-model` (default: the real files in ~/.cache/lsmtune/models, then
# qwen2.5-0.5b with every dtype). Prints a markdown table of tok/s (mean ± 95% CI) and ratios.
#
# Not run in CI. Setup: the AVX-512 llama-cpp-python as in benches/llm_vs_llamacpp.sh
# (/tmp/llamacpp-venv, override with LLAMACPP_PY), and one without AVX-512 (~15 min on 2 cores;
# LLAMACPP_AVX2_PY overrides):
#   python3 -m venv /tmp/llamacpp-avx2-venv
#   CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
#     -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF \
#     -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF \
#     -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
#     /tmp/llamacpp-avx2-venv/bin/pip install llama-cpp-python==0.3.36
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
cache="$HOME/.cache/lsmtune/models"
default_models="$cache/SmolLM2-135M-Instruct.Q4_1.gguf,$cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
for dt in q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k q4_k_m f16 bf16; do
  default_models="$default_models,qwen2.5-0.5b:$dt"
done
models=${2:-$default_models}
py512=${LLAMACPP_PY:-/tmp/llamacpp-venv/bin/python}
py2=${LLAMACPP_AVX2_PY:-/tmp/llamacpp-avx2-venv/bin/python}
threads=${THREADS:-2}
export RAYON_NUM_THREADS=$threads
bin=${LSMTUNE_BIN:-${CARGO_TARGET_DIR:-target}/release/lsmtune}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
# KEEP=dir keeps the raw measurements (one JSON line per run) there.
if [ -n "${KEEP:-}" ]; then work=$KEEP; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
names=()
for spec in ${models//,/ }; do
  if [ -f "$spec" ]; then
    name=$(basename "$spec" .gguf); model="$spec"; file="$spec"
  else
    name=$spec; model="$work/model-$spec"; file="$model/model.gguf"
    "$bin" models make-test-model --shape "${spec%%:*}" --dtype "${spec##*:}" --out "$model" >/dev/null
  fi
  names+=("$name")
  echo "== $name" >&2
  for r in $(seq 1 "$repeats"); do
    cut -d' ' -f1 /proc/loadavg >> "$work/load.txt"
    "$bin" llm bench --model "$model" --prompt-tokens 128 --gen-tokens 64 --repeats 1 --json >> "$work/own512-$name.jsonl"
    "$py512" benches/llamacpp_speed.py "$file" 128 64 1 "$threads" >> "$work/lcp512-$name.jsonl"
    LSMTUNE_NO_AVX512=1 "$bin" llm bench --model "$model" --prompt-tokens 128 --gen-tokens 64 --repeats 1 --json >> "$work/own2-$name.jsonl"
    "$py2" benches/llamacpp_speed.py "$file" 128 64 1 "$threads" >> "$work/lcp2-$name.jsonl"
  done
  [ -f "$spec" ] || rm -rf "$model"
done
python3 - "$work" "$threads" "${names[@]}" <<'PY'
import json, sys, statistics, math
work, threads, names = sys.argv[1], sys.argv[2], sys.argv[3:]
load = [float(l) for l in open(f"{work}/load.txt")]
print(f"{threads} thread(s); 1-minute load average before the repeats: {min(load):.1f} to {max(load):.1f} (median {statistics.median(load):.1f}) on {len(load)} repeats\n")
T = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365}
def load(f, key):
    return [json.loads(l)[key]["mean"] for l in open(f)]
def s(xs):
    m = statistics.mean(xs); sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return m, T.get(len(xs), 2.0) * sd / math.sqrt(len(xs))
def ratio(a, b):
    (ma, ca), (mb, cb) = a, b
    r = ma / mb
    return r, r * math.sqrt((ca / ma) ** 2 + (cb / mb) ** 2)
print("| model | phase | lsmtune AVX-512 | llama.cpp AVX-512 | ratio | lsmtune AVX2 | llama.cpp AVX2 | ratio | n |")
print("|---|---|---|---|---|---|---|---|---|")
for name in names:
    for phase in ["prefill_tok_s", "decode_tok_s"]:
        v = {e: s(load(f"{work}/{e}-{name}.jsonl", phase)) for e in ["own512", "lcp512", "own2", "lcp2"]}
        r512, r2 = ratio(v["own512"], v["lcp512"]), ratio(v["own2"], v["lcp2"])
        n = len(load(f"{work}/own512-{name}.jsonl", phase))
        f = lambda x: f"{x[0]:.1f} ± {x[1]:.1f}"
        print(f"| {name.replace(':', ' ')} | {phase.split('_')[0]} | {f(v['own512'])} | {f(v['lcp512'])} | **{r512[0]:.2f}x ± {r512[1]:.2f}** | {f(v['own2'])} | {f(v['lcp2'])} | **{r2[0]:.2f}x ± {r2[1]:.2f}** | {n} |")
PY
