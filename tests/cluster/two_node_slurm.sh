#!/usr/bin/env bash
# A real two-node Slurm on one machine: two hosts made of Linux network namespaces (node1 = 10.78.0.1,
# node2 = 10.78.0.2, joined by a veth pair), munged, slurmctld and one slurmd per host. It submits
# `sbatch --nodes=2 slurm/pretrain_multinode.sh` with a tiny CPU training, a 2-minute limit and --signal=B:USR2@N,
# and checks that both nodes train, the job checkpoints on the signal, requeues itself, resumes at the saved
# step, finishes and exports backbone.safetensors. Prints PASS or FAIL; tears everything down on exit.
#
# Needs root, `ip` (iproute2), `unshare` and Slurm + MUNGE: apt-get install -y slurm-wlm munge
# (or run with --install to have this script do that). See tests/cluster/README.md.
#
# usage: tests/cluster/two_node_slurm.sh [--install] [--keep]
#   --install  apt-get install slurm-wlm munge first when they are missing
#   --keep     keep the temporary folder (logs, slurm.conf, the run) after the end
# Variables: PYTHON (the venv's python; default: .venv/bin/python of the repository, else python3 on PATH),
#   STEPS (training steps, default 500), TIME_MIN (--time in minutes, default 2), SIGNAL_S (USR2 this many
#   seconds before the limit, default 60), DEADLINE_S (give up after this long, default 900).
set -uo pipefail

install=0
keep=0
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--install] [--keep]" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/../.." && pwd)
STEPS=${STEPS:-500}
TIME_MIN=${TIME_MIN:-2}
SIGNAL_S=${SIGNAL_S:-60}
DEADLINE_S=${DEADLINE_S:-900}
PREFIX=musicssl-slurm  # namespace names: $PREFIX-node1, $PREFIX-node2
IFNAME=mn0             # the interface of each host (the same name in both, so one GLOO_SOCKET_IFNAME fits)
declare -A ADDR=([node1]=10.78.0.1 [node2]=10.78.0.2)

