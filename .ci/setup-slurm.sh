#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the worker tests (tests/test_slurm.py): Debian's slurm-wlm and
# munge, a munge key, a minimal slurm.conf naming this host as controller and only node, then munged, slurmctld
# and slurmd. Idempotent (a second run finds it up); runs as root; prints nothing unless something fails.
set -euo pipefail
HOST=$(hostname -s)
CPUS=${SLURM_CPUS:-2}
STATE=/var/spool/slurm-harness
CONF_DIR=/etc/slurm
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >"$log" 2>&1; then
    cat "$log" >&2; exit 1
  fi
  rm -f "$log"
fi

# munge: one key shared by every daemon and client of the cluster (here: one host)
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" /var/log/slurm
CONF="$CONF_DIR/slurm.conf"
WANT=$(cat <<CONF
# written by harness .ci/setup-slurm.sh: one host is controller and only compute node
ClusterName=harness
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=30
InactiveLimit=0
SlurmdTimeout=60
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
)
if [ "$(cat "$CONF" 2>/dev/null)" != "$WANT" ]; then
  printf '%s\n' "$WANT" > "$CONF"
  # a changed configuration: restart what runs so that it reads the new one
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  sleep 1
fi
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
alive "$STATE/slurmctld.pid" || slurmctld
alive "$STATE/slurmd.pid" || slurmd

for _ in $(seq 120); do
  state=$(sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle|mix|alloc) exit 0 ;;
    down*|drain*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
echo "setup-slurm: node $HOST did not become idle (state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
