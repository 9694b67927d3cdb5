#!/usr/bin/env bash
# Run the official HEAR 2021 validator (PyPI hearvalidator) on musicssl.downstream.hear with a tiny exported backbone.
#
#   benchmarks/hear_validator.sh [WORK_DIR]        # default WORK_DIR: a new temporary folder
#   MUSICSSL_PYTHON=.venv/bin/python HEAR_DEVICE=cpu benchmarks/hear_validator.sh
#
# hearvalidator imports TensorFlow, which stays out of the project's lock: the validator gets its own venv in
# WORK_DIR/venv (no system site-packages) holding tensorflow-cpu and hearvalidator (--no-deps: its torch
# requirement would pull PyPI's CUDA wheel). torch and the project's other dependencies come from the project
# environment (MUSICSSL_PYTHON, default .venv/bin/python) through a .pth appended after the venv's own
# packages, and `musicssl` is this checkout through a symlink on PYTHONPATH, so the code validated is the
# checkout's. The first run downloads about 300 MB (1.6 GB installed); a WORK_DIR given again is reused.
# The validator's output goes to stdout and WORK_DIR/validator.log; docs/hear.md records a run.
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=2  # TensorFlow only imported by the validator: keep its start-up chatter out of the log

checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d -t musicssl-hear.XXXXXX)}"
project_python="${MUSICSSL_PYTHON:-$checkout/.venv/bin/python}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

if [[ ! -x "$work/venv/bin/python" ]]; then
    base_python="$("$project_python" -c 'import sys; print(sys.base_prefix)')/bin/python3"
    "$base_python" -m venv "$work/venv"
fi
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install --quiet --disable-pip-version-check tensorflow-cpu
"$venv_python" -m pip install --quiet --disable-pip-version-check --no-deps hearvalidator

project_site="$("$project_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
venv_site="$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$project_site" > "$venv_site/zz_musicssl_project_env.pth"
mkdir -p "$work/path"
ln -sfn "$checkout" "$work/path/musicssl"
export PYTHONPATH="$work/path"

model="$work/tiny_backbone.safetensors"
"$venv_python" - "$model" <<'EOF'
import sys
from pathlib import Path

import torch

import musicssl.downstream.hear
from musicssl.trainer.export import BackboneRecipe, export_backbone

print(f"validating {musicssl.downstream.hear.__file__}", file=sys.stderr)
torch.manual_seed(0)
recipe = BackboneRecipe(
    "resnet", {"width": 8, "duration_s": 1.0, "embed_dim": 16, "layers": [1, 1, 1, 1], "heads": 2, "n_mels": 32}
)
export_backbone(recipe.build().eval(), recipe, Path(sys.argv[1]))
EOF

device_args=()
if [[ -n "${HEAR_DEVICE:-}" ]]; then
    device_args=(--device "$HEAR_DEVICE")
fi
"$work/venv/bin/hear-validator" musicssl.downstream.hear --model "$model" "${device_args[@]}" 2>&1 \
    | tee "$work/validator.log"
