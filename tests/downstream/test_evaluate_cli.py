"""End-to-end tests of `python evaluate.py`: extraction, probes, MLflow runs and the printed table."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicssl.downstream.cli import infer_pretext, main
from musicssl.downstream.tracking import load_evaluations
from musicssl.trainer.export import export_backbone
from tests.support.labelled_shard_factory import balanced_tracks, tiny_backbone, write_labelled_set
from tests.support.paths import REPO

FAST_PROBES = ["--epochs", "2", "--steps", "3", "--bootstrap-resamples", "5", "--device", "cpu"]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A labelled set, a backbone exported where train.py puts it, and MLflow in a temporary sqlite file."""
    write_labelled_set(tmp_path / "toyset", balanced_tracks({"train": 8, "valid": 4, "test": 4}))
    backbone, recipe = tiny_backbone(seed=7)  # not --random-init's seed 0
    export_backbone(backbone, recipe, tmp_path / "runs" / "demo" / "vicreg" / "backbone.safetensors")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def command(workspace: Path, *extra: str) -> list[str]:
    source = workspace / "runs" / "demo" / "vicreg" / "backbone.safetensors"
    data, cache = workspace / "toyset", workspace / "cache"
    return ["--backbone", str(source), "--data", str(data), "--cache-dir", str(cache), *FAST_PROBES, *extra]


def test_pretrained_and_random_runs_are_logged_and_tabulated(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command(workspace, "--param", "pretrain_data=fma", "pretrain_epochs=300")) == 0
    table = capsys.readouterr().out
    assert "ROC-AUC tag" in table and "PR-AUC clip" in table and "P@10 tag" in table
    row = next(line for line in table.splitlines() if line.startswith("toyset"))
    assert row.count("+-") == 5

    assert main(command(workspace, "--random-init", "--protocol", "thesis", "--experiment", "downstream")) == 0
    records = {record.params["pretext"]: record for record in load_evaluations("downstream")}
    assert set(records) == {"vicreg", "random"}
    trained, random = records["vicreg"], records["random"]
    assert trained.params["task"] == "toyset" and trained.params["protocol"] == "paper"
    assert trained.params["pretrain_data"] == "fma" and trained.params["pretrain_epochs"] == "300"
    assert "pretrain_data" not in random.params
    assert trained.params["probe_aggregation"] == "track" and random.params["probe_aggregation"] == "chunk"
    assert trained.params["weights_sha256"] != random.params["weights_sha256"]
    assert trained.params["random_init"] == "False" and random.params["random_init"] == "True"
    assert 0.0 <= trained.metrics["roc_auc_tagwise_mean"] <= 100.0
    assert len(trained.resamples["pr_auc_clipwise"]) == 5
    assert 0.0 <= trained.metrics["precision_at_k_full"] <= 100.0 and trained.params["precision_k"] == "10"
    assert trained.predictions.neighbour_precision.shape == (len(trained.predictions.track_ids),)
    assert len(list((workspace / "cache").glob("*.npz"))) == 2


