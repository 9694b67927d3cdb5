"""The README's demo path with fast settings: pre-training must give a better probe than random weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from downstream.tracking import load_evaluations

REPO = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_pretrained_probe_beats_random_weights_on_demo_corpus(tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    run(["-m", "data_prep.demo", "--out", "demo_data/audio"], tmp_path, env)
    run(["-m", "data_prep", "demo_data/audio/manifest.csv", "--out", "demo_data/shards"], tmp_path, env)
    run([str(REPO / "train.py"), "--preset", "demo", "--monitor.data", "None"], tmp_path, env)
    probe = [
        str(REPO / "evaluate.py"), "--backbone", "runs/demo/contrastive/backbone.safetensors",
        "--data", "demo_data/shards", "--task", "demo-tags", "--experiment", "demo-probes",
        "--epochs", "10", "--steps", "32", "--bootstrap-resamples", "20",
        "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    printed = run(probe, tmp_path, env) + run([*probe, "--random-init"], tmp_path, env)
    assert "ROC-AUC" in printed
    scores = {
        record.params["pretext"]: record.metrics["roc_auc_tagwise_mean"]
        for record in load_evaluations("demo-probes", env["MLFLOW_TRACKING_URI"])
    }
    assert set(scores) == {"contrastive", "random"}
    assert scores["contrastive"] > scores["random"], scores
