"""MLflow records of downstream evaluations: log one `EvaluationResult` as a run, and read runs back.

A run holds params (checkpoint, pretext, task, protocol, fraction, draw, probe and bootstrap settings, plus
any caller-given ones such as pretrain_epochs or embed_dim for sweeps), metrics (`<metric>_mean`,
`<metric>_std` over the bootstrap, `<metric>_full` on the whole test set, skipped counts, the probe's loss
curves), the per-resample values as the `bootstrap.csv` artifact and the probe's test predictions (track ids,
targets, scores, and the per-track precision@k of a shared tag) as `test_predictions.npz`, which paired
comparisons resample; runs logged before precision@k existed read back with NaN values and no per-track values.
Runs are tagged `musicssl.kind` = `evaluation` so that comparison runs in the same experiment are not mistaken
for them.
The tracking URI is the trainer's (`trainer.tracking.tracking_uri`): MLFLOW_TRACKING_URI when set, else
`sqlite:///mlflow.db` in the working directory, so evaluations land next to the pre-training runs.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musicssl.downstream.evaluation import EvaluationResult
from musicssl.downstream.metrics import METRIC_NAMES, PRECISION_K
from musicssl.downstream.paired import ProbePredictions
from musicssl.trainer.tracking import ending_run, get_or_create_experiment, tracking_uri

DEFAULT_EXPERIMENT = "downstream"
KIND_TAG = "musicssl.kind"
BOOTSTRAP_ARTIFACT = "bootstrap.csv"
PREDICTIONS_ARTIFACT = "test_predictions.npz"
RANDOM_PRETEXT = "random"  # the pretext logged for a backbone's random weights (evaluate.py --random-init)
ParamValue = str | int | float | bool | None


@dataclass(frozen=True)
class EvaluationContext:
    """What was evaluated: the checkpoint, its pretext, the probe protocol, and extra params for sweeps."""

    checkpoint: str
    pretext: str
    protocol: str
    extra_params: dict[str, ParamValue] = field(default_factory=dict)


def parse_params(assignments: Iterable[str], flag: str) -> dict[str, str]:
    """Turn the PARAM=VALUE strings given to ``flag`` into a dict, rejecting malformed ones."""
    parsed = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise ValueError(f"{flag} expects PARAM=VALUE, got {assignment!r}")
        parsed[name] = value
    return parsed


def evaluation_params(result: EvaluationResult, context: EvaluationContext) -> dict[str, ParamValue]:
    """Every parameter a run is logged with; extra params may not shadow the built-in ones."""
    params: dict[str, ParamValue] = {
        "checkpoint": context.checkpoint,
        "pretext": context.pretext,
        "protocol": context.protocol,
        "task": result.task,
        "fraction": result.fraction,
        "draw": result.draw,
        "num_train_tracks": result.num_train_tracks,
        "precision_k": PRECISION_K,
        **{f"probe_{name}": value for name, value in asdict(result.probe).items()},
        **{f"bootstrap_{name}": value for name, value in asdict(result.bootstrap_config).items()},
    }
    clashes = sorted(set(params) & set(context.extra_params))
    if clashes:
        raise ValueError(f"extra params {clashes} clash with built-in evaluation params; rename them")
    return {**params, **context.extra_params}


def evaluation_metrics(result: EvaluationResult) -> dict[str, float]:
    """Summary metrics of a run: bootstrap mean/std, full-test value, skipped counts, best probe epoch."""
    means, stds = result.bootstrap.mean(), result.bootstrap.std()
    metrics = {f"{name}_mean": means[name] for name in METRIC_NAMES}
    metrics |= {f"{name}_std": stds[name] for name in METRIC_NAMES}
    metrics |= {f"{name}_full": value for name, value in result.full_test.values().items()}
    metrics |= {
        "skipped_tags": float(result.full_test.skipped_tags),
        "skipped_clips": float(result.full_test.skipped_clips),
        "best_epoch": float(result.history.best_epoch),
        "stopped_early": float(result.history.stopped_early),
    }
    return metrics


def bootstrap_csv(result: EvaluationResult) -> str:
    """The per-resample values as CSV text: one row per resample, one column per metric."""
    columns = ["resample", *METRIC_NAMES, "skipped_tags", "skipped_clips"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for index, scores in enumerate(result.bootstrap.resamples):
        writer.writerow({"resample": index, **asdict(scores)})
    return buffer.getvalue()


def log_evaluation(
    result: EvaluationResult,
    context: EvaluationContext,
    experiment: str = DEFAULT_EXPERIMENT,
    uri: str | None = None,
) -> str:
    """Log one evaluation as an MLflow run in `experiment` and return its run id."""
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(uri or tracking_uri())
    experiment_id = get_or_create_experiment(client, experiment)
    name = f"{context.pretext}-{result.task}-{result.fraction:g}-{result.draw}"
    run = client.create_run(experiment_id, run_name=name, tags={KIND_TAG: "evaluation"})
    run_id = run.info.run_id
    params = evaluation_params(result, context)
    loss_curves = {
        "probe_train_loss": result.history.train_loss,
        "probe_valid_loss": result.history.valid_loss,
    }
    curves = [Metric(key, value, 0, epoch) for key, values in loss_curves.items() for epoch, value in enumerate(values)]
    criterion = result.probe.select_on
    curves += [
        Metric(f"lr_search/{rate:g}/valid_{criterion}", score, 0, 0)
        for rate, score in result.learning_rate_scores.items()
    ]
    summary = [Metric(key, value, 0, 0) for key, value in evaluation_metrics(result).items()]
    with ending_run(client, run_id), tempfile.TemporaryDirectory() as folder:
        client.log_batch(
            run_id,
            metrics=summary + curves,
            params=[Param(key, str(value)) for key, value in params.items()],
        )
        client.log_text(run_id, bootstrap_csv(result), BOOTSTRAP_ARTIFACT)
        path = Path(folder) / PREDICTIONS_ARTIFACT
        write_predictions(path, result.predictions)
        client.log_artifact(run_id, str(path))
    return run_id


def write_predictions(path: Path, predictions: ProbePredictions) -> None:
    """Save test predictions as an .npz of track_ids, targets, scores and (when known) neighbour_precision."""
    ids = np.array(predictions.track_ids, dtype=str)
    precision = (
        {} if predictions.neighbour_precision is None else {"neighbour_precision": predictions.neighbour_precision}
    )
    np.savez(path, track_ids=ids, targets=predictions.targets, scores=predictions.scores, **precision)


def read_predictions(path: Path) -> ProbePredictions:
    """Test predictions saved by `write_predictions`."""
    with np.load(path, allow_pickle=False) as arrays:
        ids = tuple(str(track_id) for track_id in arrays["track_ids"])
        return ProbePredictions(ids, arrays["targets"], arrays["scores"], arrays.get("neighbour_precision"))


@dataclass(frozen=True)
class EvaluationRecord:
    """An evaluation run read back from MLflow: params as strings, summary metrics, per-resample values, and
    the test predictions (None for runs logged before they were stored)."""

    run_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    resamples: dict[str, np.ndarray]
    predictions: ProbePredictions | None = None


def read_resamples(path: Path) -> dict[str, np.ndarray]:
    """Columns of a bootstrap.csv artifact as float arrays, by metric name (NaN for a metric it predates)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: np.array([float(row.get(name, "nan")) for row in rows]) for name in METRIC_NAMES}


