"""MLflow round trip of evaluations and the comparison command's table and figures, on a temp store."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from musicssl.downstream.bootstrap import BootstrapConfig, bootstrap_scores
from musicssl.downstream.compare import CompareArgs, main, run_comparison
from musicssl.downstream.evaluation import EvaluationResult
from musicssl.downstream.metrics import tagging_scores
from musicssl.downstream.paired import ProbePredictions
from musicssl.downstream.probes import TrainingHistory, probe_config
from musicssl.downstream.references import load_references
from musicssl.downstream.sweep_report import limited_data_panels, sweep_panels, sweep_references
from musicssl.downstream.tracking import (
    EvaluationContext,
    EvaluationRecord,
    load_evaluations,
    log_evaluation,
    parse_params,
)
from musicssl.trainer.tracking import tracking_uri


def _result(noise: float, fraction: float, draw: int) -> EvaluationResult:
    """An evaluation of noisy predictions of random tags (no probe needed to exercise logging and plots)."""
    rng = np.random.default_rng(draw)
    targets = (rng.random((40, 3)) < 0.4).astype(float)
    predictions = targets + rng.normal(scale=noise, size=targets.shape)
    bootstrap = BootstrapConfig(num_resamples=4)
    return EvaluationResult(
        task="toy",
        fraction=fraction,
        draw=draw,
        num_train_tracks=round(100 * fraction),
        probe=probe_config("paper"),
        bootstrap_config=bootstrap,
        full_test=tagging_scores(targets, predictions),
        bootstrap=bootstrap_scores(targets, predictions, bootstrap),
        history=TrainingHistory(train_loss=[0.7, 0.5], valid_loss=[0.72, 0.6], learning_rate=[1e-3] * 2, best_epoch=1),
        predictions=ProbePredictions(tuple(f"track{i}" for i in range(40)), targets, predictions),
    )


def test_tracking_uri_defaults_to_local_sqlite_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking_uri() == "http://tracking:5000"


def test_logged_evaluations_round_trip_and_compare_writes_table_and_png_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = {}
    for pretext, noise in (("byol", 1.0), ("vicreg", 0.5)):
        runs = [(fraction, draw, 20) for fraction in (0.2, 1.0) for draw in (0, 1)] + [(1.0, 2, 10)]
        for fraction, draw, epochs in runs:
            result = _result(noise, fraction, draw)
            context = EvaluationContext(f"{pretext}.pt", pretext, "paper", {"pretrain_epochs": epochs})
            logged[log_evaluation(result, context)] = result

    records = load_evaluations()
    assert {record.run_id for record in records} == set(logged)
    record = records[0]
    result = logged[record.run_id]
    np.testing.assert_allclose(record.resamples["pr_auc_tagwise"], result.bootstrap.metric_values("pr_auc_tagwise"))
    assert record.metrics["roc_auc_tagwise_mean"] == pytest.approx(result.bootstrap.mean()["roc_auc_tagwise"])
    assert record.params["task"] == "toy" and record.params["probe_max_epochs"] == "25"

    out = tmp_path / "comparison"
    assert main(["--out", str(out), "--sweep", "pretrain_epochs"]) == 0
    printed = capsys.readouterr().out
    assert "| vicreg |" in printed and "comparison run" in printed
    for name in ("bootstrap.png", "limited_data.png", "sweep_pretrain_epochs.png"):
        assert f"wrote {out / name}" in printed
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 200 and image.std() > 0
    # Paired differences: only runs of the same draw share a test set (targets are drawn per draw).
    assert "Paired differences on the same test tracks" in printed and f"wrote {out / 'differences.png'}" in printed
    paired = (out / "differences.csv").read_text().splitlines()
    assert paired[0] == "task,metric,a,b,observed,mean,low,high,confidence,p_value,resamples"
    assert len(paired) == 1 + 3 * 2  # draws 0, 1, 2 of byol against vicreg x (ROC-AUC, PR-AUC)
    assert all(",vicreg (" in line and ",byol (" in line for line in paired[1:])  # less noise: vicreg first
    assert all(line.startswith("toy,") and line.split(",")[2].startswith("vicreg") for line in paired[1:])
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert csv_lines[0] == "pretext,task,metric,mean,std,num_values,published"
    assert len(csv_lines) == 1 + 2 * 2  # two pretexts x one task x (ROC-AUC, PR-AUC)
    assert all(line.endswith(",12,") for line in csv_lines[1:])  # 3 full-data runs x 4 resamples, no reference
    assert len(load_evaluations()) == len(logged)  # the comparison run is not read back as an evaluation


def _record(pretext: str, fraction: float, roc_mean: float, **params: str) -> EvaluationRecord:
    resamples = {name: np.array([roc_mean - 1, roc_mean + 1]) for name in ("roc_auc_tagwise", "pr_auc_tagwise")}
    return EvaluationRecord(
        run_id=f"{pretext}-{fraction}-{roc_mean}",
        params={"pretext": pretext, "task": "toy", "fraction": str(fraction), **params},
        metrics={"roc_auc_tagwise_mean": roc_mean, "pr_auc_tagwise_mean": roc_mean},
        resamples=resamples,
    )


def test_limited_data_curves_average_the_draws_per_fraction() -> None:
    records = [_record("byol", 0.1, 60.0), _record("byol", 0.1, 64.0), _record("byol", 1.0, 80.0)]
    curve = limited_data_panels(records, ["roc_auc_tagwise"])[("roc_auc_tagwise", "toy")]["byol"]
    np.testing.assert_allclose(curve.x, [0.1, 1.0])
    np.testing.assert_allclose(curve.mean, [62.0, 80.0])
    np.testing.assert_allclose(curve.std, [2.0, 0.0])
    assert limited_data_panels([_record("byol", 1.0, 80.0)], ["roc_auc_tagwise"]) == {}


def test_sweeps_and_filters_reject_what_they_cannot_use() -> None:
    records = [_record("byol", 1.0, 70.0, batch_size="256"), _record("byol", 1.0, 75.0, batch_size="large")]
    with pytest.raises(ValueError, match=r"run params are: .*'batch_size'"):
        sweep_panels(records, "embed_dim", ["roc_auc_tagwise"])
    with pytest.raises(ValueError, match=r"'large'.* not numbers"):
        sweep_panels(records, "batch_size", ["roc_auc_tagwise"])
    with pytest.raises(ValueError, match="PARAM=VALUE"):
        parse_params(["protocol"], "--where")


def _thesis_record(pretext: str, epochs: int, roc: float, **params: str) -> EvaluationRecord:
    """A full-data MTAT run of the thesis' FMA setting with a linear probe (what evaluate.py --param logs)."""
    setting = {"pretrain_data": "fma", "embed_dim": "512", "probe_hidden_dim": "None", "pretrain_epochs": str(epochs)}
    return _record(pretext, 1.0, roc, task="mtat", **(setting | params))