say() { echo "[two-node] $(date +%T) $*"; }
die() { say "FAIL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, daemons running as root)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [[ $install == 1 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge || die "apt-get failed"
  else
    die "Slurm or MUNGE missing: apt-get install -y slurm-wlm munge (or rerun with --install)"
  fi
fi
for tool in ip unshare sbatch scontrol squeue slurmd mungekey; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=$(command -v python3); fi
fi
VENV_BIN=$(dirname "$PYTHON")
[[ -x "$VENV_BIN/accelerate" ]] || die "$VENV_BIN has no accelerate: set PYTHON to the project's venv python"
for node in node1 node2; do
  ip netns list | grep -qw "$PREFIX-$node" && die "namespace $PREFIX-$node exists (another run?); ip netns del it"
done

T=$(mktemp -d /tmp/two-node-slurm.XXXXXX)
chmod 755 "$T"
declare -a DAEMONS=()
JOB=

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  say "tearing down"
  if [[ -n "$JOB" ]]; then in_node node1 scancel "$JOB" >/dev/null 2>&1; sleep 1; fi
  local pid node
  for pid in "${DAEMONS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 2
  for node in node1 node2; do  # whatever still runs in a host (job steps, training processes) was started by us
    for pid in $(ip netns pids "$PREFIX-$node" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  for pid in "${DAEMONS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for node in node1 node2; do ip netns del "$PREFIX-$node" 2>/dev/null; done
  if [[ $keep == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# in_node NODE CMD...: run CMD on host NODE: its network namespace, a private mount namespace whose /etc/hosts
# names node1 and node2, and a private UTS namespace whose hostname is NODE. (nsenter, not `ip netns exec`: that
# mounts a fresh /sys, which hides /sys/fs/cgroup, and slurmd refuses to start without its cgroup mounts.)
in_node() {
  local node=$1
  shift
  unshare --mount --uts --propagation private nsenter --net="/run/netns/$PREFIX-$node" \
    bash -c 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' _ "$T/hosts" "$node" "$@"
}

# --- the two hosts
cat > "$T/hosts" <<EOF
127.0.0.1 localhost
${ADDR[node1]} node1
${ADDR[node2]} node2
EOF
for node in node1 node2; do ip netns add "$PREFIX-$node" || die "ip netns add failed"; done
ip link add "${PREFIX:0:8}1" type veth peer name "${PREFIX:0:8}2" || die "cannot make a veth pair"
for i in 1 2; do
  ns=$PREFIX-node$i
  ip link set "${PREFIX:0:8}$i" netns "$ns"
  ip -n "$ns" link set "${PREFIX:0:8}$i" name $IFNAME
  ip -n "$ns" addr add "${ADDR[node$i]}/24" dev $IFNAME
  ip -n "$ns" link set $IFNAME up
  ip -n "$ns" link set lo up
done
[[ $(in_node node2 getent hosts node1) == "${ADDR[node1]}"* ]] || die "node2 does not resolve node1"
say "hosts: node1 ${ADDR[node1]}, node2 ${ADDR[node2]} (namespaces $PREFIX-node1/2, interface $IFNAME)"

# --- MUNGE: a key and daemon of our own (socket in $T, so a system munged is neither used nor disturbed)
mkdir -p "$T/munge" "$T/log" "$T/state" "$T/spool/node1" "$T/spool/node2" "$T/run"
mungekey --create --keyfile="$T/munge/munge.key" >/dev/null 2>&1 || die "mungekey failed"
munged --foreground --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.socket" \
  --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" \
  > "$T/log/munged.out" 2>&1 &
DAEMONS+=($!)
for _ in $(seq 50); do [[ -S "$T/munge/munge.socket" ]] && break; sleep 0.1; done
[[ -S "$T/munge/munge.socket" ]] || die "munged did not start: $(tail -3 "$T/log/munged.log")"

# --- Slurm
export SLURM_CONF=$T/slurm.conf
# This machine's CPU layout (slurmd refuses a node line that differs from the hardware); both hosts share it.
layout=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
cat > "$SLURM_CONF" <<EOF
ClusterName=musicssl-two-node
SlurmctldHost=node1(${ADDR[node1]})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket,cred_expire=30
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd-%n.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/linear
# cred_expire above: a requeued job waits cred_expire + 1 s before it may start again (default 120 s)
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
KillWait=15
InactiveLimit=0
MinJobAge=600
NodeName=node1 NodeAddr=${ADDR[node1]} ${layout}RealMemory=1000 State=UNKNOWN
NodeName=node2 NodeAddr=${ADDR[node2]} ${layout}RealMemory=1000 State=UNKNOWN
PartitionName=two Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP
EOF
in_node node1 slurmctld -D -i -f "$SLURM_CONF" > "$T/log/slurmctld.out" 2>&1 &
DAEMONS+=($!)
for node in node1 node2; do
  in_node "$node" slurmd -D -N "$node" -f "$SLURM_CONF" > "$T/log/slurmd-$node.out" 2>&1 &
  DAEMONS+=($!)
done
up=0
for _ in $(seq 60); do
  idle=$(in_node node1 sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle')
  [[ "$idle" == 2 ]] && up=1 && break
  sleep 1
done
[[ $up == 1 ]] || die "the nodes did not come up: $(in_node node1 sinfo -N 2>&1); see $T/log"
say "slurm up: $(in_node node1 sinfo -h -N -o '%N:%t' | tr '\n' ' ')"

# --- the job: a tiny CPU training on both nodes
PYTHONPATH=$REPO "$PYTHON" - "$T/shards" <<'EOF' || die "could not write the shard set"
import sys
from pathlib import Path

import numpy as np

from tests.support.shard_factory import write_shard_set

rng = np.random.default_rng(0)
rate = 16000
t = np.arange(6 * rate) / rate
tracks = []
for _ in range(8):
    wave = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 2000, size=3)) / 3
    tracks.append(((wave + 0.05 * rng.standard_normal(t.size)) * 20000).astype(np.int16))
write_shard_set(Path(sys.argv[1]), tracks, rate, tracks_per_shard=4)
EOF
RUN=$T/run-out
TRAIN_FLAGS=(
  --study two-node --no-mlflow --seed 3 --epochs 1 --steps-per-epoch "$STEPS" --batch-size 8
  --pairs.crop-seconds 1 --pairs.min-gap-seconds 1 --pairs.max-gap-seconds 3 --pairs.num-workers 0
  --resnet.width 8 --optim.warmup-steps 1 --checkpoint.every-steps 10 --log-every 50
  --data "$T/shards" --output-dir "$RUN"
)
# Environment of the job (sbatch exports the submitting environment): the venv's accelerate, the repository on
# PYTHONPATH, gloo on each host's interface and srun's --label (each line of a task starts with its node number).
cd "$REPO" || die "no repository"
JOB=$(in_node node1 env PATH="$VENV_BIN:$PATH" PYTHONPATH="$REPO" OMP_NUM_THREADS=1 GLOO_SOCKET_IFNAME=$IFNAME \
  SLURM_LABELIO=1 MAIN_PROCESS_PORT=29511 \
  sbatch --parsable --nodes=2 --gpus-per-node=0 --cpus-per-task=1 --time="$TIME_MIN" --signal="B:USR2@$SIGNAL_S" \
  --output="$T/job-%j.log" slurm/pretrain_multinode.sh contrastive "${TRAIN_FLAGS[@]}" 2>"$T/sbatch.err")
[[ -n "$JOB" ]] || die "sbatch refused the job: $(cat "$T/sbatch.err")"
LOG=$T/job-$JOB.log
say "submitted job $JOB: sbatch --nodes=2 --gpus-per-node=0 --cpus-per-task=1 --time=$TIME_MIN" \
  "--signal=B:USR2@$SIGNAL_S slurm/pretrain_multinode.sh contrastive (${STEPS} steps, checkpoint every 10)"

# Watch it: which training processes run on which host (rank from their environment), until it ends.
declare -A SEEN=()
start=$SECONDS
state=
while ((SECONDS - start < DEADLINE_S)); do
  state=$(in_node node1 scontrol -o show job "$JOB" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  restarts=$(in_node node1 scontrol -o show job "$JOB" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
  for node in node1 node2; do
    for pid in $(ip netns pids "$PREFIX-$node" 2>/dev/null); do
      grep -qa 'train.py' "/proc/$pid/cmdline" 2>/dev/null || continue
      env_of=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null)
      rank=$(grep '^RANK=' <<< "$env_of" | cut -d= -f2)
      world=$(grep '^WORLD_SIZE=' <<< "$env_of" | cut -d= -f2)
      [[ -n "$rank" ]] || continue
      key="$node:${restarts:-0}:$rank"
      if [[ -z "${SEEN[$key]:-}" ]]; then
        SEEN[$key]=1
        say "run ${restarts:-0}: $node (hostname $(nsenter -t "$pid" -u hostname 2>/dev/null)) runs train.py pid $pid," \
          "RANK=$rank WORLD_SIZE=$world"
      fi
    done
  done
  case "$state" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
  esac
  sleep 1
done
say "job $JOB ended $state after $((SECONDS - start)) s, restarts ${restarts:-?}"

# --- the checks
declare -a RESULTS=()
failed=0
check() {  # check NAME CONDITION-RESULT(0/1) DETAIL
  if [[ $2 == 0 ]]; then RESULTS+=("PASS  $1: $3"); else RESULTS+=("FAIL  $1: $3"); failed=1; fi
}
[[ -f "$LOG" ]] || LOG=/dev/null
text=$(tr '\r' '\n' < "$LOG")  # tqdm redraws with carriage returns
check "job completed" "$([[ $state == COMPLETED ]]; echo $?)" "state ${state:-unknown}"
seen=$(printf '%s\n' "${!SEEN[@]}" | sort | tr '\n' ' ')
check "both nodes trained" "$([[ -n "${SEEN[node1:0:0]:-}" && -n "${SEEN[node2:0:1]:-}" ]]; echo $?)" \
  "train.py processes seen (host:run:RANK): ${seen:-none}"
stop_lines=$(grep -ao '^[01]: stopping at step [0-9]* (SIGUSR2)' <<< "$text" | sort -u)
stop_steps=$(sed 's/.*stopping at step \([0-9]*\).*/\1/' <<< "$stop_lines" | sort -nu | tr '\n' ' ')
stop_step=${stop_steps%% *}
both=1
for step in $stop_steps; do [[ $(grep -c "stopping at step $step " <<< "$stop_lines") == 2 ]] || both=0; done
check "USR2 mid-run: both nodes checkpointed" "$([[ -n "$stop_step" && $both == 1 ]]; echo $?)" \
  "srun tasks 0 (node1) and 1 (node2) each logged 'stopping at step N (SIGUSR2); checkpoint saved' for N = ${stop_steps:-none}"
exit75=$(grep -ao 'run checkpointed at step [0-9]* (exit 75)' <<< "$text" | head -1)
other=$(grep -ao 'pre-empted, run exited [0-9]*' <<< "$text" | head -1)
check "the batch shell saw the resumable exit 75" "$([[ -n "$exit75" ]]; echo $?)" \
  "'${exit75:-$other}'$(grep -ao 'task [01]: Exited with exit code [0-9]*' <<< "$text" | head -2 | sed 's/^/; srun: /' | tr -d '\n')"
requeue_line=$(grep -ao 'requeueing job [0-9]*' <<< "$text" | head -1)
check "requeued itself" "$([[ -n "$requeue_line" && ${restarts:-0} -ge 1 ]]; echo $?)" \
  "'${requeue_line:-no requeue line}', Slurm restart count ${restarts:-0}"
resume_lines=$(grep -ao '^[01]: resuming from [^ ]* at step [0-9]*' <<< "$text" | sort -u)
resumed_all=1
for step in $stop_steps; do [[ $(grep -c "at step $step$" <<< "$resume_lines") == 2 ]] || resumed_all=0; done
resume_steps=$(sed 's/.* at step //' <<< "$resume_lines" | sort -nu | tr '\n' ' ')
check "resumed at the saved step" "$([[ -n "$stop_step" && $resumed_all == 1 ]]; echo $?)" \
  "both tasks logged 'resuming from .../step-N at step N' for N = ${resume_steps:-none} (stops: ${stop_steps:-none})"
last_ckpt=$(ls -d "$RUN"/checkpoints/step-* 2>/dev/null | sort | tail -1)
check "finished and exported" "$([[ -s "$RUN/backbone.safetensors" && ${last_ckpt##*/} == *"$STEPS" ]]; echo $?)" \
  "backbone.safetensors $(stat -c %s "$RUN/backbone.safetensors" 2>/dev/null || echo missing) bytes; last checkpoint ${last_ckpt##*/}"

echo
echo "==== two-node Slurm: job $JOB log (key lines) ===="
grep -aE '\[slurm\]|resuming from|stopping at step|Exited with|Error|error' <<< "$text" | cut -c1-200 | head -40
echo "==== summary ===="
printf '%s\n' "${RESULTS[@]}"
if [[ $failed == 0 ]]; then echo "PASS: two-node Slurm job $JOB trained on node1 and node2, requeued on USR2, resumed, exported"
else echo "FAIL: see above; rerun with --keep to keep logs ($T/log, $LOG)"; fi
exit $failed
