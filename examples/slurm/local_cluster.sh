#!/usr/bin/env bash
# A single-node Slurm cluster in a folder of its own, for trying the recipe (and for its test):
#   examples/slurm/local_cluster.sh start DIR   # munged, slurmctld and slurmd; prints the SLURM_CONF to export
#   examples/slurm/local_cluster.sh stop DIR
# Needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root (slurmd runs
# jobs as their users). Everything it writes is under DIR: config, state, logs, its own munge
# key and socket; nothing of the machine's Slurm or munge is touched. Exit 0 once the node is
# idle and takes jobs; 1 with the daemons' last log lines otherwise. SLURMCTLD_PORT and
# SLURMD_PORT choose its ports (default 16817, 16818).
set -euo pipefail
cmd=${1:?usage: local_cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local_cluster.sh start|stop DIR}")
conf=$dir/slurm.conf

stop() {
  for daemon in slurmd slurmctld munged; do
    if [[ -f $dir/$daemon.pid ]]; then
      pid=$(cat "$dir/$daemon.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$daemon.pid"
    fi
  done
}

if [[ $cmd == stop ]]; then stop; exit 0; fi
[[ $cmd == start ]] || { echo "usage: local_cluster.sh start|stop DIR" >&2; exit 2; }
for tool in munged mungekey slurmctld slurmd sbatch sinfo; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install slurm-wlm munge" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "slurmd needs root" >&2; exit 1; }
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir"
# our own munge key and daemon, on a socket under DIR
[[ -f $dir/munge.key ]] || mungekey --create --keyfile="$dir/munge.key" --bits=1024
chmod 600 "$dir/munge.key"
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed"
node=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$conf" <<CONF
ClusterName=prose-sim-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
KillWait=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 150); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "export SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.2
done
echo "the node did not come up; last log lines:" >&2
tail -n 5 "$dir"/log/*.log >&2 || true
stop
exit 1
