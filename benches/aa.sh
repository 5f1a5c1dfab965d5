#!/usr/bin/env bash
# A/A check of the acceptance statistics on real measurements: measure the same configuration
# twice (each with --repeats R) and compare; repeat for P pairs. A sound comparison says
# "no significant difference" in nearly all pairs.
#
#   bash benches/aa.sh [pairs] [repeats] [workload] [num]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-10}; repeats=${2:-3}; workload=${3:-readrandom}; num=${4:-200000}
bin="${CARGO_TARGET_DIR:-target}/release/lsmtune"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for p in $(seq 1 "$pairs"); do
  "$bin" bench --workload "$workload" --num "$num" --threads 2 --repeats "$repeats" --json="$out/a.json" >/dev/null
  "$bin" bench --workload "$workload" --num "$num" --threads 2 --repeats "$repeats" --baseline "$out/a.json" \
    | grep '^vs baseline' | sed "s/^/pair $p: /"
done
