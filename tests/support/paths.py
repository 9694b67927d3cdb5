"""The paths tests name, defined once: the repository, the suite, its data and the code put on launched processes'
PYTHONPATH."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root (train.py, slurm/, configs/)
TESTS = REPO / "tests"
SUPPORT = TESTS / "support"
DATA = TESTS / "data"  # files tests read (deezer_resnet_backbone_keys.json)
LAUNCHED = TESTS / "launched"  # a sitecustomize that launched training processes load (BatchNorm off, hooks)
FAULTY_DATA_PREP = SUPPORT / "faulty_data_prep.py"  # `python -m data_prep` with a fault at a named point
