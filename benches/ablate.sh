#!/usr/bin/env bash
# Which of a tuned file's changes carry its gain? Each group of options is put back to the
# start's values in a copy of the tuned file, and the tuned file is measured against that copy
# (`lsmtune verify --tuned BEST --base COPY`, interleaved and paired, at 1x): the gain over a copy
# is what its group carries. The first row is the whole file against the start.
#
#   bash benches/ablate.sh BEST START WORKLOAD OUT GROUP... [-- verify flags]
#
# GROUP is NAME=key1,key2 with the keys as the OPTIONS file spells them (block_cache,
# filter_policy, write_buffer_size...). Example (BENCHMARKS.md, ycsb-a's headroom):
#   bash benches/ablate.sh benches/headroom/ycsb-a.ini ~/.cache/lsmtune/headroom/tpe/ycsb-a/OPTIONS-base.ini \
#     ycsb-a /tmp/abl compression=compression \
#     write=enable_pipelined_write,write_buffer_size,max_write_buffer_number,level0_file_num_compaction_trigger,level0_slowdown_writes_trigger,level0_stop_writes_trigger,max_bytes_for_level_base \
#     read=filter_policy,block_cache,block_size,cache_index_and_filter_blocks,data_block_index_type,memtable_prefix_bloom_size_ratio \
#     -- --num 300000 --value-size 400 --threads 2 --rounds 6
# About 40 s per group for ycsb-a at the tune defaults on 2 cores; not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
best=${1:?usage: bash benches/ablate.sh BEST START WORKLOAD OUT GROUP... [-- verify flags]}
start=${2:?}; workload=${3:?}; out=${4:?}; shift 4
groups=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do groups+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
mkdir -p "$out"
export LSMTUNE_HISTORY=off
for g in "${groups[@]}"; do
  python3 - "$best" "$start" "$out/without-${g%%=*}.ini" "${g#*=}" <<'PY'
import re, sys
best, start, dest, keys = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3], sys.argv[4]
for k in keys.split(","):
    m = re.search(r"^  " + re.escape(k) + r"=(.*)$", start, re.M)
    if not m or not re.search(r"^  " + re.escape(k) + r"=", best, re.M):
        sys.exit(f"{k}: not in both files (spell it as the OPTIONS file does)")
    best = re.sub(r"^(  " + re.escape(k) + r"=).*$", lambda x: x.group(1) + m.group(1), best, count=1, flags=re.M)
open(dest, "w").write(best)
PY
done
run() { # NAME BASE [verify flags]
  local name=$1 base=$2; shift 2
  echo "== $name: load $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)" >&2
  "$bin" verify --tuned "$best" --base "$base" --workload "$workload" --scale 1x "$@" \
    --json="$out/$name.json" >&2
}
run start "$start" "$@"
for g in "${groups[@]}"; do run "${g%%=*}" "$out/without-${g%%=*}.ini" "$@"; done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out" start "${groups[@]%%=*}" <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
print("| the tuned file against | gain (95% CI) | verdict |")
print("|---|---|---|")
for n in names:
    v = json.load(open(f"{out}/{n}.json"))
    c = v.get("comparison") or {}
    what = "the start (everything)" if n == "start" else f"itself without the {n} changes"
    print(f"| {what} | {c.get('effect', 0) * 100:+.1f}% [{c.get('effect_low', 0) * 100:+.1f}, {c.get('effect_high', 0) * 100:+.1f}] | {v.get('outcome')} |")
PY
