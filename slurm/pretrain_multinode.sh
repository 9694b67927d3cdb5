#!/usr/bin/env bash
# Several nodes: sbatch --nodes=4 slurm/pretrain_multinode.sh <pretext> [train.py flags]
# srun starts one launcher per node (slurm/node_launch.sh) with that node's machine rank.
#SBATCH --job-name=musicssl-pretrain-mn
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --signal=B:USR2@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/%x-%j.log
set -uo pipefail
pretext=${1:?usage: sbatch slurm/pretrain_multinode.sh <pretext> [train.py flags]}
shift
cd "${SLURM_SUBMIT_DIR:-.}"
source slurm/lib.sh
mkdir -p logs
export MAIN_PROCESS_IP=$(scontrol show hostnames "${SLURM_JOB_NODELIST:?}" | head -n 1)
export MAIN_PROCESS_PORT=${MAIN_PROCESS_PORT:-29500}
echo "[slurm] job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0}: ${SLURM_NNODES:-1} nodes, main $MAIN_PROCESS_IP"
# srun passes SIGUSR2 on to every process of the step; node_launch.sh keeps its launcher alive (the signal ignored)
# and hands it to that node's training processes, which checkpoint and stop.
run_training process srun --kill-on-bad-exit=1 bash slurm/node_launch.sh --pretext "$pretext" "$@"
requeue_if_preempted $?
