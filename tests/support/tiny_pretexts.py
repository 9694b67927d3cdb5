"""A tiny backbone and small-headed pretexts on synthetic pairs, shared by the pretext and distributed tests."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from musicssl.trainer.pretexts import Pretext, build_pretext

EMBED_DIM = 8
SAMPLES = 64


class TinyBackbone(nn.Module):
    """A strided conv over (N, T) waveforms, mean+max pooled, then a Linear to ``embed_dim``."""

    def __init__(self, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.conv = nn.Conv1d(1, 8, kernel_size=9, stride=4)
        self.linear = nn.Linear(16, embed_dim)

    def forward(self, waveforms: Tensor) -> Tensor:
        hidden = torch.relu(self.conv(waveforms.unsqueeze(1)))
        return self.linear(torch.cat([hidden.mean(dim=-1), hidden.amax(dim=-1)], dim=-1))


COMMON = {"projector_widths": (16, 16), "projector_batch_norm": False}
TINY_CONFIGS: dict[str, dict[str, object]] = {  # small heads; a pretext with nothing more to shrink needs no entry
    "byol": {**COMMON, "predictor_widths": (8, 16), "momentum_start": 0.5},
    "clustering": {
        **COMMON,
        "projector_widths": (16, 8),
        "num_prototypes": 16,
        "teacher_temperature_warmup_fraction": 0.04,  # 4 steps of a 100-step run
        "momentum_start": 0.5,
    },
}


def tiny_pretext(name: str, seed: int = 0, **overrides: object) -> Pretext:
    """Pretext ``name`` around a TinyBackbone with small heads, initialised from ``seed``."""
    torch.manual_seed(seed)
    return build_pretext(name, TinyBackbone(), {**TINY_CONFIGS.get(name, COMMON), **overrides})


def synthetic_pairs(batch: int, generator: torch.Generator, samples: int = SAMPLES) -> Tensor:
    """(batch, 2, samples) pairs: both views share a pair's frequency, each has its own phase and noise."""
    frequency = torch.randint(1, 8, (batch, 1, 1), generator=generator).float()
    phase = 2 * math.pi * torch.rand(batch, 2, 1, generator=generator)
    time = torch.arange(samples).float() / samples
    noise = 0.05 * torch.randn(batch, 2, samples, generator=generator)
    return torch.sin(2 * math.pi * frequency * time + phase) + noise