def test_limited_data_logs_one_run_per_fraction_and_draw(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(command(workspace, "--limited-data", "--task", "tiny", "--experiment", "limited")) == 0
    records = load_evaluations("limited")
    assert len(records) == 20
    assert {record.params["fraction"] for record in records} == {"0.01", "0.05", "0.1", "0.2", "1.0"}
    assert sum(line.startswith("tiny ") for line in capsys.readouterr().out.splitlines()) == 20


def test_marble_logs_every_candidate_rate_and_the_chosen_one(workspace: Path) -> None:
    assert main(command(workspace, "--protocol", "marble", "--experiment", "marble")) == 0
    (record,) = load_evaluations("marble")
    assert record.params["protocol"] == "marble" and record.params["probe_hidden_dim"] == "512"
    grid = (5e-05, 0.0001, 0.0005, 0.001, 0.005, 0.01)
    scores = {rate: record.metrics[f"lr_search/{rate:g}/valid_roc_auc"] for rate in grid}
    chosen = float(record.params["probe_learning_rate"])
    assert chosen in grid and scores[chosen] == max(scores.values())


def test_pretext_is_read_from_the_run_folder_or_file_name() -> None:
    assert infer_pretext("runs/paper/byol/checkpoints/step-000001000") == "byol"
    assert infer_pretext("runs/thesis/vicreg/backbone.safetensors") == "vicreg"
    assert infer_pretext("downloads/barlow_twins_epoch1000.pt") == "barlow_twins"
    assert infer_pretext("model.safetensors") == "unknown"


def test_data_is_required_and_demo_is_built_only_by_the_entry_point(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = command(workspace)
    at = args.index("--data")
    without_data = args[:at] + args[at + 2 :]
    with pytest.raises(SystemExit):
        main(without_data)
    assert "--data" in capsys.readouterr().err
    demo = [*without_data, "--data", "demo"]
    with pytest.raises(ValueError, match="built by evaluate"):
        main(demo)
    rates: list[int] = []

    def demo_shards(sample_rate: int) -> str:
        rates.append(sample_rate)
        return str(workspace / "toyset")

    assert main([*demo, "--task", "demo-tags"], demo_shards=demo_shards) == 0
    assert rates == [tiny_backbone(seed=0)[0].sample_rate]
    assert "demo-tags" in capsys.readouterr().out


def test_the_pretext_and_run_id_an_export_records_beat_its_path(workspace: Path) -> None:
    backbone, recipe = tiny_backbone(seed=7)
    source = workspace / "runs" / "demo" / "vicreg" / "renamed.safetensors"  # the path says vicreg
    export_backbone(backbone, recipe, source, pretext="byol", run_id="0123abcd")
    args = command(workspace, "--experiment", "provenance")
    args[args.index("--backbone") + 1] = str(source)
    assert main(args) == 0
    (record,) = load_evaluations("provenance")
    assert record.params["pretext"] == "byol" and record.params["pretrain_run_id"] == "0123abcd"


def test_tags_that_the_set_does_not_have_are_an_error_before_any_run(workspace: Path) -> None:
    import mlflow

    tags = workspace / "tags.txt"
    tags.write_text("High\nPULSE\n")  # the set spells them high, pulse
    pattern = (
        r"none of the tags asked \(High, PULSE\) occurs in .*toyset.*'High' -> 'high', 'PULSE' -> 'pulse'.*"
        r"the set has: high, low, pulse.*--tags"
    )
    with pytest.raises(ValueError, match=pattern):
        main(command(workspace, "--tags", str(tags)))
    assert mlflow.MlflowClient().get_experiment_by_name("downstream") is None


def test_a_probe_without_a_scorable_tag_is_an_error(tmp_path: Path) -> None:
    from musicssl.downstream.extract_task import assemble_task
    from musicssl.sharding.format import TrackMeta

    splits = {"train": "low", "valid": "low", "test": "low"}  # every test track has it: no AUC
    metas = [
        TrackMeta(f"t{i}", "t.wav", 1.0, 16000, 16000, [tag], split) for i, (split, tag) in enumerate(splits.items())
    ]
    chunks = [np.zeros((1, 4), dtype=np.float32)] * len(metas)
    with pytest.raises(ValueError, match=r"no tag of the probe \(low\) can be scored"):
        assemble_task("toy", chunks, metas, None)


def test_an_evaluation_whose_logging_fails_is_recorded_failed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", disk_full)
    with pytest.raises(OSError, match="No space left"):
        main(command(workspace, "--experiment", "crash"))
    client = mlflow.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("crash").experiment_id])
    assert run.info.status == "FAILED"


def test_a_tracking_server_that_refuses_ends_evaluate_py_with_one_line(workspace: Path) -> None:
    with socket.socket() as probe:  # a loopback port the OS picked, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), *command(workspace)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"error: the MLflow tracking server at {uri} does not answer (connection refused): start it, or unset "
        "MLFLOW_TRACKING_URI to track in sqlite:///mlflow.db in this folder"
    ]
    assert not (workspace / "cache").exists()  # refused before extracting anything
