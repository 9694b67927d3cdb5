"""Loaded at start-up by every Python process that has this folder on PYTHONPATH (the launcher tests put it there).

Always: BatchNorm becomes an identity, so that N processes with B/N pairs each train exactly the model 1 process
with B pairs trains (per-rank BatchNorm sees only its own pairs, and SyncBatchNorm refuses CPU tensors).
On request, by environment variable, what a test must see or cause inside a launched process:
- MUSICSSL_TEST_RECORD_STEPS=folder: each optimiser step actually taken appends its groups' learning rate, weight
  decay and decay flag to folder/rank-R.jsonl;
- MUSICSSL_TEST_NAN_CALLS=1,2: the contrastive loss is NaN on those calls (0-based, per process);
- MUSICSSL_TEST_KILL=rank:checkpoint:marker: that rank kills itself (SIGKILL) as it starts writing that checkpoint,
  once: the marker file it creates stops it doing so again after a restart;
- MUSICSSL_TEST_PAUSE=checkpoint:folder: once that checkpoint is written whole (renamed), each rank creates
  folder/paused-RANK and waits until a stop signal (SIGUSR2/SIGTERM) reaches it or folder/go exists, so a test
  acts at a known step.
"""

import json
import os
import signal
import time
from pathlib import Path

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook


class NoBatchNorm(nn.Identity):
    """Takes BatchNorm's arguments, normalises nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()


nn.BatchNorm1d = nn.BatchNorm2d = NoBatchNorm
RANK = os.environ.get("RANK", "0")


def record_steps(folder: Path) -> None:
    def record(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        keys = ("lr", "weight_decay", "decayed")
        groups = [{key: group.get(key) for key in keys} for group in optimizer.param_groups]
        with (folder / f"rank-{RANK}.jsonl").open("a") as log:
            log.write(json.dumps(groups) + "\n")

    register_optimizer_step_pre_hook(record)


def poison_losses(calls: set[int]) -> None:
    from musicssl.trainer.pretexts.contrastive import Contrastive

    original, seen = Contrastive.compute_loss, [0]

    def compute_loss(self: Contrastive, views: torch.Tensor, student: nn.Module | None = None) -> object:
        out = original(self, views, student)
        if seen[0] in calls:
            out.loss = out.loss * float("nan")
        seen[0] += 1
        return out

    Contrastive.compute_loss = compute_loss


def kill_in_checkpoint(rank: str, checkpoint: str, marker: Path) -> None:
    from accelerate import Accelerator

    original = Accelerator.save_state

    def save_state(self: Accelerator, output_dir: str | None = None, *args: object, **kwargs: object) -> object:
        if rank == RANK and checkpoint in str(output_dir) and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, output_dir, *args, **kwargs)

    Accelerator.save_state = save_state


def pause_after_checkpoint(checkpoint: str, folder: Path) -> None:
    from accelerate import Accelerator

    from musicssl.trainer.preemption import StopRequest

    signalled, barriers_left = [False], [0]
    handle, save, barrier = StopRequest._handle, Accelerator.save_state, Accelerator.wait_for_everyone

    def note_signal(self: StopRequest, signum: int, frame: object) -> None:
        signalled[0] = True
        handle(self, signum, frame)

    def save_state(self: Accelerator, output_dir: str | None = None, *args: object, **kwargs: object) -> object:
        saved = save(self, output_dir, *args, **kwargs)
        if checkpoint in str(output_dir) and not (folder / f"paused-{RANK}").exists():
            barriers_left[0] = 2  # save_checkpoint: barrier, rank 0 renames the folder, barrier: then it is whole
        return saved

    def wait_for_everyone(self: Accelerator) -> None:
        barrier(self)
        if barriers_left[0] > 0:
            barriers_left[0] -= 1
            if barriers_left[0] == 0:
                (folder / f"paused-{RANK}").touch()
                deadline = time.monotonic() + 300
                while not signalled[0] and not (folder / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)

    StopRequest._handle = note_signal
    Accelerator.save_state = save_state
    Accelerator.wait_for_everyone = wait_for_everyone


if "MUSICSSL_TEST_RECORD_STEPS" in os.environ:
    record_steps(Path(os.environ["MUSICSSL_TEST_RECORD_STEPS"]))
if "MUSICSSL_TEST_NAN_CALLS" in os.environ:
    poison_losses({int(call) for call in os.environ["MUSICSSL_TEST_NAN_CALLS"].split(",")})
if "MUSICSSL_TEST_KILL" in os.environ:
    rank, checkpoint, marker = os.environ["MUSICSSL_TEST_KILL"].split(":", 2)
    kill_in_checkpoint(rank, checkpoint, Path(marker))
if "MUSICSSL_TEST_PAUSE" in os.environ:
    checkpoint, folder = os.environ["MUSICSSL_TEST_PAUSE"].split(":", 1)
    pause_after_checkpoint(checkpoint, Path(folder))
