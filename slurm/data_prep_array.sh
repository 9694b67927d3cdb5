#!/usr/bin/env bash
# Data preparation at scale: one array task per part of the input, then a merge of the parts' indexes.
#   sbatch --array=0-63 slurm/data_prep_array.sh /music/manifest.csv shards/catalogue [data_prep flags]
#   sbatch --dependency=afterok:<jobid> --wrap "python -m musicssl.sharding merge shards/catalogue"
# Each task writes shards/catalogue/part-NNN (its own shards, index and report.csv) and can be re-run: it resumes
# (re-run part 3 of 64: sbatch --array=3 --export=ALL,PARTS=64 slurm/data_prep_array.sh ...).
#SBATCH --job-name=musicssl-data-prep
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=32
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/%x-%A_%a.log
set -euo pipefail
input=${1:?usage: sbatch --array=0-N slurm/data_prep_array.sh INPUT OUT_DIR [data_prep flags]}
out=${2:?usage: sbatch --array=0-N slurm/data_prep_array.sh INPUT OUT_DIR [data_prep flags]}
shift 2
cd "${SLURM_SUBMIT_DIR:-.}"
part=${SLURM_ARRAY_TASK_ID:?run this as an array job (sbatch --array=0-N)}
# PARTS fixes the number of parts when re-running some of them: sbatch --array=3 --export=ALL,PARTS=64 ...
parts=${PARTS:-${SLURM_ARRAY_TASK_COUNT:?run this as an array job (sbatch --array=0-N)}}
printf -v name "part-%03d" "$part"
python -m musicssl.data_prep "$input" --out "$out/$name" --part "$part" --parts "$parts" \
  --workers "${SLURM_CPUS_PER_TASK:-$(nproc)}" "$@"
