#!/usr/bin/env bash
# One node, all its GPUs: sbatch slurm/pretrain.sh <pretext> [train.py flags]
#SBATCH --job-name=musicssl-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --signal=B:USR2@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/%x-%j.log
set -uo pipefail
pretext=${1:?usage: sbatch slurm/pretrain.sh <pretext> [train.py flags]}
shift
cd "${SLURM_SUBMIT_DIR:-.}"
source slurm/lib.sh
mkdir -p logs
gpus=$(gpus_on_node)
echo "[slurm] job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0} on $(hostname): $gpus GPU(s), pretext $pretext"
if [[ "$gpus" -gt 1 ]]; then
  launcher=(accelerate launch --config_file configs/accelerate/one_node.yaml --num_processes "$gpus")
else
  launcher=(accelerate launch --config_file configs/accelerate/single_gpu.yaml)
fi
run_training children "${launcher[@]}" train.py --pretext "$pretext" "$@"
requeue_if_preempted $?
