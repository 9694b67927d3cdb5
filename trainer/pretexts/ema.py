"""EMA teachers: a frozen fp32 copy of (part of) the student, moved towards it after every optimiser step.

The teacher is a submodule of the pretext but not of ``student``, so the optimiser and DDP never see it while
``pretext.state_dict()`` checkpoints it. Only parameters are averaged; buffers (BatchNorm statistics) are
copied from the student, as in BYOL and DINO. The momentum rises from ``momentum_start`` to ``momentum_end``
on a half-cosine over ``momentum_ramp_fraction`` of the run (:class:`trainer.schedules.CosineMomentum`;
docs/schedules.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from musicssl.trainer.pretexts.base import Pretext, ProjectorConfig, run_on_both_views
from musicssl.trainer.schedules import CosineMomentum


@dataclass
class EMAConfig(ProjectorConfig):
    """The EMA momentum schedule shared by the teacher pretexts (BYOL, DINO-style clustering)."""

    momentum_start: float = 0.996
    momentum_end: float = 1.0
    momentum_ramp_fraction: float = 1.0
    """Length of the cosine from momentum_start to momentum_end, as a fraction of the run (BYOL and DINO: 1.0,
    the whole run; past it the momentum stays at momentum_end; above 1 a run ends before the teacher freezes)."""

    def __post_init__(self) -> None:
        if self.momentum_ramp_fraction <= 0:
            raise ValueError(f"momentum_ramp_fraction must be > 0, got {self.momentum_ramp_fraction}")


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in fp32 with gradients off."""
    teacher = copy.deepcopy(module).float()
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- m * teacher + (1 - m) * student for parameters (matched by name); buffers are copied."""
    student_parameters = dict(student.named_parameters())
    student_buffers = dict(student.named_buffers())
    for name, parameter in teacher.named_parameters():
        parameter.lerp_(student_parameters[name].detach().float(), 1.0 - momentum)
    for name, buffer in teacher.named_buffers():
        buffer.copy_(student_buffers[name])


class EMATeacherPretext(Pretext):
    """A pretext whose targets come from an EMA teacher of the student (BYOL, DINO-style clustering)."""

    def __init__(self, backbone: nn.Module, config: object = None) -> None:
        super().__init__(backbone, config)
        self.teacher = frozen_copy(self.teacher_source())

    def teacher_source(self) -> nn.Module:
        """The part of the student the teacher mirrors (parameter names must match the student's)."""
        return self.student

    @torch.no_grad()
    def teacher_outputs(self, views: Tensor) -> Tensor:
        """The teacher's (B, 2, P) outputs for both views without gradients, computed in the caller's
        precision (bf16 autocast on GPUs) from its fp32 weights, returned in fp32."""
        enabled, dtype = self.mixed_precision
        with torch.autocast(views.device.type, dtype=dtype, enabled=enabled):
            _, outputs = run_on_both_views(self.teacher, views)
        return outputs.float()

    def momentum_at(self, step: int, total_steps: int) -> float:
        """EMA momentum after optimiser step ``step`` of ``total_steps``."""
        config = self.config
        ramp = CosineMomentum(config.momentum_ramp_fraction * total_steps, config.momentum_start, config.momentum_end)
        return ramp(step)

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Move the teacher towards the student with this step's momentum."""
        ema_update(self.teacher, self.student, self.momentum_at(step, total_steps))