def test_published_figures_sit_next_to_runs_of_their_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [_thesis_record("contrastive", epochs, 80.0 + epochs / 1000) for epochs in (300, 1000, 8000)]
    records.append(_thesis_record("vicreg", 300, 85.0, probe_hidden_dim="512"))  # the 2-layer probe
    records.append(_record("byol", 1.0, 70.0))  # no thesis setting: no figure
    monkeypatch.setattr("musicssl.downstream.compare.load_evaluations", lambda experiment, uri: records)
    paths = run_comparison(CompareArgs(out=tmp_path, sweep=("pretrain_epochs",), log_run=False))
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| pretext"))
    assert header.count("published") == 2  # next to mtat ROC-AUC and PR-AUC
    vicreg = next(line for line in printed.splitlines() if line.startswith("| vicreg"))
    assert "88.19 (thesis A.1)" in vicreg and "33.55 (thesis A.1)" in vicreg  # Table A.1, 300 epochs, 2-layer
    assert "thesis Table A.1, row 300 epochs, column VICReg" in printed
    contrastive = next(line for line in printed.splitlines() if line.startswith("| contrastive"))
    assert contrastive.count("| - |") == 2  # pooled over epochs: no one setting, no published figure
    assert tmp_path / "sweep_pretrain_epochs.png" in paths
    curves = sweep_references(records, "pretrain_epochs", ["roc_auc_tagwise"], load_references())
    clmr = curves[("roc_auc_tagwise", "mtat")]["contrastive"]
    np.testing.assert_allclose(clmr["thesis A.1"].x, [300, 1000, 3000, 5000, 8000])
    np.testing.assert_allclose(clmr["thesis A.1"].mean, [87.52, 86.83, 86.69, 86.75, 86.22])
    assert list(clmr["thesis 4.1"].x) == [300.0] and list(clmr["thesis A.2"].x) == [1000.0]
    assert "byol" not in curves[("roc_auc_tagwise", "mtat")] and ("roc_auc_tagwise", "toy") not in curves


