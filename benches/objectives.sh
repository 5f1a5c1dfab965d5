#!/usr/bin/env bash
# Issue 17's measurements: one tune for a latency objective with a constraint, and one tune on a
# data set 4x larger than the memory its benchmark worker may use next to the same tune in the
# page cache. Each is an ordinary `lsmtune tune`; the numbers come from their report.md.
#
# Usage: LSMTUNE_BIN=path/to/lsmtune bash benches/objectives.sh OUT_DIR [latency|memory|all]
# The model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (bash benches/fetch_test_models.sh qwen).
# --worker-memory needs root or a delegated memory cgroup.
set -euo pipefail
out=${1:?OUT_DIR}
what=${2:-all}
bin=${LSMTUNE_BIN:-lsmtune}
model=${MODEL:-$HOME/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
mkdir -p "$out"
common=(--model "$model" --hints knowledge --iterations 5 --repeats 3 --confirm 2 -q)

if [[ $what == latency || $what == all ]]; then
  # p99 of a read/write mix, space amplification held under 3x.
  "$bin" tune --workload readrandomwriterandom --objective p99 --max-space-amp 3 \
    "${common[@]}" --out "$out/p99-readrandomwriterandom"
fi

if [[ $what == memory || $what == all ]]; then
  # The same readrandom tune twice on 512 MiB of data: in the page cache, and with each worker
  # held to 128 MiB (page cache included) and started cold. Both with the 64 MiB memory budget
  # that --worker-memory 128M implies, so only where the data lives differs.
  mem=(--workload readrandom --dataset-size 512M --value-size 400 --duration 8s
       --iterations 4 --repeats 2 --confirm 1 --model "$model" --hints knowledge -q)
  "$bin" tune "${mem[@]}" --memory-budget 64M --out "$out/readrandom-512M-in-cache"
  "$bin" tune "${mem[@]}" --worker-memory 128M --drop-caches \
    --out "$out/readrandom-512M-worker-128M"
fi
