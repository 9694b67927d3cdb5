"""The CLMR augmentation chain: eight effects in CLMR's order, each applied to a per-crop random subset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from musicssl.trainer.augment.amplitude import Gain, PolarityInversion, RandomCrop, WhiteNoise
from musicssl.trainer.augment.config import AugmentConfig
from musicssl.trainer.augment.delay import Delay
from musicssl.trainer.augment.filters import HighLowPass
from musicssl.trainer.augment.pitch import PitchShift
from musicssl.trainer.augment.reverb import Reverb
from musicssl.trainer.augment.sampling import bernoulli

Effect = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Stage:
    """One step of the chain: an effect applied to each crop independently with `probability`."""

    name: str
    probability: float
    effect: Effect


def build_stages(config: AugmentConfig) -> list[Stage]:
    """The eight stages in CLMR's order (crop, polarity, noise, gain, filter, delay, pitch, reverb)."""
    return [
        Stage("crop", 1.0, RandomCrop(config.crop_samples)),
        Stage("polarity", config.polarity_p, PolarityInversion()),
        Stage("noise", config.noise_p, WhiteNoise(config.noise_snr_db)),
        Stage("gain", config.gain_p, Gain(config.gain_db)),
        Stage(
            "filter",
            config.filter_p,
            HighLowPass(
                config.sample_rate,
                config.highpass_share,
                config.highpass_cutoff_hz,
                config.lowpass_cutoff_hz,
                config.filter_transition,
            ),
        ),
        Stage("delay", config.delay_p, Delay(config.sample_rate, config.delay_ms, config.delay_mix)),
        Stage("pitch", config.pitch_p, PitchShift(config.pitch_semitones, config.pitch_n_fft)),
        Stage(
            "reverb",
            config.reverb_p,
            Reverb(
                config.sample_rate,
                config.reverb_room_size,
                config.reverb_reverberance,
                config.reverb_damping,
                config.reverb_ir_seconds,
                config.reverb_wet_gain,
            ),
        ),
    ]


def apply_stage(stage: Stage, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Run `stage` on the crops that draw it (all when its probability is 1); the others pass unchanged."""
    if stage.probability >= 1:
        return stage.effect(waveforms, generator)
    chosen = bernoulli(waveforms.shape[0], stage.probability, generator).nonzero().squeeze(1)
    if chosen.numel() == 0:
        return waveforms
    return waveforms.index_copy(0, chosen, stage.effect(waveforms.index_select(0, chosen), generator))


class AugmentationChain(nn.Module):
    """Batched CLMR chain: (N, T) float32 on any device -> (N, crop_samples), fresh draws for every crop.

    Randomness comes from the `generator` passed to forward, else from one the chain owns per device,
    seeded with `seed` (nondeterministic when None), so equal seeds give equal outputs.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None) -> None:
        super().__init__()
        self.config = config or AugmentConfig()
        self.stages = build_stages(self.config)
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator_for(self, device: torch.device) -> torch.Generator:
        """The chain's own generator on `device`, created (and seeded) on first use."""
        if device not in self._generators:
            generator = torch.Generator(device)
            if self.seed is None:
                generator.seed()
            else:
                generator.manual_seed(self.seed)
            self._generators[device] = generator
        return self._generators[device]

    def forward(self, waveforms: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment each row of (N, T) `waveforms` independently -> (N, crop_samples), computed in float32."""
        if waveforms.ndim != 2 or not waveforms.is_floating_point():
            raise ValueError(
                f"expected float waveforms of shape (N, T), got {tuple(waveforms.shape)} {waveforms.dtype}: "
                "flatten views first, e.g. pairs.reshape(-1, pairs.shape[-1])"
            )
        if generator is None:
            generator = self.generator_for(waveforms.device)
        if generator.device != waveforms.device:
            raise ValueError(
                f"generator is on {generator.device} but waveforms are on {waveforms.device}: "
                f"create it with torch.Generator({str(waveforms.device)!r})"
            )
        with torch.no_grad():
            output = waveforms.float()
            for stage in self.stages:
                output = apply_stage(stage, output, generator)
        return output.to(waveforms.dtype)
