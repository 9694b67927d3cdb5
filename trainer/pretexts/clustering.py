"""Clustering pretext (DINO-style): the student matches the EMA teacher's centred, sharpened prototype scores.

The teacher's scores are centred by a running mean over the global batch (momentum 0.9) and sharpened by a
low temperature that warms up over the first part of the run; the student's scores use a fixed higher temperature. The
centre and the current teacher temperature are buffers, so ``pretext.state_dict()`` resumes them. As an option
(``teacher_normalization = "sinkhorn"``, as in SwAV and DINOv2), a few Sinkhorn-Knopp iterations over the global
batch replace the centring: they spread the batch's targets evenly over the prototypes, so that a small batch
cannot settle on a few of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicssl.trainer.distributed import all_reduce_sum, world_size
from musicssl.trainer.pretexts.base import Encoder
from musicssl.trainer.pretexts.ema import EMAConfig, EMATeacherPretext
from musicssl.trainer.schedules import TeacherTemperature


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
    teacher_normalization: Literal["centering", "sinkhorn"] = "centering"
    """How the teacher's scores become targets: "centering" (DINO: minus the running centre, then a sharp
    softmax) or "sinkhorn" (SwAV, DINOv2: a sharp softmax balanced by Sinkhorn-Knopp so that every prototype gets
    an equal share of the global batch; the centre is then unused)."""
    sinkhorn_iterations: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sinkhorn_iterations < 1:
            raise ValueError(f"clustering.sinkhorn_iterations must be >= 1, got {self.sinkhorn_iterations}")


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


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, temperature: Tensor | float, iterations: int) -> Tensor:
    """(N, K) teacher scores of this rank -> (N, K) targets: ``exp(scores / t)`` scaled alternately so that every
    prototype's column sums to the same total over the global batch and every row to 1 (rows last, so the
    targets are distributions; the column balance is approximate after a few iterations, as in SwAV).

    Each row is shifted by its maximum before ``exp``: a per-row factor is undone by the row scaling.
    """
    logits = scores.float() / temperature
    targets = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    for _ in range(iterations):
        column_sums = all_reduce_sum(targets.sum(dim=0, keepdim=True))
        targets = targets / column_sums.clamp_min(torch.finfo(targets.dtype).tiny)
        targets = targets / targets.sum(dim=-1, keepdim=True)
    return targets


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
        teacher_probabilities = self.teacher_targets(self.teacher_outputs(views))
        loss = clustering_loss(outputs, teacher_probabilities, self.config.student_temperature)
        self.assignments = teacher_probabilities.argmax(dim=-1)  # no bincount here: its size needs a host sync
        return loss, {"cross_entropy": loss, "teacher_temperature": self.teacher_temperature.clone()}

    def teacher_targets(self, teacher_scores: Tensor) -> Tensor:
        """(B, 2, K) teacher scores -> (B, 2, K) target distributions, centred (updating the centre in training)
        or balanced by Sinkhorn-Knopp over both views of the global batch."""
        temperature = self.teacher_temperature
        if self.config.teacher_normalization == "sinkhorn":
            flat = teacher_scores.flatten(0, 1)
            return sinkhorn_knopp(flat, temperature, self.config.sinkhorn_iterations).view_as(teacher_scores)
        targets = F.softmax((teacher_scores - self.center) / temperature, dim=-1)
        if self.training:
            self.update_center(teacher_scores)
        return targets

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
