"""The README's demo path, shortened: every stage runs, and training, probes and comparison log what they should.

Whether pre-training beats random weights is a measured margin with its interval (`benchmarks/pretext_margins.py`,
figures in docs/benchmarks.md), not an assertion here: a test must pass on every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicssl.downstream.tracking import PREDICTIONS_ARTIFACT, load_evaluations
from tests.support.paths import REPO


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_demo_path_trains_probes_and_compares_paired(tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    run(["-m", "musicssl.data_prep.demo", "--out", "demo_data/audio", "--tracks", "42"], tmp_path, env)
    run(["-m", "musicssl.data_prep", "demo_data/audio/manifest.csv", "--out", "demo_data/shards"], tmp_path, env)
    run([str(REPO / "train.py"), "--preset", "demo", "--epochs", "2", "--monitor.every-steps", "25"], tmp_path, env)
    assert (tmp_path / "runs/demo/contrastive/backbone.safetensors").is_file()
    client = mlflow.MlflowClient(uri)
    (training,) = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert {"loss", "lr", "probe/knn_roc_auc", "diag/effective_rank"} <= set(training.data.metrics)

    probe = [
        str(REPO / "evaluate.py"), "--backbone", "runs/demo/contrastive/backbone.safetensors",
        "--data", "demo_data/shards", "--task", "demo-tags", "--experiment", "demo-probes",
        "--epochs", "2", "--steps", "8", "--bootstrap-resamples", "10", "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    printed = run(probe, tmp_path, env) + run([*probe, "--random-init"], tmp_path, env)
    assert printed.count("ROC-AUC tag") == 2
    records = load_evaluations("demo-probes", uri)
    assert sorted(record.params["pretext"] for record in records) == ["contrastive", "random"]
    assert all(record.predictions is not None for record in records)
    pretrained, random = sorted(records, key=lambda record: record.params["pretext"])
    assert pretrained.predictions.same_test_set(random.predictions)
    assert PREDICTIONS_ARTIFACT in {artifact.path for artifact in client.list_artifacts(pretrained.run_id)}

    out = tmp_path / "comparison"
    compare = ["-m", "musicssl.downstream.compare", "--experiment", "demo-probes", "--out", str(out)]
    printed = run([*compare, "--paired-resamples", "100"], tmp_path, env)
    assert "demo-tags ROC-AUC (tag-wise): contrastive - random:" in printed and "CI" in printed
    for name in ("table.md", "bootstrap.png", "differences.md", "differences.csv", "differences.png"):
        assert (out / name).is_file(), name
    differences = (out / "differences.csv").read_text()
    assert differences.count("\ndemo-tags,") == 3  # ROC-AUC and PR-AUC, tag-wise, and precision@10 of a shared tag
    assert "\ndemo-tags,precision_at_k,contrastive,random," in differences
