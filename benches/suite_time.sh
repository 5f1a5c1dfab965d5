#!/usr/bin/env bash
# How long the test suite takes, and where the time goes: runs the integration binary once with
# per-test times (libtest's --report-time) and prints the wall time, the slowest tests, and the
# sum of the others (the suite runs two tests at a time, so its wall time is about the larger of
# the property test and half the sum of everything).
#
#   bash benches/suite_time.sh [N_SLOWEST]     # about 2.5 minutes on 2 cores
#
# Uses the release build the tests share (CARGO_TARGET_DIR as set); CI's variables apply
# (LSMTUNE_REQUIRE_DB_BENCH=1 LSMTUNE_REQUIRE_TEST_MODELS=1 make skipped tests failures).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-12}
bin=$(cargo test --release --test lsmtune --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lsmtune" and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
[ -x "$bin" ] || { echo "no integration test binary (build failed?)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
# --report-time is unstable in libtest; RUSTC_BOOTSTRAP lets the stable test binary take it.
RUSTC_BOOTSTRAP=1 "$bin" -Z unstable-options --report-time >"$out" 2>&1 || { tail -30 "$out"; exit 1; }
end=$(date +%s.%N)
grep -E "^test result" "$out"
python3 - "$out" "$n" "$start" "$end" <<'PY'
import re, sys
path, n, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
times = []
for line in open(path, errors="replace"):
    m = re.match(r"test (\S+) \.\.\. ok <([0-9.]+)s>", line)
    if m:
        times.append((float(m.group(2)), m.group(1)))
times.sort(reverse=True)
print(f"wall {end - start:.1f} s, {len(times)} tests, sum of test times {sum(t for t, _ in times):.1f} s")
for t, name in times[:n]:
    print(f"{t:8.1f} s  {name}")
print(f"{sum(t for t, _ in times[n:]):8.1f} s  the other {max(len(times) - n, 0)} tests together")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
