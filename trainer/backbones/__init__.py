"""Backbone registry: ``build_backbone(name, **kwargs)`` for the paper's ResNet and the thesis' SampleCNN.

Every backbone maps a (N, num_samples) float waveform to (N, embed_dim) and exposes the int attributes
``embed_dim``, ``sample_rate`` and ``num_samples``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trainer.backbones.resnet import PaperResNet
from trainer.backbones.samplecnn import SampleCNN

BACKBONES: dict[str, type[nn.Module]] = {"resnet": PaperResNet, "samplecnn": SampleCNN}


def build_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name`` with its constructor keyword arguments."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


__all__ = ["BACKBONES", "PaperResNet", "SampleCNN", "build_backbone"]
