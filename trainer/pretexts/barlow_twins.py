"""Barlow Twins pretext: the cross-correlation of the two views' embeddings is pushed towards the identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from musicssl.trainer.distributed import gather
from musicssl.trainer.pretexts.base import Encoder, Pretext, ProjectorConfig


@dataclass
class BarlowTwinsConfig(ProjectorConfig):
    """Barlow Twins hyperparameters (Zbontar et al. 2021)."""

    off_diagonal_weight: float = 0.0051
    """lambda: weight of the redundancy-reduction (off-diagonal) term."""
    eps: float = 1e-5
    """Added to the variance when batch-normalising (BatchNorm1d's default)."""
    variant: Literal["textbook", "deezer"] = "textbook"
    """textbook: facebookresearch/barlowtwins (sums over the diagonal and off-diagonal, C divided by N);
    deezer: its ``DiagonalLoss`` (ssl_framework/selfsupervised_losses.py): means over the diagonal and the
    off-diagonal entries, C divided by N - 1."""


def batch_normalise(x: Tensor, eps: float) -> Tensor:
    """Standardise each feature over the batch with the biased variance, as BatchNorm1d(affine=False) does."""
    centred = x - x.mean(dim=0)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0) + eps)


def barlow_twins_loss(
    projections: Tensor, off_diagonal_weight: float, eps: float = 1e-5, variant: str = "textbook"
) -> dict[str, Tensor]:
    """Terms of ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` with C the global-batch cross-correlation.

    ``projections`` is this rank's (B, 2, P); C = BN(z1)^T BN(z2) / N over the N gathered pairs. With
    ``variant="deezer"`` C is divided by N - 1 and both sums become means over their P and P (P - 1) entries.
    Returns ``loss``, ``on_diagonal`` and ``off_diagonal`` (unweighted); the loss is identical on every rank.
    """
    if variant not in ("textbook", "deezer"):
        raise ValueError(f"barlow_twins_loss: unknown variant {variant!r}; choose 'textbook' or 'deezer'")
    everyone = gather(projections)
    first, second = batch_normalise(everyone[:, 0], eps), batch_normalise(everyone[:, 1], eps)
    pairs, features = everyone.shape[0], everyone.shape[2]
    deezer = variant == "deezer"
    correlation = first.T @ second / (pairs - 1 if deezer else pairs)
    diagonal = torch.diagonal(correlation)
    on_diagonal = (1.0 - diagonal).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    if deezer:
        on_diagonal, off_diagonal = on_diagonal / features, off_diagonal / (features * (features - 1))
    loss = on_diagonal + off_diagonal_weight * off_diagonal
    return {"loss": loss, "on_diagonal": on_diagonal, "off_diagonal": off_diagonal}


class BarlowTwins(Pretext):
    """Barlow Twins over the global batch."""

    name = "barlow_twins"
    Config = BarlowTwinsConfig

    def build_student(self, backbone: nn.Module) -> Encoder:
        return Encoder(backbone, self.mlp_head(backbone.embed_dim))

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        terms = barlow_twins_loss(outputs, config.off_diagonal_weight, config.eps, config.variant)
        return terms.pop("loss"), terms
