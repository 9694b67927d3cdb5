"""The sbatch scripts' logic on CPU: stand-in srun / scontrol / accelerate on PATH, a fake training worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musicssl.sharding.format import ShardIndex
from tests.support.audio_factory import write_chord
from tests.support.paths import REPO

WORKER = """
import os, signal, sys, time, pathlib
log = pathlib.Path(os.environ["STUB_LOG"])
got = []
previous = signal.signal(signal.SIGUSR2, lambda *args: got.append(1))
(log / "worker.started").touch()
deadline = time.time() + 300  # bounds a hang only: the test signals as soon as it sees worker.started
while not got and time.time() < deadline and not os.environ.get("STUB_FINISH"):
    time.sleep(0.05)
(log / "worker.exit").write_text("signal" if got else "done")
# like train.py (trainer/preemption.py): the handler found at start goes back before exiting; under
# node_launch.sh that is "ignore", so a second USR2 (srun signals the whole step) cannot kill the exit
signal.signal(signal.SIGUSR2, previous)
if got and not os.environ.get("STUB_FINISH_ON_SIGNAL"):  # like train.py: checkpointed at step 7; exit 75,
    # or 0 with the step in the stop file of slurm/lib.sh
    stop_file = os.environ.get("MUSICSSL_STOP_FILE")
    if stop_file:
        pathlib.Path(stop_file).write_text("7\\n")
    sys.exit(0 if stop_file else 75)
sys.exit(int(os.environ.get("STUB_RC", "0")))
"""

STUBS = {
    # A launcher that, like accelerate launch, does not handle SIGUSR2 itself (signalling it would kill it) and
    # reports a worker's non-zero exit with a traceback (accelerate then exits 1; the stub keeps the worker's code).
    "accelerate": '#!/usr/bin/env bash\necho "$@" >> "$STUB_LOG/accelerate.args"\n'
    '"$STUB_PYTHON" "$STUB_LOG/worker.py" &\nwait $!\nrc=$?\nif [[ $rc != 0 ]]; then echo "Traceback (most recent '
    'call last):"; echo "subprocess.CalledProcessError: returned non-zero exit status $rc."; fi\nexit $rc\n',
    "scontrol": '#!/usr/bin/env bash\nif [[ "$1" == show ]]; then printf "node-a\\nnode-b\\n"; '
    'else echo "$@" >> "$STUB_LOG/scontrol.args"; fi\n',
    # Like srun: start the task and pass SIGUSR2 on to every process of the step, as slurmstepd does (the task in
    # a process group of its own: `set -m`), not only to the task.
    "srun": '#!/usr/bin/env bash\nset -m\necho "$@" >> "$STUB_LOG/srun.args"\nshift\n"$@" &\npid=$!\n'
    "trap 'kill -USR2 -- -$pid' USR2\nwhile kill -0 $pid 2>/dev/null; do wait $pid; done\nwait $pid\n",
}


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A submit dir with the repo's scripts, stand-in Slurm commands and the environment of a job."""
    submit = tmp_path / "submit"
    submit.mkdir()
    for name in ("slurm", "configs", "train.py"):
        (submit / name).symlink_to(REPO / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    log.mkdir()
    (log / "worker.py").write_text(WORKER)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_PYTHON": sys.executable,
        "SLURM_JOB_ID": "4242",
        "SLURM_SUBMIT_DIR": str(submit),
        "SLURM_GPUS_ON_NODE": "2",
        "SLURM_JOB_NODELIST": "node-[a-b]",
        "SLURM_NNODES": "2",
        "SLURM_NODEID": "0",
    }
    return log, env


