"""EMA teachers: a frozen fp32 copy of (part of) the student, moved towards it after every optimiser step.

The teacher is a submodule of the pretext but not of ``student``, so the optimiser and DDP never see it while
``pretext.state_dict()`` checkpoints it. Only parameters are averaged; buffers (BatchNorm statistics) are
copied from the student, as in BYOL and DINO. The momentum rises from ``momentum_start`` to ``momentum_end``
on a half-cosine over the run (:class:`trainer.schedules.CosineMomentum`).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from trainer.pretexts.base import Pretext, run_on_both_views
from trainer.schedules import CosineMomentum


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
        schedule = CosineMomentum(total_steps, self.config.momentum_start, self.config.momentum_end)
        return schedule.value_at(step)

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Move the teacher towards the student with this step's momentum."""
        ema_update(self.teacher, self.student, self.momentum_at(step, total_steps))
