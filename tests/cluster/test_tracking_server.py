"""Tracking on a cluster: a real `mlflow server` (sqlite backend, served artifacts) on a loopback port the test
picks, a 2-rank training and 4 concurrent array-style trainings logging to it over HTTP, and the server dying
mid-run. Every param, metric and artifact arrives once (only rank 0 logs); a dead server costs the run nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path

import pytest

from musicssl.trainer.checkpoints import checkpoint_name
from musicssl.trainer.cli import parse_config
from musicssl.trainer.tracking import OUTBOX_NAME, flatten
from tests.support import launching, tiny_run
from tests.support.launching import TINY_RUN, free_port, launch_command, launcher_env
from tests.support.paths import REPO

shards = tiny_run.shards  # the tiny runs' shard set fixture
STEPS = launching.STEPS
LOGGED_RUN = [flag for flag in TINY_RUN if flag != "--no-mlflow"]


def wait_until(ready: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {seconds} s")
        time.sleep(0.1)


def answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


SHARED_MEMORY = Path("/dev/shm")


def huey_stores() -> set[Path]:
    """Folders of /dev/shm holding an `mlflow server`'s job store (it makes one at start and never removes it)."""
    return {store.parent for store in SHARED_MEMORY.glob("*/*.mlflow-huey-store")} if SHARED_MEMORY.is_dir() else set()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mlflow server` with a sqlite backend and served artifacts on a free loopback port; stopped afterwards,
    leaving nothing behind (its job execution, which the tests do not use, is off: its store would stay in /dev/shm)."""
    stores_before = huey_stores()
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
               "--artifacts-destination", str(tmp_path / "artifacts")]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(uri) or server.poll() is not None, 120, "the mlflow server")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        yield uri, server
    finally:
        stop(server)
        log.close()
    assert huey_stores() <= stores_before, "the mlflow server left its job store in /dev/shm"


def stop(server: subprocess.Popen) -> None:
    """Kill the server and its workers (its own process group)."""
    with suppress(ProcessLookupError):  # the workers may outlive the server's own process
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def training(launcher: str, output: Path, data: str, uri: str, name: str, **hooks: str) -> subprocess.Popen:
    """A tiny training logging to `uri` under the experiment `cluster`, started, not awaited."""
    flags = [*LOGGED_RUN, "--study", "cluster", "--run-name", name, "--data", data, "--output-dir", str(output)]
    env = launcher_env(launcher, 2, output) | {"MLFLOW_TRACKING_URI": uri} | hooks
    command = launch_command(launcher, 2, restarts=0) + flags
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    return out


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_two_ranks_and_four_array_runs_log_everything_once_over_http(
    tmp_path: Path, shards: str, mlflow_server: tuple[str, subprocess.Popen]
) -> None:
    import mlflow

    uri, _ = mlflow_server
    names = ["ranks", *(f"array-{task}" for task in range(4))]
    runs = [training("torchrun", tmp_path / "ranks", shards, uri, "ranks")]
    runs += [training("python", tmp_path / name, shards, uri, name) for name in names[1:]]  # at once
    for process in runs:
        finished(process)

    config, _ = parse_config([*LOGGED_RUN, "--study", "cluster", "--data", shards])
    expected_params = set(flatten(asdict(config)))
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("cluster")
    found = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in found) == sorted(names)  # one run per training, not per rank
    for run in found:
        run_id, name = run.info.run_id, run.info.run_name
        assert run.info.status == "FINISHED", name
        assert set(run.data.params) == expected_params, name
        assert [metric.step for metric in client.get_metric_history(run_id, "loss")] == list(range(1, STEPS + 1))
        artifacts = sorted(entry.path for entry in client.list_artifacts(run_id))
        assert artifacts == ["backbone.safetensors", "config.json"], name
        assert not (tmp_path / name / OUTBOX_NAME).exists()


@pytest.mark.timeout(600)
def test_a_server_that_dies_mid_run_costs_the_training_nothing_and_keeps_what_it_missed(
    tmp_path: Path, shards: str, mlflow_server: tuple[str, subprocess.Popen]
) -> None:
    """The training pauses after its step-3 checkpoint while the test kills the server; it then trains to the end,
    warns once, checkpoints and exports, and its outbox holds every record the server missed, ending with the run's
    end."""
    uri, server = mlflow_server
    output, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    process = training("python", output, shards, uri, "dies", MUSICSSL_TEST_PAUSE=f"{checkpoint_name(3)}:{gate}")
    wait_until(lambda: (gate / "paused-0").exists() or process.poll() is not None, 300, "the pause at step 3")
    stop(server)
    (gate / "go").touch()
    out = finished(process)
    assert out.count("did not take a request") == 1
    assert "MLflow records of run" in out and "could not be sent" in out
    assert (output / "backbone.safetensors").is_file() and (output / "checkpoints").is_dir()
    kept = (output / OUTBOX_NAME).read_text().splitlines()
    assert [line for line in kept if '"metrics"' in line] and '"end": "FINISHED"' in kept[-1]
