"""Two hosts, for real: the multi-node launch path (`slurm/node_launch.sh` with Slurm's variables) on two network
namespace hosts (tests/support/hosts.py), 1 process each, trains the model of 1 process; pre-emption checkpoints
every rank at one step and resumes there; a host that disappears stops the other within the collective timeout,
and the rerun resumes from the last complete checkpoint.

As in tests/cluster/test_launchers.py the runs load `tests/launched` (BatchNorm switched off, hooks), and the hosts
share this machine's file system, as nodes share one on a cluster.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import torch

from musicssl.trainer.accelerator import TIMEOUT_VARIABLE, PeerWatch, collective_timeout
from musicssl.trainer.checkpoints import checkpoint_name, list_checkpoints
from tests.support import launching, tiny_run
from tests.support.hosts import Hosts, two_hosts  # noqa: F401 (the fixture)
from tests.support.paths import REPO

STEPS = launching.STEPS
shards = tiny_run.shards  # fixtures
one_process = launching.one_process
MAIN = "10.77.0.1"
TIMEOUT_S = 30  # the collective timeout of these runs (MUSICSSL_COLLECTIVE_TIMEOUT)


def start_nodes(
    hosts: Hosts, output: Path, data: str, port: int, hooks: Mapping[str, str] | None = None
) -> list[subprocess.Popen]:
    """`bash slurm/node_launch.sh` on each host with what Slurm sets on a 2-node job of 1 GPU per node."""
    nodes = []
    for rank in range(len(hosts.names)):
        env = launching.launcher_env("slurm", 1, output)
        env |= {"SLURM_NNODES": str(len(hosts.names)), "SLURM_NODEID": str(rank), "SLURM_GPUS_ON_NODE": "1"}
        env |= {"MAIN_PROCESS_IP": MAIN, "MAIN_PROCESS_PORT": str(port), TIMEOUT_VARIABLE: str(TIMEOUT_S)}
        env["MUSICSSL_STOP_FILE"] = str(output.parent / f".{output.name}.stopped-{rank}")
        env |= dict(hooks or {})
        log = (output.parent / f"{output.name}-node{rank}.log").open("a")
        command = [
            "bash",
            "slurm/node_launch.sh",
            *launching.TINY_RUN,
            "--data",
            data,
            "--output-dir",
            str(output),
        ]
        nodes.append(hosts.popen(rank, command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
    return nodes


def node_logs(output: Path) -> list[str]:
    return [(output.parent / f"{output.name}-node{rank}.log").read_text() for rank in range(2)]


def finish(nodes: list[subprocess.Popen], output: Path, codes: tuple[int, ...] = (0, 0)) -> list[str]:
    """Wait for every node launcher; their exit codes must be `codes`; returns their logs."""
    for node in nodes:
        node.wait(timeout=300)
    logs = node_logs(output)
    assert tuple(node.returncode for node in nodes) == codes, "\n----\n".join(log[-3000:] for log in logs)
    return logs


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_two_hosts_train_the_model_of_one_process(
    two_hosts: Hosts,  # noqa: F811
    tmp_path: Path,
    shards: str,
    one_process: dict[str, torch.Tensor],
) -> None:
    """2 hosts x 1 process through slurm/node_launch.sh equal 1 host x 2 processes and 1 process (same global
    batch), with gloo on the interface that routes to the main address, no variable set."""
    output = tmp_path / "two_hosts"
    logs = finish(start_nodes(two_hosts, output, shards, 29500), output)
    for rank, log in enumerate(logs):
        assert f"node {rank}: main process at {MAIN}, gloo on eth0" in log
        assert "Accelerate counts" not in log
    two = launching.student_at(output, STEPS)
    launching.assert_same_weights(two, one_process, "2 hosts x 1 process vs 1 process")
    one_host = tmp_path / "one_host"
    launching.run_training("slurm", one_host, shards)  # 1 node x 2 processes
    launching.assert_same_weights(two, launching.student_at(one_host, STEPS), "2 hosts vs 1 host x 2")


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_usr2_to_every_node_checkpoints_all_ranks_at_one_step_and_the_rerun_resumes_there(
    two_hosts: Hosts,  # noqa: F811
    tmp_path: Path,
    shards: str,
    one_process: dict[str, torch.Tensor],
) -> None:
    """Both ranks pause once step 3's checkpoint is whole (tests/launched), SIGUSR2 goes to each node launcher,
    which hands it to its training process: every rank stops after step 4 with one checkpoint; the rerun resumes
    at step 4 and ends on the uninterrupted model."""
    output, pause = tmp_path / "run", tmp_path / "pause"
    pause.mkdir()
    nodes = start_nodes(two_hosts, output, shards, 29500, {"MUSICSSL_TEST_PAUSE": f"{checkpoint_name(3)}:{pause}"})
    wait_for(lambda: all((pause / f"paused-{rank}").exists() for rank in range(2)), "both ranks at step 3")
    for node in nodes:
        node.send_signal(signal.SIGUSR2)
    logs = finish(nodes, output)
    assert "stopping at step 4 (SIGUSR2); checkpoint saved" in logs[0]
    assert all("pre-emption signal: asking training to checkpoint" in log for log in logs)
    assert (tmp_path / ".run.stopped-0").read_text().strip() == "4"  # what slurm/lib.sh turns into exit 75
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [3, 4]

    logs = finish(start_nodes(two_hosts, output, shards, 29501), output)
    assert f"resuming from {output / 'checkpoints' / checkpoint_name(4)} at step 4" in "".join(logs)
    launching.assert_same_weights(launching.student_at(output, STEPS), one_process, "resumed on 2 hosts")


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_a_host_that_disappears_stops_the_other_within_the_timeout_and_the_rerun_resumes(
    two_hosts: Hosts,  # noqa: F811
    tmp_path: Path,
    shards: str,
    one_process: dict[str, torch.Tensor],
) -> None:
    """Once step 3's checkpoint is whole, host 2 loses its link and every process on it is killed (kill -9): it
    sends nothing more, as a host that loses power. Rank 0 goes on into the next collective and stops after the
    collective timeout; before that (10-14 s, a third of it) it names the rank and node it lost; node 0's launcher exits
    non-zero. The rerun on both hosts resumes from step 3 and ends on the uninterrupted model."""
    output, pause = tmp_path / "run", tmp_path / "pause"
    pause.mkdir()
    nodes = start_nodes(two_hosts, output, shards, 29500, {"MUSICSSL_TEST_PAUSE": f"{checkpoint_name(3)}:{pause}"})
    wait_for(lambda: all((pause / f"paused-{rank}").exists() for rank in range(2)), "both ranks at step 3")
    two_hosts.set_link(1, up=False)
    two_hosts.kill(1)
    lost = time.monotonic()
    (pause / "go").touch()
    nodes[0].wait(timeout=TIMEOUT_S + 120)
    stopped_after = time.monotonic() - lost
    nodes[1].wait(timeout=30)
    logs = node_logs(output)
    print(f"rank 0 stopped {stopped_after:.1f} s after host 2 disappeared (collective timeout {TIMEOUT_S} s)")
    assert nodes[0].returncode != 0, logs[0][-3000:]
    assert TIMEOUT_S - 2 <= stopped_after <= TIMEOUT_S + 60, logs[0][-3000:]
    assert "rank 0: rank 1 (node 1, host " in logs[0] and ", 10.77.0.2) has not been heard from" in logs[0], logs[0]
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [3]

    two_hosts.set_link(1, up=True)
    logs = finish(start_nodes(two_hosts, output, shards, 29501), output)
    assert f"resuming from {output / 'checkpoints' / checkpoint_name(3)} at step 3" in "".join(logs)
    launching.assert_same_weights(launching.student_at(output, STEPS), one_process, "rerun on 2 hosts")


def test_the_collective_timeout_is_ten_minutes_unless_set() -> None:
    assert collective_timeout({}).total_seconds() == 600
    assert collective_timeout({TIMEOUT_VARIABLE: "20"}).total_seconds() == 20
    for wrong in ("0", "-5", "ten"):
        with pytest.raises(ValueError, match=rf"{TIMEOUT_VARIABLE}=.*in seconds"):
            collective_timeout({TIMEOUT_VARIABLE: wrong})


def test_a_silent_rank_is_named_once_and_a_rank_that_ended_never(capfd: pytest.CaptureFixture[str]) -> None:
    store = torch.distributed.HashStore()
    silent, ended = PeerWatch(store, 1, 3, 0.05, 0.3), PeerWatch(store, 2, 3, 0.05, 0.3)
    silent.store.set("beat/1", "1")  # beat once, then nothing (its thread never runs)
    ended.stop()  # what a rank does at a normal exit
    watch = PeerWatch(store, 0, 3, 0.05, 0.3).start()
    time.sleep(1.0)
    watch.stop()
    errors = capfd.readouterr().err
    assert errors.count("[musicssl] rank 0: rank 1 (node ") == 1 and "has not been heard from for" in errors
    assert "rank 2" not in errors
