"""Echo: mix each crop with a copy of itself delayed by a per-crop choice of milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from musicssl.trainer.augment.sampling import choice


@dataclass(frozen=True)
class Delay:
    """Add a delayed copy scaled by `mix`, then halve, exactly as CLMR: (x + mix * delayed) / 2."""

    sample_rate: int
    delays_ms: tuple[float, ...]
    mix: float

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T); the delayed copy starts with zeros for the first `delay` samples."""
        count, length = waveforms.shape
        offsets = (choice(count, self.delays_ms, generator) * self.sample_rate / 1000).long()
        source = torch.arange(length, device=waveforms.device)[None, :] - offsets[:, None]
        delayed = waveforms.gather(1, source.clamp(min=0)) * (source >= 0)
        return (waveforms + self.mix * delayed) / 2
