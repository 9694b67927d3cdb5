"""Parameters of the CLMR augmentation chain; the defaults are the thesis (Hesse & Löf 2023) values."""

from __future__ import annotations

from dataclasses import dataclass, fields

import tyro

Range = tuple[float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and parameter ranges of the eight CLMR waveform augmentations, in chain order.

    Each `*_p` is the probability that one crop gets that effect; each range is `(low, high)`, sampled
    uniformly per crop. trainer/augment/README.md gives the sources and the deviations from CLMR's code.
    """

    sample_rate: tyro.conf.Suppress[int] = 22050
    """Waveform rate in Hz (the thesis' SampleCNN: 22.05 kHz); training sets the backbone's, so it is no flag."""
    crop_samples: tyro.conf.Suppress[int] = 59049
    """Length of the random crop, the chain's output length (3^10, SampleCNN's input); training sets the
    backbone's input length, so it is no flag."""
    polarity_p: float = 0.8
    """Probability of inverting the polarity."""
    noise_p: float = 0.01
    """Probability of adding white noise."""
    noise_snr_db: Range = (80.0, 80.0)
    """Signal-to-noise ratio of the white noise in dB, drawn in (low, high)."""
    gain_p: float = 0.3
    """Probability of a gain change."""
    gain_db: Range = (-6.0, 0.0)
    """Gain in dB, drawn in (low, high)."""
    filter_p: float = 0.8
    """Probability of a high-pass or low-pass filter."""
    highpass_share: float = 0.5
    """Probability that a filtered crop gets the high-pass (else the low-pass)."""
    highpass_cutoff_hz: Range = (200.0, 1200.0)
    """High-pass cutoff in Hz, drawn in (low, high)."""
    lowpass_cutoff_hz: Range = (2200.0, 4000.0)
    """Low-pass cutoff in Hz, drawn in (low, high)."""
    filter_transition: float = 0.5
    """Width of the filters' transition band as a fraction of the cutoff."""
    delay_p: float = 0.3
    """Probability of an echo."""
    delay_ms: tuple[float, ...] = (200.0, 250.0, 300.0, 350.0, 400.0, 450.0)
    """Echo delays in ms, one drawn uniformly (CLMR's np.arange(200, 500, 50))."""
    delay_mix: float = 0.5
    """Level of the echo before the (dry + echo) / 2 mix."""
    pitch_p: float = 0.6
    """Probability of a pitch shift."""
    pitch_semitones: Range = (-5.0, 5.0)
    """Pitch shift in semitones, drawn in (low, high)."""
    pitch_n_fft: int = 1024
    """STFT size of the pitch-shifting phase vocoder (hop n_fft / 4)."""
    reverb_p: float = 0.6
    """Probability of reverb."""
    reverb_room_size: Range = (0.0, 100.0)
    """sox room scale in %, drawn in (low, high)."""
    reverb_reverberance: Range = (0.0, 100.0)
    """sox reverberance in %, drawn in (low, high)."""
    reverb_damping: Range = (0.0, 100.0)
    """sox high-frequency damping in %, drawn in (low, high)."""
    reverb_ir_seconds: float = 1.0
    """Length of the generated room impulse responses in seconds."""
    reverb_wet_gain: float = 0.25
    """Reverb tail energy relative to the dry sound, times a comb's g^2 / (1 - g^2)."""

    def __post_init__(self) -> None:
        """Reject values that would silently produce wrong audio, naming the field and the fix."""
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_p") or field.name == "highpass_share":
                _check(0.0 <= value <= 1.0, field.name, value, "a probability in [0, 1]")
            elif field.type == "Range":
                _check(len(value) == 2 and value[0] <= value[1], field.name, value, "a (low, high) pair")
        nyquist = self.sample_rate / 2
        _check(self.sample_rate > 0, "sample_rate", self.sample_rate, "a positive rate in Hz")
        _check(self.crop_samples > 0, "crop_samples", self.crop_samples, "a positive number of samples")
        for name in ("highpass_cutoff_hz", "lowpass_cutoff_hz"):
            low, high = getattr(self, name)
            _check(low > 0 and high < nyquist, name, (low, high), f"cutoffs inside (0, {nyquist}) Hz")
        _check(0 < self.filter_transition < 2, "filter_transition", self.filter_transition, "a ratio in (0, 2)")
        delays_fit = all(0 < ms * self.sample_rate / 1000 < self.crop_samples for ms in self.delay_ms)
        _check(
            self.delay_p == 0 or (len(self.delay_ms) > 0 and delays_fit),
            "delay_ms",
            self.delay_ms,
            f"positive delays shorter than one crop ({self.crop_samples} samples), or delay_p=0",
        )
        _check(
            self.pitch_p == 0 or 16 <= self.pitch_n_fft < self.crop_samples,
            "pitch_n_fft",
            self.pitch_n_fft,
            f"an FFT size from 16 to below crop_samples ({self.crop_samples}), or pitch_p=0",
        )
        for name in ("reverb_room_size", "reverb_reverberance", "reverb_damping"):
            low, high = getattr(self, name)
            _check(low >= 0 and high <= 100, name, (low, high), "a range inside [0, 100] (sox percent)")
        _check(self.reverb_ir_seconds > 0, "reverb_ir_seconds", self.reverb_ir_seconds, "a positive length")
        _check(self.reverb_wet_gain >= 0, "reverb_wet_gain", self.reverb_wet_gain, "a non-negative gain")


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    """Raise a ValueError naming the config field, its bad value and what it should be."""
    if not ok:
        raise ValueError(f"AugmentConfig.{name}={value!r} is invalid: expected {expected}")
