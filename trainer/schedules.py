"""Step-indexed schedules: warm-up + cosine learning rate, EMA momentum and DINO teacher temperature.

Every schedule is a closed-form function of the optimiser step, so resuming only needs the step:
``state_dict`` stores it (with the settings, which ``load_state_dict`` checks so a resume with other
settings fails loudly instead of silently bending the curve).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
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


def _check_steps(total_steps: int, warmup_steps: int) -> None:
    """Refuse step counts that cannot make a schedule."""
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"schedule needs total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
            f"total_steps={total_steps}, warmup_steps={warmup_steps}"
        )


def _check_same_settings(schedule: object, state: dict[str, Any], names: tuple[str, ...]) -> None:
    """Refuse a saved state whose settings differ from the schedule it is loaded into."""
    for name in names:
        if name in state and state[name] != getattr(schedule, name):
            raise ValueError(
                f"{type(schedule).__name__}: checkpoint has {name}={state[name]!r} but this run has "
                f"{name}={getattr(schedule, name)!r}; resume with the run's original settings"
            )


class StepSchedule(ABC):
    """A value that follows the optimiser step: ``value_at(step)``, a position, ``step()`` and state."""

    settings: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.position = 0

    @abstractmethod
    def value_at(self, step: int) -> float:
        """Value of the schedule at ``step``."""

    def __call__(self, step: int | None = None) -> float:
        """Value at ``step``, or at the current position when no step is given."""
        return self.value_at(self.position if step is None else step)

    def step(self) -> float:
        """Advance one optimiser step and return the new current value."""
        self.position += 1
        return self()

    def state_dict(self) -> dict[str, Any]:
        """Position and settings, for checkpoints."""
        return {"position": self.position, **{name: getattr(self, name) for name in self.settings}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position after checking the settings match."""
        _check_same_settings(self, state, self.settings)
        self.position = int(state["position"])


class WarmupCosine(StepSchedule):
    """Learning rate: linear warm-up start -> peak over ``warmup_steps``, then cosine to ``final`` at the end.

    ``peak`` is the optimiser's scaled lr (``trainer.optim.build_optimizer``); the loop writes
    ``value_at(step)`` into the param groups before each optimiser step.
    """

    settings = ("peak", "total_steps", "warmup_steps", "start", "final")

    def __init__(
        self, peak: float, total_steps: int, warmup_steps: int, start: float = 0.0, final: float = 0.0
    ) -> None:
        _check_steps(total_steps, warmup_steps)
        super().__init__()
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.start = start
        self.final = final

    def value_at(self, step: int) -> float:
        """Learning rate at ``step``: start at 0, peak at ``warmup_steps``, final from ``total_steps`` on."""
        return warmup_cosine(step, self.total_steps, self.warmup_steps, self.peak, self.start, self.final)


class CosineMomentum(StepSchedule):
    """EMA teacher momentum rising from ``start`` (0.996, BYOL/DINO) to ``end`` (1.0) on a half-cosine."""

    settings = ("start", "end", "total_steps")

    def __init__(self, total_steps: int, start: float = 0.996, end: float = 1.0) -> None:
        _check_steps(total_steps, 0)
        super().__init__()
        self.total_steps = total_steps
        self.start = start
        self.end = end

    def value_at(self, step: int) -> float:
        """Momentum at ``step``: ``start`` at 0, ``end`` at ``total_steps`` and after."""
        return cosine_interpolate(self.start, self.end, step / self.total_steps)


class TeacherTemperature(StepSchedule):
    """DINO teacher temperature: linear warm-up from ``start`` (0.04) to ``end`` (0.07), then constant."""

    settings = ("start", "end", "warmup_steps")

    def __init__(self, warmup_steps: int, start: float = 0.04, end: float = 0.07) -> None:
        if warmup_steps < 0:
            raise ValueError(f"TeacherTemperature: warmup_steps must be >= 0, got {warmup_steps}")
        super().__init__()
        self.warmup_steps = warmup_steps
        self.start = start
        self.end = end

    def value_at(self, step: int) -> float:
        """Temperature at ``step``: ``start`` at 0, ``end`` from ``warmup_steps`` on."""
        if step >= self.warmup_steps:
            return self.end
        return self.start + (self.end - self.start) * step / self.warmup_steps
