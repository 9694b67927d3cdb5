"""Every launcher trains the same model: `accelerate launch` with the repository's configs, plain `torchrun` and
the Slurm node launcher, each on 2 CPU processes with no special variables, equal each other and one process.

The runs load `tests/launched` (PYTHONPATH), which replaces BatchNorm by an identity: only then do 2 processes
with half the batch each take exactly the step 1 process takes on the whole batch.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from musicssl.trainer.accelerator import (
    SEPARATE_STORE_VARIABLE,
    check_process_count,
    check_restartable,
    configure_deepspeed,
    make_accelerator,
)
from musicssl.trainer.checkpoints import (
    DEEPSPEED_FOLDER,
    UNIVERSAL_FOLDER,
    checkpoint_name,
    list_checkpoints,
    make_universal,
)
from musicssl.trainer.cli import parse_config
from musicssl.trainer.export import STUDENT_WEIGHTS
from musicssl.trainer.optim import learning_rate_schedule, scaled_learning_rate, weight_decay_schedule
from musicssl.trainer.state_files import check_loads_safely
from tests.support import launching, tiny_run
from tests.support.launching import (
    PROCESSES,
    STEPS,
    TINY_RUN,
    assert_same_weights,
    launcher_env,
    run_training,
    student_at,
)
from tests.support.paths import REPO
from tests.support.tiny_run import WritesAFile

shards = tiny_run.shards  # the tiny runs' shard set fixture
one_process = launching.one_process

DEEPSPEED = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="needs the deepspeed extra")


def assert_export_is_the_last_checkpoint(output: Path) -> None:
    """The exported backbone is the backbone of the last checkpoint's `model.safetensors` (what `load_backbone`
    reads from a checkpoint folder; the runs have no BatchNorm, so the weights are compared as files)."""
    exported = load_file(output / "backbone.safetensors")
    student = student_at(output, STEPS)
    backbone = {key.removeprefix("backbone."): value for key, value in student.items() if key.startswith("backbone.")}
    assert_same_weights(exported, backbone, f"{output.name} export")


@pytest.mark.distributed
@pytest.mark.timeout(900)
@pytest.mark.parametrize("launcher", ["accelerate", "torchrun", "slurm", pytest.param("deepspeed", marks=DEEPSPEED)])
def test_two_processes_under_every_launcher_train_the_one_process_model(
    launcher: str, tmp_path: Path, shards: str, one_process: dict[str, torch.Tensor]
) -> None:
    log = run_training(launcher, tmp_path / launcher, shards)
    assert "Accelerate counts" not in log
    initial = load_file(tmp_path / launcher / "checkpoints" / f"step-{3:09d}" / STUDENT_WEIGHTS)
    assert any(not torch.equal(initial[k], one_process[k]) for k in initial)  # the steps after 3 moved it
    assert_same_weights(student_at(tmp_path / launcher, STEPS), one_process, launcher)
    assert_export_is_the_last_checkpoint(tmp_path / launcher)


def test_restarts_through_a_shared_rendezvous_store_are_refused_with_the_fix() -> None:
    """torchrun --max-restarts keeps its store across attempts unless told not to: a restarted group would read
    the dead group's addresses (in this file's kill test it failed to connect or hung until the timeout)."""
    shared = {"TORCHELASTIC_MAX_RESTARTS": "1", "TORCHELASTIC_USE_AGENT_STORE": "True"}
    with pytest.raises(RuntimeError, match=r"up to 1 time.*TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun"):
        check_restartable(shared)
    check_restartable(shared | {"TORCHELASTIC_MAX_RESTARTS": "0"})
    check_restartable(shared | {"TORCHELASTIC_USE_AGENT_STORE": "False"})  # what the variable gives the workers


def test_a_group_of_another_size_than_the_launch_is_refused_with_the_fix() -> None:
    check_process_count(seen=1, launched=1)
    with pytest.raises(RuntimeError, match=r"started 2 process.*Accelerate counts 1.*--num_processes N"):
        check_process_count(seen=1, launched=2)


@pytest.mark.distributed
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("first", "then"), [("python", "torchrun"), ("accelerate", "python")])
def test_a_run_resumed_on_another_process_count_reads_the_same_global_batches(
    first: str, then: str, tmp_path: Path, shards: str, one_process: dict[str, torch.Tensor]
) -> None:
    output = tmp_path / "run"
    run_training(first, output, shards, "--stop-after-steps", "3")
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [3]
    log = run_training(then, output, shards)
    before, now = (1, 2) if first == "python" else (2, 1)  # python: one process
    assert f"written on {before} process(es), this run has {now}: the global batches continue unchanged" in log
    assert_same_weights(student_at(output, STEPS), one_process, f"{first} then {then}")


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_a_stream_read_run_resumed_on_another_count_says_its_pairs_differ(tmp_path: Path, shards: str) -> None:
    """The stream reader deals shards to ranks: its order depends on the process count, and the resume says so
    instead of promising unchanged batches."""
    output = tmp_path / "run"
    run_training("python", output, shards, "--pairs.reader", "stream", "--stop-after-steps", "3")
    log = run_training("torchrun", output, shards, "--pairs.reader", "stream")
    assert "written on 1 process(es), this run has 2: the stream reader deals shards to ranks" in log
    assert "continue unchanged" not in log


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_augmented_views_resume_exactly_on_two_processes(tmp_path: Path, shards: str) -> None:
    """Each rank augments with its own generator, checkpointed and restored per rank."""
    views = ("--pairs.views", "augmented_temporal")
    run_training("torchrun", tmp_path / "whole", shards, *views)
    run_training("torchrun", tmp_path / "split", shards, *views, "--stop-after-steps", "3")
    log = run_training("torchrun", tmp_path / "split", shards, *views)
    assert "resuming from" in log and "re-seeded" not in log
    assert_same_weights(student_at(tmp_path / "split", STEPS), student_at(tmp_path / "whole", STEPS), "resumed")


@pytest.mark.distributed
@pytest.mark.timeout(900)
@DEEPSPEED
def test_deepspeed_takes_the_trainers_accumulation_and_clipping(tmp_path: Path, shards: str) -> None:
    """ZeRO-2 on 2 processes with --grad-accum 2 and a clipping norm that binds equals 1 process with the same."""
    flags = ("--grad-accum", "2", "--optim.grad-clip", "0.002")  # gradient norms here: 0.004-0.01
    run_training("python", tmp_path / "one", shards, *flags)
    run_training("deepspeed", tmp_path / "zero2", shards, *flags)
    assert_same_weights(student_at(tmp_path / "zero2", STEPS), student_at(tmp_path / "one", STEPS), "ZeRO-2")
    unclipped = tmp_path / "unclipped"  # the clipping norm binds: without it the model differs
    run_training("python", unclipped, shards, "--grad-accum", "2")
    clipped = student_at(tmp_path / "one", STEPS)
    assert any(not torch.equal(value, clipped[key]) for key, value in student_at(unclipped, STEPS).items())


@pytest.mark.distributed
@pytest.mark.timeout(900)
@DEEPSPEED
@pytest.mark.parametrize("processes", [PROCESSES, 1])
def test_a_deepspeed_run_resumes_on_any_count_and_exports(
    processes: int, tmp_path: Path, shards: str, one_process: dict[str, torch.Tensor]
) -> None:
    """A ZeRO-2 checkpoint of 2 processes resumes on 2, or on 1 through DeepSpeed's universal checkpoint, onto the
    uninterrupted model; without DeepSpeed it is refused with the launch to use. The export and `load_backbone` of
    the last checkpoint folder give the same backbone."""
    output = tmp_path / "zero2"
    run_training("deepspeed", output, shards, "--stop-after-steps", "3")
    log = run_training("python", output, shards, succeed=False)
    assert "written by DeepSpeed on 2 process(es): resume it with" in log
    log = run_training("deepspeed", output, shards, processes=processes)
    assert ("loading it through DeepSpeed's universal checkpoint" in log) == (processes != PROCESSES)
    assert_same_weights(student_at(output, STEPS), one_process, f"ZeRO-2 resumed on {processes}")
    assert_export_is_the_last_checkpoint(output)
    exported = load_file(output / "backbone.safetensors")
    assert_same_weights(loaded_backbone(output / "checkpoints" / checkpoint_name(STEPS), tmp_path), exported, "load")


def loaded_backbone(checkpoint: Path, scratch: Path) -> dict[str, torch.Tensor]:
    """The weights `load_backbone` gives for a checkpoint folder (in a process without BatchNorm, like the run)."""
    weights = scratch / "loaded.safetensors"
    load = (
        "import sys; from safetensors.torch import save_file; from musicssl.trainer.export import load_backbone; "
        "save_file(load_backbone(sys.argv[1])[0].state_dict(), sys.argv[2])"
    )
    env = launcher_env("python", 1, scratch / "load")
    subprocess.run([sys.executable, "-c", load, str(checkpoint), str(weights)], cwd=REPO, env=env, check=True)
    return load_file(weights)


def deepspeed_plugin(stage: int) -> SimpleNamespace:
    """What configure_deepspeed reads of an Accelerator under a DeepSpeed launch config."""
    config = {"zero_optimization": {"stage": stage}, "gradient_accumulation_steps": 1, "gradient_clipping": "auto"}
    state = SimpleNamespace(deepspeed_plugin=SimpleNamespace(deepspeed_config=config))
    return SimpleNamespace(state=state, gradient_accumulation_steps=2, num_processes=4)


def test_deepspeed_gets_the_trainers_settings_or_refuses_what_it_cannot_do() -> None:
    accelerator = deepspeed_plugin(stage=2)
    with pytest.raises(ValueError, match="sets gradient_accumulation_steps 1, the trainer's settings give 2"):
        configure_deepspeed(accelerator, micro_batch=8, grad_clip=None, optimizer="adam")
    accelerator.state.deepspeed_plugin.deepspeed_config["gradient_accumulation_steps"] = "auto"
    configure_deepspeed(accelerator, micro_batch=8, grad_clip=0.5, optimizer="adam")
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    assert (config["train_micro_batch_size_per_gpu"], config["train_batch_size"]) == (8, 64)
    assert (config["gradient_accumulation_steps"], config["gradient_clipping"]) == (2, 0.5)
    assert config["bf16"]["check_grad_overflow"]
    with pytest.raises(ValueError, match="one trust ratio per partition instead of per layer"):
        configure_deepspeed(deepspeed_plugin(stage=2), micro_batch=8, grad_clip=None, optimizer="lars")
    with pytest.raises(ValueError, match="ZeRO stage 3 is not supported: it partitions the student's parameters"):
        configure_deepspeed(deepspeed_plugin(stage=3), micro_batch=8, grad_clip=None, optimizer="adam")


def test_a_launch_config_that_contradicts_the_trainer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCELERATE_GRADIENT_CLIPPING", "1.0")  # what `accelerate launch` passes on from a YAML
    with pytest.raises(ValueError, match=r"sets gradient_clipping 1.0, the trainer --optim.grad-clip 0.0"):
        make_accelerator("no", grad_accum=1, grad_clip=None)
    monkeypatch.setenv("ACCELERATE_GRADIENT_CLIPPING", "auto")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "1")
    with pytest.raises(ValueError, match=r"sets gradient_accumulation_steps 1, the trainer --grad-accum 2"):
        make_accelerator("no", grad_accum=2, grad_clip=None)


def applied_rates(folder: Path, rank: int) -> list[dict[str, Any]]:
    """Learning rate, weight decay and decay flag of the parameter groups `rank`'s optimiser stepped, in order
    (tests/launched records them as the optimiser steps; ZeRO steps one group per call, DDP all at once)."""
    calls = [json.loads(line) for line in (folder / f"rank-{rank}.jsonl").read_text().splitlines()]
    return [group for call in calls for group in call]


@pytest.mark.distributed
@pytest.mark.timeout(900)
@pytest.mark.parametrize("launcher", ["torchrun", pytest.param("deepspeed", marks=DEEPSPEED)])
def test_each_step_applies_its_scheduled_rates_and_a_non_finite_step_applies_nothing(
    launcher: str, tmp_path: Path, shards: str
) -> None:
    """Losses 1 and 2 are NaN: the optimiser steps at 0, 3, 4 and 5 only, each with that step's scheduled learning
    rate and weight decay (the decay-exempt groups at 0), and the weights equal one process's with the same NaNs."""
    flags = ("--optim.weight-decay", "0.1", "--optim.weight-decay-end", "0.4")
    nan = {"MUSICSSL_TEST_NAN_CALLS": "1,2"}
    run_training("python", tmp_path / "one", shards, *flags, hooks=nan)
    record = tmp_path / "steps"
    record.mkdir()
    run_training(launcher, tmp_path / launcher, shards, *flags, hooks=nan | {"MUSICSSL_TEST_RECORD_STEPS": str(record)})

    config, _ = parse_config([*TINY_RUN, "--data", shards, "--output-dir", str(tmp_path), *flags])
    peak = scaled_learning_rate(config.optim.base_lr, config.batch_size)
    lr = learning_rate_schedule(config.optim, peak, config.total_steps)
    weight_decay = weight_decay_schedule(config.optim, config.total_steps)
    assert weight_decay is not None
    expected = [(lr(step), weight_decay(step) * decayed, decayed) for step in (0, 3, 4, 5) for decayed in (1, 0)]
    for rank in range(PROCESSES):
        applied = [(group["lr"], group["weight_decay"], group["decayed"]) for group in applied_rates(record, rank)]
        assert [flag for *_, flag in applied] == [flag for *_, flag in expected], f"rank {rank}: steps taken"
        assert np.allclose(applied, expected, rtol=1e-9, atol=0), f"rank {rank}: {applied}"
    assert_same_weights(student_at(tmp_path / launcher, STEPS), student_at(tmp_path / "one", STEPS), launcher)


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_a_killed_rank_restarts_the_group_from_the_last_complete_checkpoint(
    tmp_path: Path, shards: str, one_process: dict[str, torch.Tensor]
) -> None:
    """kill -9 of rank 1 as it starts writing the last checkpoint, under `torchrun --max-restarts 1`: the group
    restarts, ignores the half-written checkpoint, resumes from step 3 and ends on the uninterrupted model."""
    output, marker = tmp_path / "run", tmp_path / "killed"
    kill = {"MUSICSSL_TEST_KILL": f"1:{checkpoint_name(STEPS)}:{marker}", SEPARATE_STORE_VARIABLE: "1"}
    log = run_training("torchrun", output, shards, hooks=kill, restarts=1)
    assert marker.exists(), "rank 1 was not killed"
    assert f"resuming from {output / 'checkpoints' / checkpoint_name(3)} at step 3" in log
    assert_same_weights(student_at(output, STEPS), one_process, "restarted")
    assert not list((output / "checkpoints").glob(".*.partial"))