def start(script: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", f"slurm/{script}", *args],
        cwd=env["SLURM_SUBMIT_DIR"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)


@pytest.mark.parametrize("script", ["pretrain.sh", "pretrain_multinode.sh"])
def test_preemption_signal_reaches_workers_and_requeues(cluster: tuple[Path, dict[str, str]], script: str) -> None:
    log, env = cluster
    job = start(script, env, "vicreg", "--preset", "paper")
    wait_for(log / "worker.started")
    job.send_signal(signal.SIGUSR2)
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    assert (log / "worker.exit").read_text() == "signal", output
    assert (log / "scontrol.args").read_text().split() == ["requeue", "4242"]
    assert "run checkpointed at step 7 (exit 75); requeueing job 4242" in output
    assert "Traceback" not in output and "exit 1" not in output
    assert not list((Path(env["SLURM_SUBMIT_DIR"]) / "logs").glob(".stopped-*"))  # the stop file is cleaned up
    launched = (log / "accelerate.args").read_text()
    assert "train.py --pretext vicreg --preset paper" in launched


def test_multinode_passes_machine_rank_and_main_address(cluster: tuple[Path, dict[str, str]]) -> None:
    log, env = cluster
    env = {**env, "STUB_FINISH": "1", "SLURM_NODEID": "1"}
    job = start("pretrain_multinode.sh", env, "byol")
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    args = (log / "accelerate.args").read_text().split()
    assert args[args.index("--machine_rank") + 1] == "1"
    assert args[args.index("--num_processes") + 1] == "4"
    assert args[args.index("--main_process_ip") + 1] == "node-a"
    assert "--kill-on-bad-exit=1" in (log / "srun.args").read_text()


def test_finished_or_failed_job_is_not_requeued(cluster: tuple[Path, dict[str, str]]) -> None:
    log, env = cluster
    job = start("pretrain.sh", {**env, "STUB_FINISH": "1", "STUB_RC": "3"}, "contrastive")
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 3, output
    assert (log / "worker.exit").read_text() == "done"
    assert "checkpointed" not in output
    assert not (log / "scontrol.args").exists()
    assert "--num_processes 2" in (log / "accelerate.args").read_text()


def test_a_run_that_finishes_as_the_signal_comes_is_not_requeued(cluster: tuple[Path, dict[str, str]]) -> None:
    log, env = cluster
    job = start("pretrain.sh", {**env, "STUB_FINISH_ON_SIGNAL": "1"}, "contrastive")
    wait_for(log / "worker.started")
    job.send_signal(signal.SIGUSR2)
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    assert "the run finished as the pre-emption signal came; not requeued" in output
    assert not (log / "scontrol.args").exists()


def test_data_prep_array_parts_merge_into_one_set(cluster: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """Two array tasks prepare disjoint halves of the inputs; `sharding merge` makes one set of them all."""
    _, env = cluster
    python = Path(env["PATH"].split(":")[0]) / "python"  # the script calls `python`: this environment's
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    music = tmp_path / "music"
    for number in range(4):
        write_chord(music / f"song{number}.wav", seconds=9.0, base_hz=200.0 + 50 * number)
    out = tmp_path / "shards"
    for part in ("0", "1"):
        task = {**env, "SLURM_ARRAY_TASK_ID": part, "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_CPUS_PER_TASK": "1"}
        job = start("data_prep_array.sh", task, str(music), str(out), "--no-progress")
        output, _ = job.communicate(timeout=300)
        assert job.returncode == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["part-000", "part-001"]
    merged = subprocess.run(
        [sys.executable, "-m", "musicssl.sharding", "merge", str(out)], capture_output=True, text=True, timeout=300
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    index = ShardIndex.load_local(out)
    assert index.num_tracks == 4
    assert all(info.name.startswith(("part-000/", "part-001/")) for info in index.shards)


# The sweep script's `python`: the real one, except that evaluations are only recorded (no backbone exists).
PYTHON_STUB = """#!/usr/bin/env bash
if [[ "$1 $2 $3" == "-m musicssl.downstream.sweeps evaluate" ]]; then echo "$@" >> "$STUB_LOG/evaluate.args"; exit 0; fi
exec "$STUB_PYTHON" "$@"
"""


@pytest.mark.parametrize("rc", [0, 3])
def test_sweep_array_task_pretrains_its_run_then_evaluates_it(cluster: tuple[Path, dict[str, str]], rc: int) -> None:
    """Task 4 of thesis-batch-size is VICReg at batch 768; a failed pre-training is not evaluated."""
    log, env = cluster
    python = Path(env["PATH"].split(":")[0]) / "python"
    python.write_text(PYTHON_STUB)
    python.chmod(0o755)
    task = {**env, "STUB_FINISH": "1", "STUB_RC": str(rc), "SLURM_ARRAY_TASK_ID": "4", "PYTHONPATH": str(REPO)}
    job = start("sweep.sh", task, "thesis-batch-size", "shards/fma", "shards/mtat", "--seed", "3")
    output, _ = job.communicate(timeout=300)
    assert job.returncode == rc, output
    launched = (log / "accelerate.args").read_text()
    assert "--num_processes 2 train.py --preset thesis-vicreg --batch-size 768 " in launched
    assert "--output-dir runs/sweeps/thesis-batch-size/vicreg-768 --run-name thesis-batch-size/vicreg-768" in launched
    assert launched.split()[-4:] == ["--data", "shards/fma", "--seed", "3"]
    evaluated = log / "evaluate.args"
    assert not (log / "scontrol.args").exists()
    if rc:
        assert not evaluated.exists()
    else:
        assert evaluated.read_text().split() == [
            "-m", "musicssl.downstream.sweeps", "evaluate", "thesis-batch-size", "4", "--data", "shards/mtat"
        ]  # fmt: skip


FORWARD_THEN_GONE = """
source slurm/lib.sh
forward_usr2() {  # the real forwarding; then the process is gone before the wait goes on, as when it exits at once
  kill -s USR2 "$2"
  for _ in $(seq 500); do kill -0 "$2" 2>/dev/null || break; sleep 0.01; done
}
run_forwarding_signals process bash -c 'trap "exit 7" USR2; touch "$0"; while :; do sleep 0.05; done' "$1"
echo "rc=$?"
"""


def test_a_process_that_ends_as_its_signal_is_forwarded_reports_its_own_exit_status(tmp_path: Path) -> None:
    """The wait that the signal interrupted returns 140; the run's status is the process's own (here 7)."""
    ready = tmp_path / "ready"
    job = subprocess.Popen(
        ["bash", "-c", FORWARD_THEN_GONE, "harness", str(ready)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(ready)
    job.send_signal(signal.SIGUSR2)
    output, _ = job.communicate(timeout=60)
    assert output.strip().endswith("rc=7"), output
