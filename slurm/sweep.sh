#!/usr/bin/env bash
# One run of a sweep (configs/sweeps/NAME.toml) per array task, on one node: pre-train, then probe it.
#   python -m musicssl.downstream.sweeps list thesis-batch-size            # its runs and the --array range
#   sbatch --array=0-8 slurm/sweep.sh thesis-batch-size shards/fma shards/mtat [train.py flags]
#   python -m musicssl.downstream.compare --sweep thesis-batch-size        # the figure and table, once done
# A pre-empted task requeues and resumes its pre-training; a finished pre-training is not repeated (the resumed
# run ends at once) and the evaluations run again (the embeddings are cached).
#SBATCH --job-name=musicssl-sweep
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
#SBATCH --signal=B:USR2@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/%x-%A_%a.log
set -uo pipefail
usage="usage: sbatch --array=0-N slurm/sweep.sh SWEEP PRETRAIN_SHARDS EVAL_SHARDS [train.py flags]"
sweep=${1:?$usage}
pretrain_data=${2:?$usage}
eval_data=${3:?$usage}
shift 3
cd "${SLURM_SUBMIT_DIR:-.}"
source slurm/lib.sh
mkdir -p logs
index=${SLURM_ARRAY_TASK_ID:?run this as an array job (sbatch --array=0-N)}
flags=$(python -m musicssl.downstream.sweeps train-flags "$sweep" "$index") || exit $?
mapfile -t train_flags <<< "$flags"
echo "[slurm] job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0}: sweep $sweep run $index: ${train_flags[*]}"
launch_on_this_node train.py "${train_flags[@]}" --data "$pretrain_data" "$@"
rc=$?
[[ "$preempted" == 1 || "$rc" != 0 ]] && requeue_if_preempted "$rc"
python -m musicssl.downstream.sweeps evaluate "$sweep" "$index" --data "$eval_data"
