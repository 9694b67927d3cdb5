"""MLflow for pre-training runs: one experiment per study, one run per training, resumed runs continue."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_PARAM_LENGTH = 500


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a tracking server on clusters), else an embedded sqlite file here."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config dict -> {"optim.base_lr": "0.0001", ...} as MLflow params."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def git_commit() -> str:
    """The commit of the code that runs, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class RunTracker:
    """Rank-0 MLflow run; on other ranks (or with tracking off) every call does nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.run_id: str | None = None

    def start(self, experiment: str, run_name: str, params: Mapping[str, Any], run_id: str | None) -> None:
        """Open a new run, or continue `run_id` when resuming."""
        if not self.enabled:
            return
        import mlflow

        mlflow.set_tracking_uri(tracking_uri())
        mlflow.set_experiment(experiment)
        if run_id is not None:
            mlflow.start_run(run_id=run_id)
        else:
            mlflow.start_run(run_name=run_name)
            mlflow.log_params(flatten(params))
            mlflow.set_tags({"git_commit": git_commit(), "host": socket.gethostname()})
        self.run_id = mlflow.active_run().info.run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_metrics(dict(metrics), step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.enabled:
            import mlflow

            mlflow.set_tags(dict(tags))

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=folder)

    def end(self, status: str = "FINISHED") -> None:
        if self.enabled:
            import mlflow

            mlflow.end_run(status=status)