@contextmanager
def _no_artifact_progress_bars() -> Iterator[None]:
    """Silence MLflow's per-download progress bar (one per run) while reading many small artifacts."""
    previous = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = previous


def load_evaluations(experiment: str = DEFAULT_EXPERIMENT, uri: str | None = None) -> list[EvaluationRecord]:
    """All evaluation runs of an experiment with their bootstrap values; an unknown experiment is an error."""
    import mlflow

    resolved_uri = uri or tracking_uri()
    client = mlflow.MlflowClient(resolved_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"no MLflow experiment {experiment!r} at {resolved_uri}: check --experiment and the URI")
    runs = []
    page_token = None
    while True:
        page = client.search_runs(
            [found.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'evaluation'", page_token=page_token
        )
        runs.extend(page)
        page_token = page.token
        if not page_token:
            break
    records = []
    with tempfile.TemporaryDirectory() as download_dir, _no_artifact_progress_bars():
        for run in runs:
            run_id = run.info.run_id
            local = client.download_artifacts(run_id, BOOTSTRAP_ARTIFACT, download_dir)
            stored = {artifact.path for artifact in client.list_artifacts(run_id)}
            predictions = None
            if PREDICTIONS_ARTIFACT in stored:
                run_dir = Path(download_dir) / run_id
                run_dir.mkdir()
                predictions = read_predictions(Path(client.download_artifacts(run_id, PREDICTIONS_ARTIFACT, run_dir)))
            records.append(
                EvaluationRecord(
                    run_id=run_id,
                    params=dict(run.data.params),
                    metrics=dict(run.data.metrics),
                    resamples=read_resamples(Path(local)),
                    predictions=predictions,
                )
            )
    return records
