#!/usr/bin/env bash
# Cost of grammar-constrained decoding on a Qwen2.5-0.5B-shaped random-weight GGUF with a
# 151,643-token vocabulary (the test tokenizer grown with synthetic words to the real size), in
# one process, interleaved per repeat with the same seeds:
#   free       : unconstrained decoding (end-of-sequence ignored)
#   masked     : every token sampled under the grammar's mask (the cost of masking alone)
#   constrained: forced tokens taken in batches without sampling (what `propose`/`tune` do)
# plus the mask time per sampled token (p50, p99) over all masked runs.
#
#   bash benches/grammar_speed.sh [repeats] [dtype]
#
# Not run in CI (a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
dtype=${2:-q8_0}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$bin" models make-test-model --shape qwen2.5-0.5b --dtype "$dtype" --out "$work/m" >/dev/null
"$bin" llm bench --model "$work/m" --grammar --prompt-tokens 128 --gen-tokens 160 \
  --repeats "$repeats"
