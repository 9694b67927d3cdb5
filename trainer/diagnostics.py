"""Collapse diagnostics on a batch of pair embeddings, cheap enough to log every few hundred steps.

A collapsed encoder maps every input to (nearly) the same point, or to a low-dimensional subspace. Signs:
per-dimension std of the L2-normalised embeddings near 0 (healthy: about 1 / sqrt(D)), an effective rank
near 1 (RankMe, Garrido et al. 2023: exp of the entropy of the normalised singular values), and negatives as
similar as positives. Prototype usage of the clustering pretext comes from ``Pretext.extra_metrics``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def effective_rank(embeddings: Tensor, eps: float = 1e-7) -> float:
    """RankMe of an (N, D) matrix: ``exp(-sum_k p_k log p_k)`` with ``p_k = s_k / sum s + eps``."""
    singular_values = torch.linalg.svdvals(embeddings.double())
    p = singular_values / singular_values.sum().clamp_min(1e-30) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def collapse_metrics(first: Tensor, second: Tensor) -> dict[str, float]:
    """Std per dimension (mean, min), effective rank and positive / negative cosine of two (B, D) views."""
    if first.dim() != 2 or first.shape != second.shape or first.shape[0] < 2:
        raise ValueError(
            "collapse_metrics expects the two views' embeddings as equal (B, D) tensors with B >= 2, got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    batch = first.shape[0]
    first, second = first.float(), second.float()
    normalised_first, normalised_second = F.normalize(first, dim=-1), F.normalize(second, dim=-1)
    std = torch.cat([normalised_first, normalised_second]).std(dim=0)
    cosine = normalised_first @ normalised_second.T
    off_pair = ~torch.eye(batch, dtype=torch.bool, device=cosine.device)
    return {
        "embedding_std_mean": float(std.mean()),
        "embedding_std_min": float(std.min()),
        "effective_rank": effective_rank(torch.cat([first, second])),
        "positive_cosine": float(torch.diagonal(cosine).mean()),
        "negative_cosine": float(cosine[off_pair].mean()),
    }
