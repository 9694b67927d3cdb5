"""High-pass or low-pass filtering with per-crop cutoffs, as zero-phase masks in the FFT domain."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from musicssl.trainer.augment.fft import fast_fft_length
from musicssl.trainer.augment.sampling import bernoulli, uniform

# Zero padding past the end so the filters' ringing (a few hundred samples) does not wrap around.
EDGE_PADDING = 2048


def pass_masks(
    frequencies: torch.Tensor, cutoffs: torch.Tensor, highpass: torch.Tensor, transition: float
) -> torch.Tensor:
    """(M, F) gains: 0 in stop band, 1 in pass band, raised cosine over cutoff x (1 -+ transition / 2)."""
    start = cutoffs[:, None] * (1 - transition / 2)
    stop = cutoffs[:, None] * (1 + transition / 2)
    position = ((frequencies[None, :] - start) / (stop - start)).clamp(0, 1)
    rising = 0.5 - 0.5 * torch.cos(math.pi * position)
    return torch.where(highpass[:, None], rising, 1 - rising)


@dataclass(frozen=True)
class HighLowPass:
    """Filter each crop with a high-pass (probability `highpass_share`) or else a low-pass at a random cutoff.

    CLMR uses julius' windowed-sinc FIR filters (linear phase, transition about half an octave wide);
    this is a zero-phase FFT mask with a raised-cosine transition of `transition` x cutoff, so equally
    scale-invariant and about as steep, at the cost of one rfft/irfft pair per batch.
    """

    sample_rate: int
    highpass_share: float
    highpass_cutoff_hz: tuple[float, float]
    lowpass_cutoff_hz: tuple[float, float]
    transition: float

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) filtered, each crop with its own filter type and cutoff."""
        count, length = waveforms.shape
        highpass = bernoulli(count, self.highpass_share, generator)
        cutoffs = torch.where(
            highpass,
            uniform(count, self.highpass_cutoff_hz, generator),
            uniform(count, self.lowpass_cutoff_hz, generator),
        )
        n_fft = fast_fft_length(length + EDGE_PADDING)
        frequencies = torch.fft.rfftfreq(n_fft, d=1 / self.sample_rate, device=waveforms.device)
        spectrum = torch.fft.rfft(waveforms, n=n_fft)
        spectrum *= pass_masks(frequencies, cutoffs, highpass, self.transition)
        return torch.fft.irfft(spectrum, n=n_fft)[:, :length]
