#!/usr/bin/env bash
# Shared by the sbatch scripts: run a launcher while forwarding Slurm's pre-emption signal, requeue when it came.
#
# Slurm sends SIGUSR2 to the batch shell 120 s before the time limit (--signal=B:USR2@120) or on pre-emption.
# The launcher (accelerate launch / torchrun) does not pass SIGUSR2 on, so we signal its children, the training
# processes, which checkpoint, agree to stop and exit; then the job puts itself back in the queue and the same
# command resumes from the checkpoint.
#
# Launchers report any non-zero exit of a worker with a traceback and exit 1, so train.py's resumable exit 75
# would reach us as "exit 1". Under run_training, train.py writes the step it stopped at to $MUSICSSL_STOP_FILE
# and exits 0 instead; run_training turns that file back into exit 75.

preempted=0
stopped_at=

# forward_usr2 TARGET PID: send SIGUSR2 to PID itself (TARGET=process, e.g. srun, which passes it to its tasks)
# or to PID's direct children (TARGET=children: the training processes of a launcher).
forward_usr2() {
  local targets=$2
  if [[ "$1" == children ]]; then
    targets=$(pgrep -P "$2" || true)
  fi
  [[ -n "$targets" ]] && kill -s USR2 $targets 2>/dev/null || true
}

# run_forwarding_signals TARGET CMD...: run CMD, forwarding SIGUSR2/SIGTERM as SIGUSR2 to TARGET (see
# forward_usr2); returns CMD's exit code.
run_forwarding_signals() {
  local target=$1
  shift
  "$@" &
  local pid=$!
  trap 'echo "[slurm] $(date +%T) pre-emption signal: asking training to checkpoint"; preempted=1; forward_usr2 '"$target $pid"'' USR2 TERM
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"  # returns early (128 + the signal) when a trapped signal comes: keep waiting while it runs
  done
  local rc=0
  wait "$pid" || rc=$?  # its own exit status, which bash keeps for a child already waited for
  trap - USR2 TERM
  return "$rc"
}

# run_training TARGET CMD...: run_forwarding_signals for a train.py launch; returns 75 when the run stopped
# resumably (train.py wrote the step to $MUSICSSL_STOP_FILE, kept in stopped_at), else CMD's exit code.
run_training() {
  export MUSICSSL_STOP_FILE="$PWD/logs/.stopped-${SLURM_JOB_ID:-$$}"
  rm -f "$MUSICSSL_STOP_FILE"
  local rc=0
  run_forwarding_signals "$@" || rc=$?
  if [[ "$rc" == 0 && -s "$MUSICSSL_STOP_FILE" ]]; then
    stopped_at=$(<"$MUSICSSL_STOP_FILE")
    rc=75
  fi
  rm -f "$MUSICSSL_STOP_FILE"
  return "$rc"
}

# requeue_if_preempted RC: after a pre-emption, put the job back in the queue, unless the run finished anyway
# (exit 0: the signal came as it ended); otherwise exit with RC.
requeue_if_preempted() {
  local rc=$1
  if [[ "$preempted" == 1 && "$rc" == 0 ]]; then
    echo "[slurm] $(date +%T) the run finished as the pre-emption signal came; not requeued"
  elif [[ "$preempted" == 1 ]]; then
    if [[ "$rc" == 75 ]]; then
      echo "[slurm] $(date +%T) run checkpointed at step $stopped_at (exit 75); requeueing job ${SLURM_JOB_ID:?}"
    else
      echo "[slurm] $(date +%T) pre-empted, run exited $rc; requeueing job ${SLURM_JOB_ID:?} to resume from its last checkpoint"
    fi
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  if [[ "$rc" == 75 ]]; then
    echo "[slurm] $(date +%T) run checkpointed at step $stopped_at (exit 75); submit the job again to resume"
  fi
  exit "$rc"
}

# gpus_on_node: GPUs Slurm gave this node (1 when none are visible, e.g. CPU tests).
gpus_on_node() {
  if [[ -n "${SLURM_GPUS_ON_NODE:-}" ]]; then
    echo "$SLURM_GPUS_ON_NODE"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L | wc -l
  else
    echo 1
  fi
}

# route_interface ADDRESS: the network interface this node reaches ADDRESS (an address or a host name) through,
# i.e. the one holding the source address of that route; nothing when it is loopback or cannot be found.
route_interface() {
  local target=$1 source device
  command -v ip >/dev/null 2>&1 || return 0
  if [[ ! "$target" =~ ^[0-9.]+$ ]]; then
    target=$(getent ahostsv4 "$target" 2>/dev/null | awk 'NR == 1 {print $1}')
  fi
  [[ -n "$target" ]] || return 0
  source=$(ip -o route get "$target" 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p')
  [[ -n "$source" ]] || return 0
  device=$(ip -o addr show to "$source" 2>/dev/null | awk 'NR == 1 {print $2}')
  device=${device%%@*}
  [[ -n "$device" && "$device" != lo ]] && echo "$device"
  return 0
}

# use_interface_to_main ADDRESS: gloo (the CPU backend, and PyTorch's CPU collectives on GPU nodes) binds the
# address its host name resolves to, loopback on many nodes (Debian's /etc/hosts), which the other nodes cannot
# reach: set GLOO_SOCKET_IFNAME to the interface that routes to the main node, unless it is set already.
use_interface_to_main() {
  if [[ -z "${GLOO_SOCKET_IFNAME:-}" ]]; then
    local device
    device=$(route_interface "$1")
    [[ -n "$device" ]] && export GLOO_SOCKET_IFNAME=$device
  fi
  echo "[slurm] $(date +%T) node ${SLURM_NODEID:-0}: main process at $1, gloo on ${GLOO_SOCKET_IFNAME:-its default interface}"
}

# launch_on_this_node ARGS...: accelerate launch ARGS (train.py ...) with one process per GPU of this node, under
# run_training (the pre-emption signal forwarded to the training processes); returns 75 for a resumable stop.
launch_on_this_node() {
  local gpus
  gpus=$(gpus_on_node)
  if [[ "$gpus" -gt 1 ]]; then
    run_training children accelerate launch --config_file configs/accelerate/one_node.yaml \
      --num_processes "$gpus" "$@"
  else
    run_training children accelerate launch --config_file configs/accelerate/single_gpu.yaml "$@"
  fi
}
