"""Complete, atomic training checkpoints: written to a temporary folder, renamed when whole, the last k kept.

A checkpoint is Accelerate's state folder (student, optimiser, scaler, every rank's RNG) plus the objects
registered with `accelerator.register_for_checkpointing` (EMA teacher and DINO center, lr schedule,
loop state).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{9})$")


@dataclass
class CheckpointPolicy:
    """Which checkpoints survive: the newest `keep_last`, plus every step listed in `keep_steps`."""

    keep_last: int
    keep_steps: frozenset[int]


def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `directory`, oldest first (temporary folders are not listed)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(
    accelerator: Accelerator,
    directory: Path,
    step: int,
    policy: CheckpointPolicy,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Save on every rank into a temporary folder, then rank 0 adds `extra_files` (name -> text), renames
    the folder and prunes old checkpoints."""
    final = directory / checkpoint_name(step)
    partial = directory / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text)
        if final.exists():  # the same step saved again (e.g. a signal right after a periodic save)
            shutil.rmtree(final)
        partial.rename(final)
        prune_checkpoints(directory, policy)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(directory: Path, policy: CheckpointPolicy) -> None:
    """Delete checkpoints beyond the newest `keep_last`, sparing the listed steps; remove stale partials."""
    found = list_checkpoints(directory)
    recent = {step for step, _ in found[-policy.keep_last :]} if policy.keep_last > 0 else set()
    for step, path in found:
        if step not in recent and step not in policy.keep_steps:
            shutil.rmtree(path)
    for stale in directory.glob(".step-*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
