"""Complete, atomic training checkpoints: written to a temporary folder, renamed when whole, the last k kept.

A checkpoint is Accelerate's state folder (student, optimiser, scaler, every rank's RNG, all read back with
`weights_only=True`) plus the loop's own state (EMA teacher and DINO center, lr schedule, loop state) as JSON and
safetensors files (trainer/state_files.py), never pickled. Under DeepSpeed the student and optimiser are the
engine's folder `pytorch_model/`, and the student is written beside it as the same `model.safetensors` as DDP's,
which export and evaluation read.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from musicssl.trainer.state_files import check_loads_safely

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{9})$")
DEEPSPEED_FOLDER = "pytorch_model"  # the engine's own checkpoint inside Accelerate's state folder
DEEPSPEED_OPTIMIZER_PARTS = "zero_pp_rank_*_optim_states.pt"  # one ZeRO optimiser partition per process
DISK_FULL_SIGNS = (  # how a full disk shows through the writers (torch.save's zip writer says only the second)
    "No space left on device",
    "unexpected pos",
)
UNIVERSAL_FOLDER = "zero"  # DeepSpeed's universal checkpoint, beside the parts in the engine folder


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
    extra_tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> Path:
    """Save on every rank into a temporary folder, then rank 0 adds `extra_files` (name -> text) and
    `extra_tensors` (name -> safetensors content), renames the folder and prunes old checkpoints."""
    final = directory / checkpoint_name(step)
    partial = directory / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))
    except Exception as error:
        if not any(sign in str(error) for sign in DISK_FULL_SIGNS):
            raise
        shutil.rmtree(partial, ignore_errors=True)
        raise OSError(errno.ENOSPC, "no space left", str(partial)) from error
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text)
        for name, tensors in (extra_tensors or {}).items():
            save_file({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, str(partial / name))
        if final.exists():  # the same step saved again (e.g. a signal right after a periodic save)
            shutil.rmtree(final)
        partial.rename(final)
        prune_checkpoints(directory, policy)
    accelerator.wait_for_everyone()
    return final


def unreadable_reason(checkpoint: Path, required: Sequence[str]) -> str | None:
    """Why `checkpoint` cannot be loaded, found without unpickling anything: a `required` file missing, a
    safetensors or JSON file that does not parse, a torch file whose zip members fail their CRC (a damaged or
    truncated write). None when every file reads whole."""
    missing = [name for name in required if not (checkpoint / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    for path in sorted(checkpoint.rglob("*")):
        try:
            if path.suffix == ".safetensors":
                load_file(str(path))
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix in (".bin", ".pt", ".pkl"):
                with zipfile.ZipFile(path) as archive:
                    damaged = archive.testzip()
                if damaged is not None:
                    return f"{path.relative_to(checkpoint)}: {damaged} fails its checksum"
        except Exception as error:
            return f"{path.relative_to(checkpoint)}: {error}"
    return None


def set_aside_unreadable(directory: Path, required: Sequence[str], say: Callable[[str], None]) -> None:
    """Rename the newest checkpoints that cannot be loaded to `<name>.unreadable` (kept for inspection, no longer
    listed), each named with the reason, so that the newest listed checkpoint is one that loads. Rank 0 only.
    A checkpoint holding pickles where plain data belongs is refused, not set aside: someone put them there."""
    for _, path in reversed(list_checkpoints(directory)):
        check_loads_safely(path, rank=0)
        reason = unreadable_reason(path, required)
        if reason is None:
            return
        aside = path.with_name(f"{path.name}.unreadable")
        shutil.rmtree(aside, ignore_errors=True)
        path.rename(aside)
        say(f"skipping checkpoint {path} ({reason}): set aside as {aside.name}, resuming from the one before")


def prune_checkpoints(directory: Path, policy: CheckpointPolicy) -> None:
    """Delete checkpoints beyond the newest `keep_last`, sparing the listed steps; remove stale partials."""
    found = list_checkpoints(directory)
    recent = {step for step, _ in found[-policy.keep_last :]} if policy.keep_last > 0 else set()
    for step, path in found:
        if step not in recent and step not in policy.keep_steps:
            shutil.rmtree(path)
    for stale in directory.glob(".step-*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def check_resumable(checkpoint: Path, deepspeed: bool, processes: int) -> bool:
    """Refuse a checkpoint this launch cannot load, saying how to launch instead: a DeepSpeed checkpoint without
    DeepSpeed, a DDP checkpoint under DeepSpeed. True when it must load through DeepSpeed's universal checkpoint:
    a ZeRO checkpoint of another number of processes (ZeRO cut the optimiser state in one part per process)."""
    engine_folder = checkpoint / DEEPSPEED_FOLDER
    if not engine_folder.is_dir():
        if deepspeed:
            raise ValueError(
                f"{checkpoint} was written without DeepSpeed; resume it with the launch config it was trained with "
                "(e.g. configs/accelerate/one_node.yaml), or start afresh with another --output-dir"
            )
        return False
    parts = len(list(engine_folder.glob(DEEPSPEED_OPTIMIZER_PARTS)))
    if not deepspeed:
        raise ValueError(
            f"{checkpoint} was written by DeepSpeed on {parts} process(es): resume it with "
            "`accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml --num_processes N "
            "train.py ...`"
        )
    return parts != processes


def make_universal(checkpoint: Path) -> None:
    """Add DeepSpeed's universal form of a ZeRO checkpoint (`pytorch_model/zero`: every parameter's weights and
    optimiser state whole), which loads on any number of processes. Converted in a temporary folder and renamed
    when whole, so an interrupted conversion is redone, never loaded."""
    engine_folder = checkpoint / DEEPSPEED_FOLDER
    if (engine_folder / UNIVERSAL_FOLDER).is_dir():
        return
    scratch = checkpoint / ".universal.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    command = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(engine_folder),
               "--output_folder", str(scratch), "--inject_missing_state"]  # fmt: skip
    converted = subprocess.run(command, capture_output=True, text=True)
    if converted.returncode != 0:
        raise RuntimeError(
            f"converting {checkpoint} to DeepSpeed's universal checkpoint failed (`{' '.join(command)}`): "
            f"{converted.stderr.strip().splitlines()[-1] if converted.stderr.strip() else converted.returncode}; "
            "resume on the process count it was written on"
        )
    (scratch / UNIVERSAL_FOLDER).rename(engine_folder / UNIVERSAL_FOLDER)
    shutil.rmtree(scratch)
