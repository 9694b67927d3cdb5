"""What a checkpoint holds of the loop besides the model and the optimiser (its position, the pretext's own
state), and the check that a checkpoint belongs to the run that resumes it."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from musicssl.trainer.pretexts import Pretext

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Position of the loop, saved in every checkpoint."""

    step: int = 0
    data_position: list[int] | None = None
    """(epoch, micro-batch) of the next batch to read; None in checkpoints older than it (derived from step)."""
    mlflow_run_id: str | None = None
    nonfinite_skipped: int = 0
    view_rng: torch.Tensor | None = None
    """Every rank's augmentation generator state, one row per rank (one row of rank 0 in older checkpoints)."""
    collapse_alarm: dict[str, Any] | None = None
    """`CollapseAlarm.state_dict()` at the checkpoint; None before its first checkpoint (or in older ones)."""

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class PretextState:
    """Every state of the pretext outside the student (EMA teacher, DINO center, ...) as a checkpointable object."""

    def __init__(self, pretext: Pretext) -> None:
        self.pretext = pretext

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.pretext.state_dict().items() if not k.startswith("student.")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        result = self.pretext.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("student.")]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"checkpoint does not match the {self.pretext.name} pretext: missing {missing}, "
                f"unexpected {result.unexpected_keys}"
            )


def check_same_run(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Refuse to resume a checkpoint of another method or model; report other changed settings."""
    if "model" in saved:
        raise ValueError(
            f"{where} was written before the backbone settings left [model] for [resnet] / [samplecnn]: resume it "
            "with the train.py that wrote it, or start afresh with another --output-dir"
        )
    backbone = current["backbone"]
    essentials = {"pretext": (), "backbone": (), backbone: (), "batch_size": (), "crop_seconds": ("pairs",)}
    for key, parents in essentials.items():
        before, now = saved, current
        for parent in parents:
            before, now = before.get(parent, {}), now.get(parent, {})
        if before.get(key) != now.get(key):
            raise ValueError(
                f"{where} was written with {key}={before.get(key)!r}, this run has {now.get(key)!r}; "
                "use another --output-dir or the original settings"
            )
    changed = sorted(k for k in current if saved.get(k) != current[k])
    if changed:
        log.warning("resuming %s with changed settings: %s", where, ", ".join(changed))
