"""Barlow Twins pretext: the cross-correlation of the two views' embeddings is pushed towards the identity."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainer.distributed import gather
from trainer.pretexts.base import Encoder, Pretext, ProjectorConfig


@dataclass
class BarlowTwinsConfig(ProjectorConfig):
    """Barlow Twins hyperparameters (Zbontar et al. 2021)."""

    off_diagonal_weight: float = 0.0051
    """lambda: weight of the redundancy-reduction (off-diagonal) term."""
    eps: float = 1e-5
    """Added to the variance when batch-normalising (BatchNorm1d's default)."""


def batch_normalise(x: Tensor, eps: float) -> Tensor:
    """Standardise each feature over the batch with the biased variance, as BatchNorm1d(affine=False) does."""
    centred = x - x.mean(dim=0)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0) + eps)


def barlow_twins_loss(projections: Tensor, off_diagonal_weight: float, eps: float = 1e-5) -> dict[str, Tensor]:
    """Terms of ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` with C the global-batch cross-correlation.

    ``projections`` is this rank's (B, 2, P); C = BN(z1)^T BN(z2) / N over the N gathered pairs. Returns
    ``loss``, ``on_diagonal`` and ``off_diagonal`` (unweighted); the loss is identical on every rank.
    """
    everyone = gather(projections)
    first, second = batch_normalise(everyone[:, 0], eps), batch_normalise(everyone[:, 1], eps)
    correlation = first.T @ second / everyone.shape[0]
    diagonal = torch.diagonal(correlation)
    on_diagonal = (1.0 - diagonal).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    loss = on_diagonal + off_diagonal_weight * off_diagonal
    return {"loss": loss, "on_diagonal": on_diagonal, "off_diagonal": off_diagonal}


class BarlowTwins(Pretext):
    """Barlow Twins over the global batch."""

    name = "barlow_twins"
    Config = BarlowTwinsConfig

    def build_student(self, backbone: nn.Module) -> Encoder:
        return Encoder(backbone, self.projector(backbone.embed_dim))

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        terms = barlow_twins_loss(outputs, self.config.off_diagonal_weight, self.config.eps)
        return terms.pop("loss"), terms
