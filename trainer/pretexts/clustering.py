"""Clustering pretext (DINO-style): the student matches the EMA teacher's centred, sharpened prototype scores.

The teacher's scores are centred by a running mean over the global batch (momentum 0.9) and sharpened by a
low temperature that warms up over the first part of the run; the student's scores use a fixed higher temperature. The
centre and the current teacher temperature are buffers, so ``pretext.state_dict()`` resumes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.distributed import all_reduce_sum, world_size
from trainer.pretexts.base import Encoder
from trainer.pretexts.ema import EMAConfig, EMATeacherPretext
from trainer.schedules import TeacherTemperature


@dataclass
class ClusteringConfig(EMAConfig):
    """DINO-style clustering hyperparameters (temperatures and centre as in Meseguer-Brocal et al. 2024)."""

    projector_widths: tuple[int, ...] = (1024, 256)
    """MLPHead widths up to the bottleneck before the prototypes."""
    num_prototypes: int = 4096
    normalize_bottleneck: bool = True
    """True: DINO's head, the bottleneck L2-normalised and scored against unit-norm prototypes (cosine);
    False: deezer's ``Head(projector_widths + [num_prototypes])`` (ssl_framework/selfsupervised_models.py
    ``SSLClustering``), where the bottleneck is a Linear+BN+ReLU block and the prototypes a plain Linear."""
    student_temperature: float = 0.1
    teacher_temperature_start: float = 0.02
    teacher_temperature: float = 0.04
    teacher_temperature_warmup_fraction: float = 0.01
    """Length of the linear warm-up of the teacher temperature, as a fraction of the run (the paper: 10 of 1000
    epochs, 5120 steps; a fixed length would keep a short run at the start temperature all along)."""
    center_momentum: float = 0.9


class PrototypeHead(nn.Module):
    """Projector to a bottleneck, L2 normalisation, then cosine scores against K unit-norm prototypes."""

    def __init__(self, projector: nn.Module, bottleneck_dim: int, num_prototypes: int) -> None:
        super().__init__()
        self.projector = projector
        self.prototypes = nn.Linear(bottleneck_dim, num_prototypes, bias=False)

    def forward(self, embedding: Tensor) -> Tensor:
        """(N, D) embeddings -> (N, K) scores in [-1, 1] (DINO's weight-normalised last layer with g = 1)."""
        bottleneck = F.normalize(self.projector(embedding), dim=-1)
        return F.linear(bottleneck, F.normalize(self.prototypes.weight, dim=-1))


def clustering_loss(student_scores: Tensor, teacher_probabilities: Tensor, student_temperature: float) -> Tensor:
    """Cross-entropy of each view's student softmax against the teacher's distribution for the other view.

    ``-sum_k q_{i,other}(k) log softmax(s_{i,v} / t_s)(k)``, averaged over pairs and both directions.
    """
    log_student = F.log_softmax(student_scores / student_temperature, dim=-1)
    return -(teacher_probabilities.flip(1) * log_student).sum(dim=-1).mean()


def usage_entropy(counts: Tensor) -> float:
    """Entropy (nats) of the prototype assignment histogram ``counts``; log K when all are used equally."""
    probabilities = counts.double() / counts.sum()
    return float(-(probabilities * probabilities.clamp_min(1e-30).log()).sum())


class Clustering(EMATeacherPretext):
    """DINO-style self-distillation onto K prototypes with teacher centering and sharpening."""

    name = "clustering"
    Config = ClusteringConfig

    def __init__(self, backbone: nn.Module, config: ClusteringConfig | None = None) -> None:
        super().__init__(backbone, config)
        self.register_buffer("center", torch.zeros(self.config.num_prototypes))
        self.register_buffer("teacher_temperature", torch.tensor(self.temperature_at(0, total_steps=1)))
        self.assignments: Tensor | None = None
        """The teacher's hard prototype choices (B, 2) of this rank's last batch, counted only when reported."""

    def build_student(self, backbone: nn.Module) -> Encoder:
        config = self.config
        if not config.normalize_bottleneck:
            return Encoder(
                backbone, self.mlp_head(backbone.embed_dim, (*config.projector_widths, config.num_prototypes))
            )
        projector = self.mlp_head(backbone.embed_dim)
        return Encoder(backbone, PrototypeHead(projector, projector.out_dim, config.num_prototypes))

    def temperature_at(self, step: int, total_steps: int) -> float:
        """Teacher temperature used by the loss of optimiser step ``step`` of ``total_steps``."""
        config = self.config
        schedule = TeacherTemperature(
            config.teacher_temperature_warmup_fraction * total_steps,
            config.teacher_temperature_start,
            config.teacher_temperature,
        )
        return schedule(step)

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        teacher_scores = self.teacher_outputs(views)
        teacher_probabilities = F.softmax((teacher_scores - self.center) / self.teacher_temperature, dim=-1)
        loss = clustering_loss(outputs, teacher_probabilities, self.config.student_temperature)
        if self.training:
            self.update_center(teacher_scores)
        self.assignments = teacher_probabilities.argmax(dim=-1)  # no bincount here: its size needs a host sync
        return loss, {"cross_entropy": loss, "teacher_temperature": self.teacher_temperature.clone()}

    @torch.no_grad()
    def update_center(self, teacher_scores: Tensor) -> None:
        """center <- m * center + (1 - m) * mean teacher score over both views of the global batch."""
        total = all_reduce_sum(teacher_scores.sum(dim=(0, 1)))
        count = 2 * teacher_scores.shape[0] * world_size()
        self.center.lerp_(total / count, 1.0 - self.config.center_momentum)

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """EMA update of the teacher, then the teacher temperature for the next step."""
        super().after_optimizer_step(step, total_steps)
        self.teacher_temperature.fill_(self.temperature_at(step + 1, total_steps))

    def extra_metrics(self) -> dict[str, float]:
        """Usage of the prototypes by the teacher's hard assignments over the last global batch (call it on
        every rank: it sums the counts over ranks)."""
        if self.assignments is None:
            return {}
        counts = all_reduce_sum(torch.bincount(self.assignments.flatten(), minlength=self.config.num_prototypes))
        return {"prototypes_in_use": float((counts > 0).sum()), "prototype_usage_entropy": usage_entropy(counts)}
