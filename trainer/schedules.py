"""Step schedules as pure functions of the optimiser step: warm-up + cosine (learning rate, weight decay), EMA
momentum and DINO teacher temperature.

A schedule is a frozen dataclass called with a step, ``schedule(step)``: nothing in it moves as the run advances,
so resuming needs only the step. Its settings are its state: ``load_state_dict`` refuses a checkpoint written with
other settings, so a resume with another run length or peak fails loudly instead of silently bending the curve.
How the pretexts size their schedules to the run in use: docs/schedules.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


def cosine_interpolate(start: float, end: float, progress: float) -> float:
    """Half-cosine from ``start`` (progress 0) to ``end`` (progress 1); progress is clamped to [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, peak: float, start: float = 0.0, final: float = 0.0
) -> float:
    """Linear warm-up start -> peak over ``warmup_steps``, then cosine to ``final`` at ``total_steps``."""
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    return cosine_interpolate(peak, final, (step - warmup_steps) / max(total_steps - warmup_steps, 1))


@dataclass(frozen=True)
class Schedule:
    """A value as a pure function of the optimiser step; its settings are its checkpointed state."""

    def __call__(self, step: int) -> float:
        """Value of the schedule at ``step``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The settings, for checkpoints."""
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint written with other settings (its ``position``, in older ones, is the loop's step)."""
        for name, value in self.state_dict().items():
            if name in state and state[name] != value:
                raise ValueError(
                    f"{type(self).__name__}: checkpoint has {name}={state[name]!r} but this run has "
                    f"{name}={value!r}; resume with the run's original settings"
                )


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    """Learning rate: linear warm-up start -> peak over ``warmup_steps``, then cosine to ``final`` at the end.

    ``peak`` is the optimiser's scaled lr (``trainer.optim.build_optimizer``); the loop writes ``schedule(step)``
    into the param groups before each optimiser step.
    """

    peak: float
    total_steps: int
    warmup_steps: int
    start: float = 0.0
    final: float = 0.0

    def __post_init__(self) -> None:
        if self.total_steps < 1 or not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(
                f"schedule needs total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
                f"total_steps={self.total_steps}, warmup_steps={self.warmup_steps}"
            )

    def __call__(self, step: int) -> float:
        """Learning rate at ``step``: start at 0, peak at ``warmup_steps``, final from ``total_steps`` on."""
        return warmup_cosine(step, self.total_steps, self.warmup_steps, self.peak, self.start, self.final)


@dataclass(frozen=True)
class CosineMomentum(Schedule):
    """EMA teacher momentum rising from ``start`` (0.996, BYOL/DINO) to ``end`` (1.0) on a half-cosine over
    ``total_steps`` (the ramp's length; BYOL and DINO: the whole run)."""

    total_steps: float
    start: float = 0.996
    end: float = 1.0

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise ValueError(f"CosineMomentum: total_steps must be > 0, got {self.total_steps}")

    def __call__(self, step: int) -> float:
        """Momentum at ``step``: ``start`` at 0, ``end`` at ``total_steps`` and after."""
        return cosine_interpolate(self.start, self.end, step / self.total_steps)


@dataclass(frozen=True)
class TeacherTemperature(Schedule):
    """DINO teacher temperature: linear warm-up from ``start`` (0.04) to ``end`` (0.07), then constant."""

    warmup_steps: float
    start: float = 0.04
    end: float = 0.07

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"TeacherTemperature: warmup_steps must be >= 0, got {self.warmup_steps}")

    def __call__(self, step: int) -> float:
        """Temperature at ``step``: ``start`` at 0, ``end`` from ``warmup_steps`` on."""
        if step >= self.warmup_steps:
            return self.end
        return self.start + (self.end - self.start) * step / self.warmup_steps
