"""The tiny training run under a launcher (`accelerate launch`, torchrun, the Slurm node launcher, DeepSpeed), shared
by the launcher, tracking-server and two-host tests: its command, environment and weights, and the one-process
reference (the `one_process` fixture, which a test module assigns to a name of its own, with `tiny_run.shards`).

The runs load tests/launched (PYTHONPATH), which replaces BatchNorm by an identity: only then do 2 processes
with half the batch each take exactly the step 1 process takes on the whole batch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from musicssl.trainer.checkpoints import list_checkpoints
from musicssl.trainer.export import STUDENT_WEIGHTS
from tests.support.paths import LAUNCHED, REPO

PROCESSES = 2
STEPS = 6
TINY_RUN = [
    "--pretext", "contrastive", "--study", "test", "--no-mlflow", "--seed", "3",
    "--epochs", "2", "--steps-per-epoch", str(STEPS // 2), "--batch-size", "8", "--pairs.crop-seconds", "1",
    "--pairs.min-gap-seconds", "1", "--pairs.max-gap-seconds", "3", "--pairs.num-workers", "0",
    "--resnet.width", "8", "--optim.warmup-steps", "1", "--checkpoint.every-steps", "3", "--log-every", "1",
]  # fmt: skip
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def free_port() -> int:
    """A port no one listens on now (the launchers' rendezvous binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(launcher: str, processes: int, restarts: int) -> list[str]:
    """The command that starts train.py under `launcher` (arguments follow); torchrun restarts a failed group
    `restarts` times."""
    port = str(free_port())
    if launcher == "python":
        return [sys.executable, "train.py"]
    if launcher == "torchrun":
        restart = ["--max-restarts", str(restarts)]
        return [*TORCHRUN, "--standalone", "--nproc_per_node", str(processes), *restart, "train.py"]
    config = {"accelerate": "one_node.yaml", "deepspeed": "deepspeed_zero2.yaml"}[launcher]
    return [*ACCELERATE, "--config_file", f"configs/accelerate/{config}", "--num_processes", str(processes),
            "--main_process_port", port, "train.py"]  # fmt: skip


def launcher_env(launcher: str, processes: int, output: Path) -> dict[str, str]:
    """The environment of a launch: no variable that picks a backend, BatchNorm switched off (tests/launched), and a
    stop file, so that a run stopped by --stop-after-steps exits 0 under a launcher too (as under slurm/lib.sh)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ACCELERATE_", "DS_"))}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": f"{LAUNCHED}:{REPO}"}
    env["MUSICSSL_STOP_FILE"] = str(output.parent / f".{output.name}.stopped")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the scripts call `accelerate`
    if launcher == "slurm":  # what Slurm sets on the one node of a job with 2 GPUs per node
        env |= {"SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_GPUS_ON_NODE": str(processes)}
        env |= {"MAIN_PROCESS_IP": "127.0.0.1", "MAIN_PROCESS_PORT": str(free_port())}
    return env


def run_training(
    launcher: str,
    output: Path,
    data: str,
    *flags: str,
    processes: int = PROCESSES,
    succeed: bool = True,
    hooks: Mapping[str, str] | None = None,
    restarts: int = 0,
) -> str:
    """Run (or resume) the tiny training under `launcher` to the end or as `flags` say, with tests/launched's
    `hooks` (variable -> value); returns its output (a run that should fail, `succeed=False`, must exit non-zero)."""
    command = ["bash", "slurm/node_launch.sh"] if launcher == "slurm" else launch_command(launcher, processes, restarts)
    command += [*TINY_RUN, "--data", data, "--output-dir", str(output), *flags]
    env = launcher_env(launcher, processes, output) | dict(hooks or {})
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    errors = "\n".join(line for line in log.splitlines() if "Error" in line or line.startswith("error"))
    assert (run.returncode == 0) == succeed, f"{launcher}: exit {run.returncode}\n{errors}\n{log[-3000:]}"
    return log


def student_at(output: Path, step: int) -> dict[str, torch.Tensor]:
    """The student's weights in the checkpoint of `step`."""
    checkpoints = dict(list_checkpoints(output / "checkpoints"))
    return load_file(checkpoints[step] / STUDENT_WEIGHTS)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{what}: {key}")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, shards: str) -> dict[str, torch.Tensor]:
    """The weights after the tiny run on one process, the reference of every launcher."""
    output = tmp_path_factory.mktemp("one_process")
    run_training("python", output, shards)
    return student_at(output, STEPS)
