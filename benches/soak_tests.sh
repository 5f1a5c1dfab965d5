#!/usr/bin/env bash
# The integration tests, run N times in a row on a loaded machine: a CPU hog at normal priority
# (a shell spinning, as another user's job) beside every run. Stops at the first failure and
# keeps its log; never retries. This is how a test that fails by chance is found before CI
# finds it (issue 23: every run must pass).
#
#   bash benches/soak_tests.sh [N=20] [LOG_DIR]
#
# Needs a built tree (`cargo build --release --all-targets`); uses CARGO_TARGET_DIR as cargo does.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
logs=${2:-$(mktemp -d)}
mkdir -p "$logs"
hog=
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null || true' EXIT
sh -c 'while :; do :; done' >/dev/null 2>&1 &
hog=$!
echo "hog pid $hog; $(nproc) cores; logs in $logs"
for i in $(seq "$n"); do
  start=$(date +%s)
  load=$(cut -d' ' -f1 /proc/loadavg)
  if LSMTUNE_REQUIRE_DB_BENCH=1 LSMTUNE_REQUIRE_TEST_MODELS=1 \
      cargo test --release --test lsmtune > "$logs/run$i.log" 2>&1; then
    echo "run $i: ok in $(( $(date +%s) - start )) s (load at start $load): $(grep -o 'test result: .*' "$logs/run$i.log" | tail -1)"
  else
    echo "run $i: FAILED after $(( $(date +%s) - start )) s (load at start $load); see $logs/run$i.log"
    grep -E "^test .* FAILED|panicked at" "$logs/run$i.log" | head -20
    exit 1
  fi
done
echo "all $n runs passed beside a CPU hog"
