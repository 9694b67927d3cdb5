"""Reverb by FFT convolution with a generated room response whose decay follows sox's reverb parameters.

CLMR calls sox `reverb reverberance hf-damping room-scale` (freeverb: 8 feedback combs with a one-pole
low-pass in the loop, then 4 all-passes). Running sox per crop cannot be batched on a device, so the
response is modelled instead: Gaussian noise whose spectrogram decays at, per frequency, the rate of a
freeverb comb with sox's mapping of the three percentages:
  room scale -> comb loop of 31.25 ms x (0.1 + 0.9 room/100) (freeverb's mean comb length),
  reverberance -> loop feedback g from 0.3 to 0.98 (sox's formula),
  hf-damping -> one-pole coefficient 0.2 + 0.3 damping/100, so highs die faster.
The tail starts one loop after the direct sound, is cut at `ir_seconds`, and carries wet_gain x g^2/(1-g^2)
of the dry energy (a comb's echo-to-direct energy ratio), so more reverberance also means a louder tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from musicssl.trainer.augment.fft import fft_convolve
from musicssl.trainer.augment.sampling import uniform

MEAN_COMB_SECONDS = 1378 / 44100
IR_N_FFT = 512
IR_HOP = 128


def comb_feedback(reverberance: torch.Tensor) -> torch.Tensor:
    """sox's map of reverberance (0-100 %) to comb feedback: 0.3 at 0 %, 0.98 at 100 %, exponential"""
    a = -1 / math.log(1 - 0.3)
    b = 100 / (math.log(1 - 0.98) * a + 1)
    return 1 - torch.exp((reverberance - b) / (a * b))


def decay_rates(
    frequencies: torch.Tensor, feedback: torch.Tensor, damping: torch.Tensor, loop_seconds: torch.Tensor
) -> torch.Tensor:
    """(M, F) amplitude decay in nepers per second of a damped comb: -ln|loop gain(f)| / loop length."""
    omega = 2 * math.pi * frequencies[None, :]
    d = damping[:, None]
    lowpass = (1 - d) / torch.sqrt(1 - 2 * d * torch.cos(omega) + d * d)
    return -torch.log(feedback[:, None] * lowpass) / loop_seconds[:, None]


def room_responses(
    sample_rate: int,
    num_samples: int,
    room_size: torch.Tensor,
    reverberance: torch.Tensor,
    damping: torch.Tensor,
    wet_gain: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(M, num_samples) impulse responses: a unit direct path plus a decaying, damped noise tail."""
    count = room_size.shape[0]
    loop_seconds = MEAN_COMB_SECONDS * (0.1 + 0.9 * room_size / 100)
    feedback = comb_feedback(reverberance)
    frequencies = torch.fft.rfftfreq(IR_N_FFT, device=room_size.device)  # cycles per sample
    rates = decay_rates(frequencies, feedback, 0.2 + 0.3 * damping / 100, loop_seconds)
    num_frames = num_samples // IR_HOP + 1
    frame_seconds = torch.arange(num_frames, device=room_size.device) * (IR_HOP / sample_rate)
    envelope = torch.exp(-rates[..., None] * frame_seconds)  # (M, F, K)
    noise = torch.randn((count, *envelope.shape[1:], 2), generator=generator, device=generator.device)
    window = torch.hann_window(IR_N_FFT, device=room_size.device)
    tail = torch.istft(torch.view_as_complex(noise) * envelope, IR_N_FFT, IR_HOP, window=window, length=num_samples)
    onset = (loop_seconds * sample_rate).long()
    tail = tail * (torch.arange(num_samples, device=tail.device)[None, :] >= onset[:, None])
    wet_energy = wet_gain * feedback**2 / (1 - feedback**2)
    tail = tail * torch.sqrt(wet_energy / tail.pow(2).sum(dim=1).clamp(min=1e-12))[:, None]
    tail[:, 0] += 1
    return tail


@dataclass(frozen=True)
class Reverb:
    """Convolve each crop with its own room response; room size, reverberance, damping drawn per crop."""

    sample_rate: int
    room_size: tuple[float, float]
    reverberance: tuple[float, float]
    damping: tuple[float, float]
    ir_seconds: float
    wet_gain: float

    def __call__(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(M, T) -> (M, T) reverberated; the tail past the crop's end is cut like CLMR's fixed length."""
        count = waveforms.shape[0]
        responses = room_responses(
            self.sample_rate,
            round(self.ir_seconds * self.sample_rate),
            uniform(count, self.room_size, generator),
            uniform(count, self.reverberance, generator),
            uniform(count, self.damping, generator),
            self.wet_gain,
            generator,
        )
        return fft_convolve(waveforms, responses)
