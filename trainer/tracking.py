"""MLflow for pre-training runs: one experiment per study, one run per training, resumed runs continue.

A tracking server is asked one short question before anything runs, so a dead or silent one ends the command in
seconds with the fix instead of minutes of retries. Once a training runs, a lost server never stops it: each
request is bounded, a failure costs one warning per outage and a count, and what could not be sent waits in
memory and in an outbox file in the run folder (JSON lines, exactly the records not yet sent) until the server
answers again; a later process of the same run (a resume) sends what an earlier one kept.
A run that ends in an exception is recorded FAILED (KILLED for an interrupt), never FINISHED.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.entry import UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_PARAM_LENGTH = 500
REMOTE_SCHEMES = ("http", "https")
CHECK_TIMEOUT_S = 5  # the start check: one request, no retry
REQUEST_TIMEOUT_S = 10  # each request of a running training (MLflow's default is 120 s, retried 7 times)
REQUEST_RETRIES = 1
RETRY_AFTER_S = 30.0  # first wait before a lost server is asked again; doubles up to MAX_RETRY_AFTER_S
MAX_RETRY_AFTER_S = 600.0
OUTBOX_NAME = "mlflow_outbox.jsonl"

logger = logging.getLogger(__name__)
Record = dict[str, Any]


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a tracking server on clusters), else an embedded sqlite file here."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


@contextmanager
def request_limits(timeout_s: int, retries: int) -> Iterator[None]:
    """MLflow's HTTP timeout and retry count for the requests inside, unless the environment already sets them."""
    limits = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries)}
    added = [name for name in limits if name not in os.environ]
    os.environ.update({name: limits[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _reason(error: BaseException) -> str:
    """A few words on why a request failed, instead of MLflow's multi-line message."""
    text = str(error)
    if "refused" in text.lower():
        return "connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer within {CHECK_TIMEOUT_S} s"
    return text.splitlines()[0][:200] if text else type(error).__name__


def check_tracking_server(uri: str) -> None:
    """A tracking server (http/https) must answer one request within CHECK_TIMEOUT_S; local stores pass."""
    if urlparse(uri).scheme not in REMOTE_SCHEMES:
        return
    import mlflow

    try:
        with request_limits(CHECK_TIMEOUT_S, 0):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        raise UserError(
            f"the MLflow tracking server at {uri} does not answer ({_reason(error)}): start it, or unset "
            f"MLFLOW_TRACKING_URI to track in {DEFAULT_TRACKING_URI} in this folder"
        ) from error


def ended_status(error: BaseException) -> str:
    """The MLflow status of a run stopped by `error`: KILLED for an interrupt or exit, FAILED otherwise."""
    return "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED"


@contextmanager
def ending_run(client: MlflowClient, run_id: str) -> Iterator[None]:
    """End the run FINISHED when the block succeeds, FAILED or KILLED when it raises (the error goes on)."""
    try:
        yield
    except BaseException as error:
        with suppress(Exception):  # the server may be what failed: the original error matters more
            client.set_terminated(run_id, ended_status(error))
        raise
    client.set_terminated(run_id)


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """Id of the named experiment, created if missing; joined if another process creates it meanwhile."""
    from mlflow.exceptions import MlflowException  # mlflow is slow to import: only where it is used

    existing = client.get_experiment_by_name(name)
    if existing:
        return existing.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException as error:  # array tasks starting together race to create it
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


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
    """Rank-0 MLflow run; on other ranks (or with tracking off) every call does nothing.

    Metrics, tags, artifacts and the run's end are records sent in order; a record the server does not take
    stays pending (and in `outbox`, which holds exactly the pending records), and the server is asked again after
    `retry_after_s`, doubling. `start` sends first what an earlier process left in the outbox.
    """

    def __init__(self, enabled: bool, outbox: Path | None = None, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.enabled = enabled
        self.outbox = outbox
        self.run_id: str | None = None
        self.failures = 0  # requests the server did not take
        self.pending: deque[Record] = deque()
        self.retry_after_s = retry_after_s
        self._wait_s = retry_after_s
        self._next_try = 0.0
        self._online = True
        self._client: MlflowClient | None = None
        self._uri = ""
        self._in_outbox = 0  # pending records (a prefix) already written to the outbox
        self._outbox_stale = False  # the outbox holds records no longer pending: rewrite it

    def start(self, experiment: str, run_name: str, params: Mapping[str, Any], run_id: str | None) -> None:
        """Open a new run, or continue `run_id` when resuming; a tracking server that does not answer is an error."""
        if not self.enabled:
            return
        import mlflow
        from mlflow.entities import Param

        self._uri = tracking_uri()
        check_tracking_server(self._uri)
        client = self._client = mlflow.MlflowClient(self._uri)
        with request_limits(REQUEST_TIMEOUT_S, REQUEST_RETRIES):
            if run_id is not None:
                client.update_run(run_id, status="RUNNING")
            else:
                experiment_id = get_or_create_experiment(client, experiment)
                tags = {"git_commit": git_commit(), "host": socket.gethostname()}
                run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
                client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(params).items()])
        self.run_id = run_id
        self._resend_kept(run_id)

    def _resend_kept(self, run_id: str) -> None:
        """Queue and send what an earlier process left in the outbox, except this run's end (it runs again)."""
        if self.outbox is None or not self.outbox.is_file():
            return
        kept = [json.loads(line) for line in self.outbox.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.pending.extend(record for record in kept if not ("end" in record and record["run_id"] == run_id))
        self._in_outbox, self._outbox_stale = 0, True
        self._flush()
        self._save_outbox()
        if not self.pending:
            logger.info("sent the %d MLflow records an earlier process kept in %s", len(kept), self.outbox)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        values = {name: float(value) for name, value in metrics.items()}
        self._submit({"metrics": values, "step": step, "timestamp": int(time.time() * 1000)})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._submit({"tags": {name: str(value) for name, value in tags.items()}})

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self._submit({"artifact": str(path), "folder": folder})

    def end(self, status: str = "FINISHED") -> None:
        """Close the run with `status` after one last try to send what is pending; later calls do nothing."""
        if not self.enabled or self.run_id is None:
            return
        self._next_try = 0.0  # one last try
        if self.failures:
            self._submit({"tags": {"tracking.failed_requests": str(self.failures)}})
        self._submit({"end": status})
        if self.pending:
            logger.warning(
                "%d MLflow records of run %s could not be sent to %s: they are kept in %s",
                len(self.pending),
                self.run_id,
                self._uri,
                self.outbox,
            )
        self.run_id = None

    def abort(self, error: BaseException) -> None:
        """End the run as stopped by `error`: FAILED, or KILLED for an interrupt."""
        self.end(ended_status(error))

    def _submit(self, record: Record) -> None:
        """Queue a record, send what the server takes, keep the rest in the outbox."""
        if not self.enabled or self.run_id is None:
            return
        self.pending.append({"run_id": self.run_id, **record})
        if time.monotonic() >= self._next_try:
            self._flush()
        self._save_outbox()

    def _flush(self) -> None:
        """Send pending records in order until one fails."""
        sent = 0
        while self.pending:
            try:
                with request_limits(REQUEST_TIMEOUT_S, REQUEST_RETRIES):
                    self._send(self.pending[0])
            except Exception as error:
                self._lost(error)
                return
            self.pending.popleft()
            sent += 1
            if self._in_outbox:
                self._in_outbox -= 1
                self._outbox_stale = True
        if not self._online:
            logger.warning("the MLflow tracking server at %s answers again: %d kept records sent", self._uri, sent)
        self._online = True
        self._wait_s = self.retry_after_s

    def _send(self, record: Record) -> None:
        from mlflow.entities import Metric, RunTag

        assert self._client is not None
        run_id = record["run_id"]
        if "metrics" in record:
            metrics = [Metric(k, v, record["timestamp"], record["step"]) for k, v in record["metrics"].items()]
            self._client.log_batch(run_id, metrics=metrics)
        elif "tags" in record:
            self._client.log_batch(run_id, tags=[RunTag(k, v) for k, v in record["tags"].items()])
        elif "artifact" in record:
            self._client.log_artifact(run_id, record["artifact"], record["folder"])
        else:
            self._client.set_terminated(run_id, record["end"])

    def _lost(self, error: Exception) -> None:
        """Count the failure, warn once per outage, and wait longer before asking again."""
        self.failures += 1
        if self._online:
            logger.warning(
                "the MLflow tracking server at %s did not take a request (%s); training goes on, what it cannot "
                "send is kept in %s and sent when it answers",
                self._uri,
                _reason(error),
                self.outbox,
            )
        self._online = False
        self._next_try = time.monotonic() + self._wait_s
        self._wait_s = min(self._wait_s * 2, MAX_RETRY_AFTER_S)

    def _save_outbox(self) -> None:
        """Make the outbox file hold exactly the pending records: appended while only new ones are added,
        rewritten (atomically) once some were sent, removed when none is pending."""
        if self.outbox is None or not (self.pending or self._in_outbox or self._outbox_stale):
            return
        if not self.pending:
            self.outbox.unlink(missing_ok=True)
        elif self._outbox_stale:
            write_atomic(self.outbox, "".join(json.dumps(record) + "\n" for record in self.pending).encode())
        else:
            self.outbox.parent.mkdir(parents=True, exist_ok=True)
            with self.outbox.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in list(self.pending)[self._in_outbox :])
        self._in_outbox, self._outbox_stale = len(self.pending), False
