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
# The production shape: the tuner's real first prompt and the default proposal schema
# (reasoning up to 600 characters), 5 seeds; mask p50/p99 per proposal.
"$bin" propose --model "$work/m" --n 5 --json --offline > "$work/propose.jsonl"
python3 - "$work/propose.jsonl" <<'PY'
import sys, json
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    m = r["mask"]
    print("propose seed %s: %s tokens (%s forced), %s masks, p50 %.1f us, p99 %.1f us"
          % (r["seed"], r["completion_tokens"], m["forced_tokens"], m["masks"], m["p50_us"], m["p99_us"]))
p50s = sorted(r["mask"]["p50_us"] for r in rows)
worst = max(r["mask"]["p99_us"] for r in rows)
print("median of per-proposal mask p50: %.1f us; worst p99 %.1f us" % (p50s[len(p50s) // 2], worst))
PY
