"""Per-crop random draws on the waveform's device from one torch.Generator, so a seed fixes a batch."""

from __future__ import annotations

import torch


def uniform(count: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Draw `count` float32 values uniformly in [low, high] on the generator's device."""
    low, high = bounds
    unit = torch.rand(count, generator=generator, device=generator.device)
    return low + (high - low) * unit


def bernoulli(count: int, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Draw `count` booleans that are True with `probability` each, on the generator's device."""
    return torch.rand(count, generator=generator, device=generator.device) < probability


def choice(count: int, values: tuple[float, ...], generator: torch.Generator) -> torch.Tensor:
    """Draw `count` values uniformly from the finite set `values`, on the generator's device."""
    table = torch.tensor(values, dtype=torch.float32, device=generator.device)
    index = torch.randint(len(values), (count,), generator=generator, device=generator.device)
    return table[index]
