"""BYOL pretext: the student's prediction of one view regresses the EMA teacher's projection of the other."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from musicssl.trainer.pretexts.base import Encoder
from musicssl.trainer.pretexts.ema import EMAConfig, EMATeacherPretext


@dataclass
class BYOLConfig(EMAConfig):
    """BYOL hyperparameters (Grill et al. 2020; predictor as in Meseguer-Brocal et al. 2024)."""

    predictor_widths: tuple[int, ...] = (256, 2048)
    """Predictor MLPHead widths; the last must equal the projector's output width."""


def byol_loss(predictions: Tensor, targets: Tensor) -> Tensor:
    """Symmetric normalised MSE: ``||p1/|p1| - z2/|z2| ||^2 + ||p2/|p2| - z1/|z1| ||^2``, mean over pairs.

    ``predictions`` (student) and ``targets`` (teacher, no gradient) are (B, 2, P); each term is 2 - 2 cos.
    """
    predictions = F.normalize(predictions, dim=-1)
    targets = F.normalize(targets.detach(), dim=-1).flip(1)
    return (predictions - targets).pow(2).sum(dim=-1).sum(dim=1).mean()


class BYOL(EMATeacherPretext):
    """BYOL with a cosine EMA momentum from 0.996 to 1 over the run (by default)."""

    name = "byol"
    Config = BYOLConfig

    def build_student(self, backbone: nn.Module) -> Encoder:
        projector = self.mlp_head(backbone.embed_dim)
        if self.config.predictor_widths[-1] != projector.out_dim:
            raise ValueError(
                f"byol: predictor_widths {self.config.predictor_widths} must end with the projector's "
                f"output width {projector.out_dim}"
            )
        return Encoder(backbone, projector, self.mlp_head(projector.out_dim, self.config.predictor_widths))

    def teacher_source(self) -> nn.Module:
        """The student without its predictor."""
        return Encoder(self.student.backbone, self.student.projector)

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss = byol_loss(outputs, self.teacher_outputs(views))
        return loss, {"byol": loss}
