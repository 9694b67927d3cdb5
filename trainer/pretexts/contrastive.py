"""Contrastive pretext (SimCLR NT-Xent): each crop must find its pair among all crops of the global batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicssl.trainer.distributed import gather, rank
from musicssl.trainer.pretexts.base import Encoder, Pretext, ProjectorConfig


@dataclass
class ContrastiveConfig(ProjectorConfig):
    """NT-Xent hyperparameters (Meseguer-Brocal et al. 2024: cosine similarity, temperature 0.1)."""

    temperature: float = 0.1


def nt_xent_loss(projections: Tensor, temperature: float) -> Tensor:
    """NT-Xent on (B, 2, P) local projections; candidates are the other 2N - 1 crops of the global batch.

    For anchor crop a with positive p: ``-log(exp(cos(a, p) / t) / sum_{k != a} exp(cos(a, k) / t))``,
    averaged over this rank's 2B anchors (the mean over ranks is the global mean, see trainer.distributed).
    """
    local = F.normalize(projections, dim=-1)
    everyone = gather(local)
    batch, total = local.shape[0], everyone.shape[0]
    anchors = local.transpose(0, 1).reshape(2 * batch, -1)
    candidates = everyone.transpose(0, 1).reshape(2 * total, -1)
    logits = anchors @ candidates.T / temperature
    # global index of local crop (view v, sample i) in the view-major candidate list
    sample = rank() * batch + torch.arange(batch, device=local.device)
    own = torch.cat([sample, sample + total])
    positive = torch.cat([sample + total, sample])
    logits = logits.masked_fill(F.one_hot(own, 2 * total).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


class Contrastive(Pretext):
    """NT-Xent over in-batch negatives gathered from every rank."""

    name = "contrastive"
    Config = ContrastiveConfig

    def build_student(self, backbone: nn.Module) -> Encoder:
        return Encoder(backbone, self.mlp_head(backbone.embed_dim))

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss = nt_xent_loss(outputs, self.config.temperature)
        return loss, {"nt_xent": loss}