def _sweep_record(sweep: str, pretext: str, roc: float, hidden: str = "None", **params: str) -> EvaluationRecord:
    """A run that slurm/sweep.sh would have logged: the thesis' FMA setting at 1,000 epochs, tagged with its sweep."""
    return _thesis_record(pretext, 1000, roc, sweep=sweep, probe_hidden_dim=hidden, **params)


def test_compare_sweep_draws_a_sweeps_figure_and_table_with_the_thesis_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = (64, 256, 768, 1792)
    records = [
        _sweep_record("thesis-batch-size", "vicreg", 80.0 + index, hidden, batch_size=str(size))
        for index, size in enumerate(sizes)
        for hidden in ("None", "512")
    ]
    records.append(_thesis_record("vicreg", 1000, 10.0, batch_size="64"))  # not in the sweep: left out
    records += [
        _sweep_record("thesis-projectors", pretext, 70.0, hidden, projector=projector)
        for pretext in ("contrastive", "vicreg")
        for projector in ("clmr", "vicreg")
        for hidden in ("None", "512")
    ]
    monkeypatch.setattr("musicssl.downstream.compare.load_evaluations", lambda experiment, uri: records)
    sweeps = ("thesis-batch-size", "thesis-projectors")
    paths = run_comparison(CompareArgs(out=tmp_path, sweep=sweeps, log_run=False))
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert (
        next(line for line in lines if line.startswith("| task | pretext | batch_size | ROC-AUC")).count("published")
        == 2
    )
    linear_64 = next(line for line in lines if line.startswith("| mtat | vicreg | 64 |"))
    assert "80.00 ± 1.00 | 84.35 (thesis B.1)" in linear_64 and "27.46 (thesis B.1)" in linear_64
    two_layer_64 = next(line for line in lines if line.startswith("| mtat | vicreg 2-layer | 64 |"))
    assert "85.30 (thesis B.1)" in two_layer_64  # the two-layer probe: the figures in parentheses
    assert "thesis Table B.1, row 1792" in printed
    rows = (tmp_path / "sweep_thesis-batch-size.csv").read_text().splitlines()
    assert rows[0] == "task,pretext,batch_size,metric,mean,std,published" and len(rows) == 1 + 4 * 2 * 2
    image = matplotlib.image.imread(tmp_path / "sweep_thesis-batch-size.png")
    assert image.ndim == 3 and image.std() > 0
    curves = sweep_references(records[:8], "batch_size", ["roc_auc_tagwise"], load_references())
    np.testing.assert_allclose(
        curves[("roc_auc_tagwise", "mtat")]["vicreg"]["thesis B.1"].x, [64, 128, *range(256, 1793, 256)]
    )
    # Table B.2 is a table: no figure; the VICReg backbone with CLMR's projector has no two-layer figure.
    assert tmp_path / "sweep_thesis-projectors.md" in paths and tmp_path / "sweep_thesis-projectors.png" not in paths
    swapped = next(line for line in lines if line.startswith("| mtat | contrastive | vicreg |"))
    assert "86.81 (thesis B.2)" in swapped and "31.94 (thesis B.2)" in swapped
    assert next(line for line in lines if line.startswith("| mtat | vicreg 2-layer | clmr |")).endswith("| - |")


def test_compare_sweep_without_tracked_runs_says_how_to_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "musicssl.downstream.compare.load_evaluations", lambda experiment, uri: [_record("byol", 1.0, 70.0)]
    )
    with pytest.raises(ValueError, match=r"sbatch --array=0-9 slurm/sweep.sh thesis-representation"):
        run_comparison(CompareArgs(out=tmp_path, sweep=("thesis-representation",), log_run=False))
