#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh started (by their pid files, nothing else)
# and remove the slurm.conf it wrote, so later snakemake calls do not wait for a controller.
set -uo pipefail
state=$(realpath -m "${1:?usage: stop_slurm.sh STATE_DIR}")
conf=/etc/slurm/slurm.conf
marker="# written by icetrack tests/slurm/start_slurm.sh"

if [[ -f $state/started ]]; then
  # Stop in reverse start order: slurmd, slurmctld, then munged.
  tac "$state/started" | while read -r name pidfile; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop_slurm.sh: $name ($pid) ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  rm -f "$state/started"
fi
if [[ -f $conf ]] && grep -qF "$marker" "$conf"; then
  rm -f "$conf"
fi
exit 0
