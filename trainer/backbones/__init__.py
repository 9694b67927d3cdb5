"""The backbones, by name: ``build_backbone(name, **kwargs)`` for the paper's ResNet and the thesis' SampleCNN.

Every backbone is a `Backbone`: it maps a (N, num_samples) float waveform to (N, embed_dim) and exposes the int
attributes ``embed_dim``, ``sample_rate`` and ``num_samples``.
"""

from __future__ import annotations

from typing import Any

from musicssl.trainer.backbones.base import Backbone
from musicssl.trainer.backbones.resnet import PaperResNet
from musicssl.trainer.backbones.samplecnn import SampleCNN

BACKBONES: dict[str, type[Backbone]] = {cls.name: cls for cls in (PaperResNet, SampleCNN)}


def build_backbone(name: str, **kwargs: Any) -> Backbone:
    """Build the backbone registered as ``name`` with its constructor keyword arguments."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


__all__ = ["BACKBONES", "Backbone", "PaperResNet", "SampleCNN", "build_backbone"]
