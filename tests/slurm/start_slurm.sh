#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests/test_slurm.py (root only).
#
#   tests/slurm/start_slurm.sh STATE_DIR    install slurm-wlm + munge if missing, write
#                                           /etc/slurm/slurm.conf, start munged, slurmctld,
#                                           slurmd; wait until the node is idle
#   tests/slurm/stop_slurm.sh STATE_DIR     stop what start started (by pid file), remove the conf
#
# STATE_DIR holds pid files, logs (slurmctld.log lists every submitted job) and spool.
# Why /etc/slurm/slurm.conf and not SLURM_CONF: srun inside a job ignores SLURM_CONF.
# Why the conf is removed afterwards: with Slurm installed and a conf naming a controller
# that is down, every `snakemake` call waits ~10 s (the Slurm executor plugin asks
# `scontrol show config` at import); without a conf scontrol fails at once.
set -euo pipefail
state=$(realpath -m "${1:?usage: start_slurm.sh STATE_DIR}")
conf=/etc/slurm/slurm.conf
marker="# written by icetrack tests/slurm/start_slurm.sh"

[[ $(id -u) -eq 0 ]] || { echo "start_slurm.sh: must run as root (it starts slurmctld/slurmd)" >&2; exit 2; }
if [[ -e $conf ]] && ! grep -qF "$marker" "$conf"; then
  echo "start_slurm.sh: $conf exists and is not ours: this machine has its own Slurm; not touching it" >&2
  exit 3
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "installing slurm-wlm and munge from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

mkdir -p "$state/spool/ctld" "$state/spool/d"
: > "$state/started"   # daemons this script started, for stop_slurm.sh

# munge: the authentication daemon every Slurm call goes through; its key comes with the package.
if [[ ! -s /etc/munge/munge.key ]]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! munge -n >/dev/null 2>&1 </dev/null; then
  runuser -u munge -- /usr/sbin/munged --force
  echo "munged /run/munge/munged.pid" >> "$state/started"
fi

host=$(hostname -s)
cpus=$(nproc)
# RealMemory must not exceed what slurmd detects, or the node is drained.
mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p /etc/slurm
cat > "$conf" <<EOF
$marker (state in $state); removed by stop_slurm.sh
ClusterName=icetrack-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups or accounting daemon in a container: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
# Finished jobs stay visible to squeue for 10 min: the executor's status command is squeue.
MinJobAge=600
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

/usr/sbin/slurmctld
echo "slurmctld $state/slurmctld.pid" >> "$state/started"
/usr/sbin/slurmd
echo "slurmd $state/slurmd.pid" >> "$state/started"

for _ in $(seq 60); do
  if sinfo -h -N -o "%T" 2>/dev/null | grep -qx idle; then
    echo "slurm up: node $host, $cpus CPUs, ${mem_mb} MB; state in $state"
    exit 0
  fi
  sleep 0.5
done
echo "start_slurm.sh: the node did not become idle in 30 s:" >&2
sinfo -N -l >&2 || true
tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
exit 1
