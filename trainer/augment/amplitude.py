"""Sample-wise effects: random crop, polarity inversion, white noise at a given SNR, gain in dB."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from musicssl.trainer.augment.sampling import uniform


@dataclass(frozen=True)
class RandomCrop:
    """Cut a window of `num_samples` at a per-crop random offset (CLMR's RandomResizedCrop)."""

    num_samples: int

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(N, T) -> (N, num_samples); the identity when T already equals num_samples."""
        count, length = waveforms.shape
        if length < self.num_samples:
            raise ValueError(
                f"waveforms have {length} samples but the crop needs {self.num_samples}: "
                "stream longer segments or lower AugmentConfig.crop_samples"
            )
        if length == self.num_samples:
            return waveforms
        starts = torch.randint(length - self.num_samples + 1, (count, 1), generator=generator, device=generator.device)
        offsets = torch.arange(self.num_samples, device=waveforms.device)
        return waveforms.gather(1, starts + offsets)


@dataclass(frozen=True)
class PolarityInversion:
    """Flip the sign of the waveform (no parameters)."""

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) negated."""
        return -waveforms


@dataclass(frozen=True)
class WhiteNoise:
    """Add Gaussian noise whose std is the crop's std lowered by an SNR drawn in `snr_db`."""

    snr_db: tuple[float, float]

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) plus noise at a per-crop SNR."""
        count = waveforms.shape[0]
        snr = uniform(count, self.snr_db, generator)
        noise_std = waveforms.std(dim=1) * torch.pow(10.0, -snr / 20)
        noise = torch.randn(waveforms.shape, generator=generator, device=generator.device)
        return waveforms + noise * noise_std[:, None]


@dataclass(frozen=True)
class Gain:
    """Scale each crop by a gain drawn uniformly in `gain_db` decibels."""

    gain_db: tuple[float, float]

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) scaled by 10^(dB/20)."""
        gain = uniform(waveforms.shape[0], self.gain_db, generator)
        return waveforms * torch.pow(10.0, gain / 20)[:, None]