@DEEPSPEED
def test_a_failed_universal_conversion_names_the_command_and_leaves_nothing_to_load(tmp_path: Path) -> None:
    (tmp_path / DEEPSPEED_FOLDER).mkdir()  # an engine folder without its parts
    with pytest.raises(RuntimeError, match=r"ds_to_universal .*resume on the process count it was written on"):
        make_universal(tmp_path)
    assert not (tmp_path / DEEPSPEED_FOLDER / UNIVERSAL_FOLDER).exists()


@DEEPSPEED
def test_a_deepspeed_engine_file_holding_an_object_is_refused_unread(tmp_path: Path) -> None:
    """DeepSpeed reads its files with weights_only=False: the trainer reads them first with weights_only=True
    and DeepSpeed's own record types, and refuses one that holds anything else."""
    marker = tmp_path / "code-ran"
    engine = tmp_path / DEEPSPEED_FOLDER
    engine.mkdir()
    torch.save(
        {"optimizer_state_dict": {"x": WritesAFile(marker)}},
        engine / "zero_pp_rank_0_mp_rank_00_optim_states.pt",
    )
    with pytest.raises(ValueError, match=r"zero_pp_rank_0_mp_rank_00_optim_states.pt does not load as plain data"):
        check_loads_safely(tmp_path, rank=0)
    assert not marker.exists()
