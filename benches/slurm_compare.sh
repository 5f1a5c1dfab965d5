#!/usr/bin/env bash
# A sharded compare on a real Slurm cluster of one node, on this machine: installs Debian's
# slurm-wlm and munge when missing (root), starts munged, slurmctld and slurmd with a private
# configuration under OUT, submits docs/deploy-style `compare --shard auto` as a 2-task array,
# waits for it, merges the shards, runs the same matrix in one process, and checks that the
# merged rows are the same tunes (the same proposer x workload x seed set, each with the same
# settings) as the one-process run's.
#
#   bash benches/slurm_compare.sh OUT
#
# A small matrix (expert and random on readrandom, 2 seeds, 20,000 keys): a few minutes. The
# daemons are stopped at the end; nothing outside OUT is written but the packages and munge's
# own state.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benches/slurm_compare.sh OUT}
bin=${LSMTUNE_BIN:-"${CARGO_TARGET_DIR:-target}/release/lsmtune"}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set LSMTUNE_BIN)" >&2; exit 2; }
bin=$(readlink -f "$bin")
start=$(date +%s)
say() { echo "[slurm +$(( $(date +%s) - start ))s] $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
mkdir -p "$out"
out=$(readlink -f "$out")
conf="$out/slurm"
rm -rf "$conf" "$out/shards" "$out/merged" "$out/one"
mkdir -p "$conf/state" "$conf/spool"
host=$(hostname -s)
cat >"$conf/slurm.conf" <<EOF
ClusterName=lsmtune
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$conf/state
SlurmdSpoolDir=$conf/spool
SlurmctldPidFile=$conf/slurmctld.pid
SlurmdPidFile=$conf/slurmd.pid
SlurmctldLogFile=$conf/slurmctld.log
SlurmdLogFile=$conf/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$conf/slurm.conf"
pgrep -x munged >/dev/null || { mkdir -p /run/munge && chown munge:munge /run/munge; su -s /bin/sh munge -c munged || munged --force; }
say "starting slurmctld and slurmd ($(slurmctld -V))"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$host"
trap 'scancel --quiet -u root 2>/dev/null || true; pkill -F "$conf/slurmd.pid" 2>/dev/null || true; pkill -F "$conf/slurmctld.pid" 2>/dev/null || true' EXIT
up=
for _ in $(seq 120); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)'; then up=1; break; fi
  sleep 1
done
sinfo >&2
[ -n "$up" ] || { tail -20 "$conf/slurmctld.log" "$conf/slurmd.log" >&2; echo "the node did not come up" >&2; exit 1; }

matrix=(--proposers expert,random --workloads readrandom --seeds 2 --iterations 2
  --num 20000 --value-size 100 --repeats 2 --confirm 1 --quiet)
cat >"$conf/shard.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=lsmtune-shard
#SBATCH --cpus-per-task=1
#SBATCH --output=$conf/shard-%a.log
exec "$bin" compare ${matrix[*]} --shard auto --work-dir /tmp --out "$out/shards/shard-\$SLURM_ARRAY_TASK_ID"
EOF
job=$(sbatch --parsable --array=0-1 "$conf/shard.sbatch")
say "submitted array job $job (2 tasks)"
# Wait on the scheduler, not a guess; but a node that never comes up must not hang CI.
deadline=$(( $(date +%s) + ${SLURM_WAIT_SECONDS:-600} ))
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    squeue >&2; sinfo >&2; tail -20 "$conf/slurmctld.log" "$conf/slurmd.log" >&2
    echo "the array did not finish in ${SLURM_WAIT_SECONDS:-600} s" >&2
    exit 1
  fi
  sleep 2
done
say "array done"
for i in 0 1; do
  echo "--- shard $i log" >&2
  tail -5 "$conf/shard-$i.log" >&2
  [ -f "$out/shards/shard-$i/shard.json" ] || { echo "shard $i wrote no shard.json" >&2; exit 1; }
done
"$bin" compare merge "$out/merged" "$out/shards/shard-0" "$out/shards/shard-1" >"$out/merged.txt"
say "merged"
"$bin" compare "${matrix[@]}" --out "$out/one" >"$out/one.txt"
say "one-process run done"
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def tunes(root):
    found = {}
    for w in os.listdir(os.path.join(root, "runs")):
        wd = os.path.join(root, "runs", w)
        for p in os.listdir(wd):
            pd = os.path.join(wd, p)
            if not os.path.isdir(pd):
                continue
            for s in os.listdir(pd):
                with open(os.path.join(pd, s, "journal.jsonl")) as f:
                    first = json.loads(f.readline())
                found[(w, p, s)] = first["settings"]
    return found
merged, one = tunes(os.path.join(out, "merged")), tunes(os.path.join(out, "one"))
assert merged.keys() == one.keys(), (sorted(merged), sorted(one))
for k in merged:
    assert merged[k] == one[k], (k, merged[k], one[k])
rows_m = {(r["proposer"], r["workload"]): r["seeds"] for r in json.load(open(os.path.join(out, "merged", "results.json")))}
rows_o = {(r["proposer"], r["workload"]): r["seeds"] for r in json.load(open(os.path.join(out, "one", "results.json")))}
assert rows_m == rows_o, (rows_m, rows_o)
shards = [json.load(open(os.path.join(out, "shards", f"shard-{i}", "shard.json"))) for i in (0, 1)]
print(f"the same {len(merged)} tunes with the same settings in the merged and the one-process run; rows {rows_m}")
for m in shards:
    mine = [t for t, s in m["tasks"] if s == m["shard"]["index"]]
    print(f"shard {m['shard']['index']}/{m['shard']['count']}: " + ", ".join(f"{t['proposer']} seed {t['seed']}" for t in mine))
PY
echo "--- merged table" >&2
cat "$out/merged.txt"
say "done"
