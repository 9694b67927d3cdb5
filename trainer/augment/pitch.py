"""Duration-preserving pitch shift of a batch with per-crop amounts: a phase vocoder that moves STFT bins.

torchaudio's `pitch_shift` (time-stretch + polyphase resample, one ratio per call) takes ~20 s per 4 s clip
on CPU because an irrational ratio needs a huge resampling kernel. Here every output bin j reads the
magnitude at source bin j / ratio (linear interpolation) and advances its phase by ratio x the source bin's
instantaneous frequency, so a partial at f comes out at exactly ratio x f and the length is unchanged, like
CLMR's sox `pitch` effect; no resampling, one STFT/ISTFT pair for the batch. The price is the usual phase
vocoder smearing of transients (no phase locking between bins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from musicssl.trainer.augment.sampling import uniform


def wrap_phase(angles: torch.Tensor) -> torch.Tensor:
    """Map angles to [-pi, pi]."""
    return angles - (2 * math.pi) * torch.round(angles / (2 * math.pi))


def shift_spectrogram(spectrogram: torch.Tensor, ratios: torch.Tensor, hop: int, n_fft: int) -> torch.Tensor:
    """(M, F, K) complex STFT -> the STFT of each crop with every frequency multiplied by its ratio (M,)."""
    frames = spectrogram.transpose(1, 2).contiguous()  # (M, K, F): gathers along the last axis are fastest
    num_bins = frames.shape[-1]
    magnitude = frames.abs()
    phase = frames.angle()
    bins = torch.arange(num_bins, device=frames.device, dtype=magnitude.dtype)
    expected_advance = (2 * math.pi * hop / n_fft) * bins
    advance = expected_advance + wrap_phase(phase.diff(dim=1, prepend=phase[:, :1]) - expected_advance)

    source = bins[None, :] / ratios[:, None]
    inside = (source <= num_bins - 1)[:, None, :]
    lower = source.floor().clamp(max=num_bins - 1).long()
    upper = (lower + 1).clamp(max=num_bins - 1)
    weight = (source - lower)[:, None, :]
    nearest = source.round().clamp(max=num_bins - 1).long()

    def pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return values.gather(2, index[:, None, :].expand(-1, values.shape[1], -1))

    shifted_magnitude = torch.lerp(pick(magnitude, lower), pick(magnitude, upper), weight) * inside
    shifted_advance = pick(advance, nearest) * ratios[:, None, None]
    shifted_phase = torch.cumsum(shifted_advance, dim=1) - shifted_advance[:, :1] + pick(phase[:, :1], nearest)
    return torch.polar(shifted_magnitude, shifted_phase).transpose(1, 2)


@dataclass(frozen=True)
class PitchShift:
    """Shift each crop by semitones drawn uniformly in `semitones`, keeping its length and RMS level."""

    semitones: tuple[float, float]
    n_fft: int

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) pitch-shifted by a per-crop ratio 2^(semitones / 12)."""
        ratios = torch.pow(2.0, uniform(waveforms.shape[0], self.semitones, generator) / 12)
        return self.shift(waveforms, ratios)

    def shift(self, waveforms: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
        """(M, T) -> (M, T) with every frequency multiplied by its row's ratio (M,)."""
        hop = self.n_fft // 4
        window = torch.hann_window(self.n_fft, device=waveforms.device)
        spectrogram = torch.stft(waveforms, self.n_fft, hop, window=window, return_complex=True)
        shifted = shift_spectrogram(spectrogram, ratios, hop, self.n_fft)
        output = torch.istft(shifted, self.n_fft, hop, window=window, length=waveforms.shape[-1])
        level = waveforms.pow(2).mean(dim=1).sqrt() / output.pow(2).mean(dim=1).sqrt().clamp(min=1e-8)
        return output * level[:, None]
