"""FFT helpers shared by the filter and reverb effects: fast transform lengths and batched convolution."""

from __future__ import annotations

import torch


def fast_fft_length(minimum: int) -> int:
    """Smallest 2^a 3^b 5^c >= `minimum`: FFTs of such lengths are fast on every backend."""
    best = 1 << max(minimum - 1, 0).bit_length()
    power3 = 1
    while power3 < best:
        power35 = power3
        while power35 < best:
            candidate = power35
            while candidate < minimum:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 5
        power3 *= 3
    return best


def fft_convolve(signals: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution of each (M, T) `signals` row with its (M, K) `kernels` row -> (M, T)."""
    length = signals.shape[-1]
    n_fft = fast_fft_length(length + kernels.shape[-1] - 1)
    spectrum = torch.fft.rfft(signals, n=n_fft) * torch.fft.rfft(kernels, n=n_fft)
    return torch.fft.irfft(spectrum, n=n_fft)[:, :length]
