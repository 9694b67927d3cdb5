#!/usr/bin/env bash
# Run by srun on every node of a multi-node job: accelerate launch with this node's machine rank.
set -uo pipefail
source slurm/lib.sh
gpus=$(gpus_on_node)
nodes=${SLURM_NNODES:-1}
use_interface_to_main "${MAIN_PROCESS_IP:?}"  # GLOO_SOCKET_IFNAME, unless set
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1  # a restarted group gets a fresh rendezvous store (pytorch#135712)
# srun passes a signal to every process of the step, not only to this script: the launcher, which has no handler
# for SIGUSR2, starts with it ignored (kept across exec) so that it outlives the stop checkpoint; this script
# still forwards the signal, and the training processes install their own handler over the inherited "ignore".
run_forwarding_signals children bash -c 'trap "" USR2; exec "$@"' launcher \
  accelerate launch --config_file configs/accelerate/multi_node.yaml \
  --num_machines "$nodes" --machine_rank "${SLURM_NODEID:-0}" --num_processes $((nodes * gpus)) \
  --main_process_ip "${MAIN_PROCESS_IP:?}" --main_process_port "${MAIN_PROCESS_PORT:-29500}" \
  train.py "$@"
