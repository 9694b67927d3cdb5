"""MLflow tracking faults (trainer.tracking): a server that refuses or never answers fails the start in seconds with
the fix; a server lost mid-run costs a warning and a count, never the run, and no metric is lost."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicssl.data_prep.entry import UserError
from musicssl.trainer.tracking import RunTracker


def refusing_uri() -> str:
    """A loopback port the OS picked, bound then closed: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_uri() -> Iterator[str]:
    """A loopback listener on an OS-chosen port: the kernel completes every connection, nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def start(tracker: RunTracker) -> None:
    tracker.start(experiment="faults", run_name="run", params={"optim": {"base_lr": 0.1}}, run_id=None)


@pytest.mark.timeout(120)
def test_a_server_that_refuses_fails_the_start_naming_the_uri_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = refusing_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(UserError, match=rf"{uri} does not answer \(connection refused\).*unset MLFLOW_TRACKING_URI"):
        start(RunTracker(enabled=True))


@pytest.mark.timeout(120)
def test_a_server_that_never_answers_fails_the_start(silent_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", silent_uri)
    with pytest.raises(UserError, match=rf"{silent_uri} does not answer \(no answer within \d+ s\): start it"):
        start(RunTracker(enabled=True))


def tracking_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "musicssl.trainer.tracking"]


def outbox_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_server_lost_mid_run_warns_counts_and_sends_the_kept_metrics_when_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    outbox = tmp_path / "run" / "mlflow_outbox.jsonl"
    tracker = RunTracker(enabled=True, outbox=outbox, retry_after_s=0.0)
    start(tracker)
    run_id = tracker.run_id
    tracker.log_metrics({"loss": 1.0}, step=1)

    client = tracker._client
    working = client.log_batch

    def lost(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(client, "log_batch", lost)
    with caplog.at_level(logging.WARNING, logger="musicssl.trainer.tracking"):
        tracker.log_metrics({"loss": 2.0}, step=2)
        tracker.log_metrics({"loss": 3.0}, step=3)
        warnings = tracking_warnings(caplog)
        assert len(warnings) == 1 and "did not take a request (connection refused); training goes on" in warnings[0]
        assert tracker.failures == 2
        assert [line["step"] for line in outbox_lines(outbox)] == [2, 3]  # kept on disk as they failed

        monkeypatch.setattr(client, "log_batch", working)
        tracker.log_metrics({"loss": 4.0}, step=4)
        assert "answers again: 3 kept records sent" in tracking_warnings(caplog)[-1]
    tracker.end()

    store = mlflow.MlflowClient(uri)
    history = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    run = store.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["tracking.failed_requests"] == "2"


def test_metrics_of_a_server_that_never_returns_are_all_in_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    outbox = tmp_path / "run" / "mlflow_outbox.jsonl"
    tracker = RunTracker(enabled=True, outbox=outbox, retry_after_s=3600.0)
    start(tracker)
    run_id = tracker.run_id

    def lost(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    for method in ("log_batch", "log_artifact", "set_terminated"):
        monkeypatch.setattr(tracker._client, method, lost)
    for step in range(1, 4):
        tracker.log_metrics({"loss": float(step)}, step=step)  # one failed request, then kept without asking
    tracker.log_artifact(tmp_path / "backbone.safetensors")
    tracker.end()
    assert tracker.failures == 2  # the first request and the last try at the end
    kept = outbox_lines(outbox)
    assert {line["run_id"] for line in kept} == {run_id}
    assert [line.get("step") for line in kept[:3]] == [1, 2, 3]
    assert kept[3]["artifact"].endswith("backbone.safetensors")
    assert kept[-2]["tags"] == {"tracking.failed_requests": "1"} and kept[-1]["end"] == "FINISHED"


def test_what_an_earlier_process_kept_is_sent_by_the_resumed_run_and_the_outbox_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox holds exactly the records not sent; a later process of the run sends them (not the earlier
    process's end: the run goes on) and removes the file."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    outbox = tmp_path / "run" / "mlflow_outbox.jsonl"
    first = RunTracker(enabled=True, outbox=outbox, retry_after_s=3600.0)
    start(first)
    run_id = first.run_id
    assert run_id is not None
    first.log_metrics({"loss": 1.0}, step=1)  # sent

    def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(first._client, "log_batch", refused)
        for step in (2, 3):
            first.log_metrics({"loss": float(step)}, step=step)
        first.abort(RuntimeError("killed"))
    assert [line.get("step") for line in outbox_lines(outbox)] == [2, 3, None, None]  # + failure count, end

    resumed = RunTracker(enabled=True, outbox=outbox)
    resumed.start(experiment="faults", run_name="run", params={}, run_id=run_id)
    assert not outbox.exists() and not resumed.pending
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    assert client.get_run(run_id).info.status == "RUNNING"  # the earlier process's end was not replayed
    resumed.end()
    assert client.get_run(run_id).info.status == "FINISHED"


def test_an_experiment_created_by_another_process_meanwhile_is_joined(tmp_path: Path) -> None:
    """Array tasks starting together race to create the experiment: the loser joins the winner's."""
    from mlflow import MlflowClient
    from mlflow.entities import Experiment

    from musicssl.trainer.tracking import get_or_create_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    other_process = MlflowClient(uri)

    class LateClient(MlflowClient):
        """Sees no experiment, then another process creates it before this one does."""

        def get_experiment_by_name(self, name: str) -> Experiment | None:
            found = super().get_experiment_by_name(name)
            if found is None and not other_process.get_experiment_by_name(name):
                other_process.create_experiment(name)
            return found

    joined = get_or_create_experiment(LateClient(uri), "cluster")
    assert joined == other_process.get_experiment_by_name("cluster").experiment_id
