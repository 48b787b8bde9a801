#!/usr/bin/env bash
# Run a scenario's grid as a Slurm job array of N shards, then merge them:
#   examples/slurm/submit.sh SCENARIO RUNS N [sbatch options for both jobs ...]
# prints the array's and the merge job's ids. The merge starts once every shard has ended well.
# WAIT=1: wait for the merge job to end (sbatch --wait; exits with its code).
# MERGED: where the merged run goes (default RUNS/merged); PYTHON, PROSE_SIM_ARGS: see shard.sbatch.
set -euo pipefail
scenario=$(realpath "${1:?usage: submit.sh SCENARIO RUNS N [sbatch options]}")
runs=$(realpath -m "${2:?usage: submit.sh SCENARIO RUNS N}")
n=${3:?usage: submit.sh SCENARIO RUNS N}
shift 3
here=$(dirname "$(realpath "$0")")
mkdir -p "$runs"
array=$(sbatch --parsable --array="1-$n" --output="$runs/shard-%a-of-$n.out" \
  --export="ALL,SCENARIO=$scenario,RUNS=$runs" "$@" "$here/shard.sbatch")
echo "array job $array: $n shards into $runs/shard-K-of-$n"
wait=()
[[ ${WAIT:-0} == 1 ]] && wait=(--wait)
echo "merge job waits for it: $runs/merge.out"
sbatch --parsable "${wait[@]}" --dependency="afterok:${array%%;*}" --kill-on-invalid-dep=yes \
  --output="$runs/merge.out" --export="ALL,RUNS=$runs,N=$n" "$@" "$here/merge.sbatch"
