#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for `make test-slurm` (docs/architecture.md,
# "Scale-out"): `scripts/slurm.sh up` installs Debian's slurm-wlm and munge if missing, writes a
# minimal configuration from this machine's own CPUs, memory and host name, starts munged,
# slurmctld and slurmd, and waits until the node is idle; `down` stops only what `up` started;
# `status` says whether a cluster answers; `check` whether `up` can run here. Needs root and apt-get; where either is missing it
# refuses in one line and changes nothing.
set -euo pipefail

STATE=${RNN_BENCH_SLURM_DIR:-/var/lib/rnn-bench-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by rnn-bench scripts/slurm.sh"
say() { echo "slurm: $*"; }
refuse() { echo "slurm: cannot start a cluster here: $*; nothing was changed" >&2; exit 2; }

started_by_us() { [ -f "$STATE/started" ]; }

missing() {
  local m=()
  for cmd in slurmctld slurmd sinfo munged; do command -v "$cmd" >/dev/null || m+=("$cmd"); done
  echo "${m[*]}"
}

check() {  # whether `up` can run here; changes nothing
  [ "$(id -u)" = 0 ] || refuse "not root (the daemons and /etc/slurm need root)"
  if [ -f "$CONF" ] && ! grep -q "$MARK" "$CONF"; then
    refuse "$CONF exists and is not ours (this machine has its own SLURM); use that cluster"
  fi
  if [ -n "$(missing)" ] && ! command -v apt-get >/dev/null; then
    refuse "$(missing) missing and no apt-get to install them"
  fi
}

up() {
  check
  if started_by_us && sinfo -h -o %T 2>/dev/null | grep -q idle; then
    say "already up (node $(hostname -s), idle); stop it with: make slurm-down"; return 0
  fi
  if [ -n "$(missing)" ]; then
    say "installing slurm-wlm and munge (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }
  fi
  mkdir -p "$STATE"/{state,spool,log} /etc/slurm /run/munge
  : > "$STATE/started"
  # munge: the key comes with the package; the daemon runs as its own user
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null; }
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
    echo munged >> "$STATE/started"
  fi
  local host node
  host=$(hostname -s)
  # The node line as slurmd itself reads the hardware (CPUs, sockets, cores, threads, memory).
  node=$(slurmd -C | head -1)
  cat > "$CONF" <<CONF
$MARK on $(date -u +%FT%TZ); removed by scripts/slurm.sh down
ClusterName=rnnbench
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$node State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld -c 2>>"$STATE/log/start.err" && echo slurmctld >> "$STATE/started"
  slurmd -c 2>>"$STATE/log/start.err" && echo slurmd >> "$STATE/started"
  local t0=$SECONDS
  until sinfo -h -o %T 2>/dev/null | grep -q idle; do
    if (( SECONDS - t0 > 60 )); then
      echo "slurm: the node did not come up idle within 60 s; logs in $STATE/log/" >&2
      sinfo -N -l >&2 || true; exit 1
    fi
    sleep 1
  done
  say "up in $((SECONDS - t0)) s: node $host ($(sinfo -h -o '%c CPUs, %m MB'), partition cpu, idle)"
  say "stop it with: make slurm-down (state and logs: $STATE)"
}

down() {
  if ! started_by_us; then say "no cluster started by scripts/slurm.sh here; nothing to stop"; return 0; fi
  local pids=()
  for pair in "slurmd:$STATE/slurmd.pid" "slurmctld:$STATE/slurmctld.pid"; do
    local name=${pair%%:*} pidfile=${pair#*:}
    if grep -qx "$name" "$STATE/started" && [ -f "$pidfile" ]; then pids+=("$(cat "$pidfile")"); fi
  done
  if grep -qx munged "$STATE/started"; then pids+=($(pgrep -x munged || true)); fi
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  local t0=$SECONDS
  alive() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
  while alive && (( SECONDS - t0 < 20 )); do sleep 0.5; done
  if [ ${#pids[@]} -gt 0 ]; then kill -9 "${pids[@]}" 2>/dev/null || true; fi   # what did not stop in 20 s
  if [ -f "$CONF" ] && grep -q "$MARK" "$CONF"; then rm -f "$CONF"; fi
  rm -rf "$STATE"
  say "stopped the daemons scripts/slurm.sh started and removed its configuration"
}

status() {
  if sinfo -h -o '%P %T %c %m' 2>/dev/null | grep -q .; then
    sinfo -h -o 'slurm: partition %P: %T, %c CPUs, %m MB'
  else
    say "no cluster answers (make slurm-up starts one)"; exit 1
  fi
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;; check) check ;;
  *) echo "usage: scripts/slurm.sh up|down|status|check" >&2; exit 2 ;;
esac
