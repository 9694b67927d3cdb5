"""VICReg pretext: invariance between views, variance kept above 1 and covariance decorrelated per feature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicssl.trainer.distributed import gather
from musicssl.trainer.pretexts.barlow_twins import batch_normalise
from musicssl.trainer.pretexts.base import Encoder, Pretext, ProjectorConfig


@dataclass
class VICRegConfig(ProjectorConfig):
    """VICReg hyperparameters (Bardes et al. 2022, facebookresearch/vicreg; 25 / 25 / 1, Hesse & Loef)."""

    invariance_weight: float = 25.0
    variance_weight: float = 25.0
    covariance_weight: float = 1.0
    eps: float = 1e-4
    """Added to the variance under the square root of the standard deviation."""
    variant: Literal["textbook", "deezer"] = "textbook"
    """textbook: facebookresearch/vicreg's terms; deezer: its ``FeatureStatsLoss`` (ssl_framework/
    selfsupervised_losses.py), whose covariance term is the mean squared off-diagonal correlation of the
    batch-normalised features, averaged over the two views instead of summed."""


def variance_term(x: Tensor, eps: float) -> Tensor:
    """Hinge ``mean_j relu(1 - sqrt(Var(x_j) + eps))`` with the unbiased variance over the batch."""
    return F.relu(1.0 - torch.sqrt(x.var(dim=0) + eps)).mean()


def covariance_term(x: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances over the number of features, ``sum_{i != j} C_ij^2 / P``."""
    centred = x - x.mean(dim=0)
    covariance = centred.T @ centred / (x.shape[0] - 1)
    return (covariance.pow(2).sum() - torch.diagonal(covariance).pow(2).sum()) / x.shape[1]


def deezer_covariance_term(x: Tensor, bn_eps: float = 1e-5) -> Tensor:
    """Mean squared off-diagonal entry of ``BN(x)^T BN(x) / (N - 1)``, deezer's ``FeatureStatsLoss.stats``
    (BatchNorm1d(affine=False) in training mode, so the batch's biased variance and eps 1e-5)."""
    normalised = batch_normalise(x, bn_eps)
    correlation = normalised.T @ normalised / (x.shape[0] - 1)
    features = x.shape[1]
    off_diagonal = correlation.pow(2).sum() - torch.diagonal(correlation).pow(2).sum()
    return off_diagonal / (features * (features - 1))


def vicreg_loss(
    projections: Tensor,
    invariance_weight: float,
    variance_weight: float,
    covariance_weight: float,
    eps: float,
    variant: str = "textbook",
) -> dict[str, Tensor]:
    """Terms of VICReg on the gathered (N, 2, P) projections, as facebookresearch/vicreg main_vicreg.py.

    invariance = MSE(z1, z2); variance = (v(z1) + v(z2)) / 2; covariance = c(z1) + c(z2), or with
    ``variant="deezer"`` (c'(z1) + c'(z2)) / 2 with c' = :func:`deezer_covariance_term`. Returns ``loss``
    (weighted sum) and the unweighted terms; every term uses the global batch, so the loss is the same on
    every rank.
    """
    everyone = gather(projections)
    first, second = everyone[:, 0], everyone[:, 1]
    invariance = F.mse_loss(first, second)
    variance = (variance_term(first, eps) + variance_term(second, eps)) / 2
    if variant == "deezer":
        covariance = (deezer_covariance_term(first) + deezer_covariance_term(second)) / 2
    elif variant == "textbook":
        covariance = covariance_term(first) + covariance_term(second)
    else:
        raise ValueError(f"vicreg_loss: unknown variant {variant!r}; choose 'textbook' or 'deezer'")
    loss = invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}


class VICReg(Pretext):
    """VICReg over the global batch."""

    name = "vicreg"
    Config = VICRegConfig

    def build_student(self, backbone: nn.Module) -> Encoder:
        return Encoder(backbone, self.mlp_head(backbone.embed_dim))

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        config = self.config
        terms = vicreg_loss(
            outputs,
            config.invariance_weight,
            config.variance_weight,
            config.covariance_weight,
            config.eps,
            config.variant,
        )
        return terms.pop("loss"), terms
