"""What every pretext shares: the output record, the trained network, the two-view forward, the base class.

A pretext turns a batch of positive pairs ``views`` (B, 2, T) into a loss. Subclasses only build their
``student`` and implement :meth:`Pretext.objective`; this module runs the student on the 2B crops in one
forward and hands back the projector outputs as (B, 2, P). Losses run in fp32 with autocast turned off; EMA
teacher passes run in the caller's precision from their fp32 weights. Losses follow the gradient convention
of :mod:`trainer.distributed`: the mean over ranks of the per-rank losses equals the single-process loss.

Under DDP on GPUs convert the whole pretext, ``convert_sync_batchnorm(pretext)``, before wrapping the
student, so that EMA teachers with BatchNorm also normalise over the global batch.

Step convention for :meth:`Pretext.after_optimizer_step`: ``step`` is the 0-based index of the optimiser step
that has just been taken (0 after the first step) and ``total_steps`` the length of the run; schedules are
closed-form in the step, and whatever they feed into the next ``compute_loss`` is kept in buffers so that
``pretext.state_dict()`` is enough to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from musicssl.trainer.heads import MLPHead


@dataclass
class PretextOutput:
    """Result of one loss computation: the loss to back-propagate, detached terms to log, the embeddings."""

    loss: Tensor
    """Scalar, differentiable."""
    terms: dict[str, Tensor]
    """Detached scalars for logging (the loss's components, schedule values)."""
    embeddings: Tensor
    """(B, 2, D) backbone embeddings of the two views, detached (for collapse diagnostics)."""


@dataclass
class ProjectorConfig:
    """Projector shape shared by every pretext's config."""

    projector_widths: tuple[int, ...] = (1024, 2048)
    """MLPHead widths after the backbone: hidden Linear+BN+ReLU blocks, then a last Linear (the paper)."""
    projector_batch_norm: bool = True
    """BatchNorm in the hidden blocks (SyncBatchNorm under DDP); off for CLMR's projector and CPU multi-process
    tests."""
    projector_hidden_bias: bool | None = None
    """Bias in the hidden Linears; None: only without BatchNorm (CLMR's projector has none: False)."""


class Encoder(nn.Module):
    """Backbone, projector and optional predictor: ``forward`` gives (embedding, head output)."""

    def __init__(self, backbone: nn.Module, projector: nn.Module, predictor: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.predictor = predictor

    def forward(self, waveforms: Tensor) -> tuple[Tensor, Tensor]:
        """Map (N, T) waveforms to their (N, D) embeddings and (N, P) projector (then predictor) outputs."""
        embedding = self.backbone(waveforms)
        output = self.projector(embedding)
        if self.predictor is not None:
            output = self.predictor(output)
        return embedding, output


def run_on_both_views(network: nn.Module, views: Tensor) -> tuple[Tensor, Tensor]:
    """Run an Encoder (or its DDP wrapper) on the 2B crops in one forward; return (B, 2, D) and (B, 2, P)."""
    batch = views.shape[0]
    crops = views.transpose(0, 1).reshape(2 * batch, *views.shape[2:])
    embedding, output = network(crops)
    return _pairs(embedding, batch), _pairs(output, batch)


def _pairs(flat: Tensor, batch: int) -> Tensor:
    """Undo the view-major flattening: (2B, F) -> (B, 2, F)."""
    return flat.reshape(2, batch, -1).transpose(0, 1)


class Pretext(nn.Module):
    """A self-supervised objective over pairs: owns the student (what the optimiser trains) and any state."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, backbone: nn.Module, config: Any = None) -> None:
        super().__init__()
        if config is None:
            config = self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(
                f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}; "
                f"use build_pretext({self.name!r}, backbone, {{...}}) to build one from a dict"
            )
        if not isinstance(getattr(backbone, "embed_dim", None), int):
            raise ValueError(f"{type(self).__name__}: the backbone must have an int attribute `embed_dim`")
        self.config = config
        self.student = self.build_student(backbone)
        self.mixed_precision: tuple[bool, torch.dtype] = (False, torch.float32)
        """Autocast state of the caller of compute_loss, for teacher forwards (fp32 weights, fast compute)."""

    def build_student(self, backbone: nn.Module) -> Encoder:
        """The network the optimiser trains: backbone + projector (+ predictor / prototypes)."""
        raise NotImplementedError

    def objective(self, outputs: Tensor, views: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss and its logged terms from the student's (B, 2, P) outputs (``views`` for teacher passes)."""
        raise NotImplementedError

    def mlp_head(self, in_dim: int, widths: tuple[int, ...] | None = None) -> MLPHead:
        """An MLPHead (projector, predictor, ...) with this config's batch-norm and bias settings; ``widths``
        default: the projector widths."""
        widths = self.config.projector_widths if widths is None else widths
        config = self.config
        return MLPHead(
            in_dim, list(widths), batch_norm=config.projector_batch_norm, hidden_bias=config.projector_hidden_bias
        )

    def compute_loss(self, views: Tensor, student: nn.Module | None = None) -> PretextOutput:
        """Loss on a (B, 2, T) batch of pairs; pass the DDP-wrapped student when distributed."""
        if views.dim() < 3 or views.shape[1] != 2 or views.shape[0] < 2:
            raise ValueError(f"{self.name}: views must be (B, 2, T) with B >= 2 pairs, got shape {tuple(views.shape)}")
        embeddings, outputs = run_on_both_views(self.student if student is None else student, views)
        device = views.device.type
        self.mixed_precision = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        with torch.autocast(device, enabled=False):  # losses in fp32; teachers re-enter mixed_precision
            loss, terms = self.objective(outputs.float(), views)
        terms = {name: value.detach() for name, value in terms.items()}
        return PretextOutput(loss=loss, terms=terms, embeddings=embeddings.detach())

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Update EMA teachers and schedules after optimiser step ``step`` (0-based) of ``total_steps``."""

    def extra_metrics(self) -> dict[str, float]:
        """Method-specific health metrics for the last batch (e.g. prototype usage); none by default.
        Called on every rank at the same step, so it may use collectives."""
        return {}
