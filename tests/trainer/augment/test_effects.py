"""Each CLMR effect does what it claims, measured on synthetic signals (sines, white noise, bursts)."""

from __future__ import annotations

import math

import pytest
import torch

from musicssl.trainer.augment.amplitude import Gain, PolarityInversion, RandomCrop, WhiteNoise
from musicssl.trainer.augment.delay import Delay
from musicssl.trainer.augment.filters import HighLowPass
from musicssl.trainer.augment.pitch import PitchShift
from musicssl.trainer.augment.reverb import Reverb

SAMPLE_RATE = 22050


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def white_noise(rows: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, length, generator=generator(seed))


def band_energy(waveforms: torch.Tensor, low_hz: float, high_hz: float) -> torch.Tensor:
    """Per-row spectral energy between two frequencies (Hann-windowed, so leakage stays far below -40 dB)."""
    power = torch.fft.rfft(waveforms * torch.hann_window(waveforms.shape[-1])).abs().pow(2)
    freqs = torch.fft.rfftfreq(waveforms.shape[-1], d=1 / SAMPLE_RATE)
    return power[:, (freqs >= low_hz) & (freqs < high_hz)].sum(dim=1)


def peak_frequency(waveforms: torch.Tensor) -> torch.Tensor:
    """Per-row frequency of the strongest spectral peak, finely resolved by zero padding."""
    n_fft = 1 << 18
    window = torch.hann_window(waveforms.shape[-1])
    spectrum = torch.fft.rfft(waveforms * window, n=n_fft).abs()
    return spectrum.argmax(dim=1).double() * SAMPLE_RATE / n_fft


def test_random_crop_takes_contiguous_windows_at_varied_offsets() -> None:
    ramp = torch.arange(1000.0).repeat(64, 1)
    crops = RandomCrop(100)(ramp, generator())
    assert crops.shape == (64, 100)
    assert torch.all(crops.diff(dim=1) == 1)
    starts = crops[:, 0]
    assert starts.min() >= 0 and starts.max() <= 900
    assert starts.unique().numel() > 32


def test_random_crop_rejects_short_input_naming_the_fix() -> None:
    with pytest.raises(ValueError, match="crop_samples"):
        RandomCrop(100)(torch.zeros(2, 50), generator())


def test_polarity_flips_the_sign() -> None:
    signal = white_noise(3, 256)
    assert torch.equal(PolarityInversion()(signal, generator()), -signal)


def test_gain_stays_in_range_and_spans_it() -> None:
    signal = torch.ones(500, 8)
    scaled = Gain((-6.0, 0.0))(signal, generator())
    gain_db = 20 * torch.log10(scaled[:, 0])
    assert torch.all(scaled == scaled[:, :1])
    assert gain_db.min() >= -6.0 - 1e-4 and gain_db.max() <= 1e-4
    assert gain_db.min() < -5.5 and gain_db.max() > -0.5


def test_white_noise_has_the_requested_snr() -> None:
    signal = white_noise(4, 50_000)
    noisy = WhiteNoise((80.0, 80.0))(signal, generator())
    snr_db = 20 * torch.log10(signal.std(dim=1) / (noisy - signal).std(dim=1))
    assert torch.allclose(snr_db, torch.full_like(snr_db, 80.0), atol=0.5)


def filter_with(highpass_share: float, cutoff_hz: float) -> HighLowPass:
    fixed = (cutoff_hz, cutoff_hz)
    return HighLowPass(SAMPLE_RATE, highpass_share, fixed, fixed, transition=0.5)


def test_low_pass_attenuates_above_the_cutoff() -> None:
    noise = white_noise(4, 16384)
    filtered = filter_with(0.0, 3000.0)(noise, generator())
    passed = band_energy(filtered, 100, 2000) / band_energy(noise, 100, 2000)
    stopped = band_energy(filtered, 4000, SAMPLE_RATE / 2) / band_energy(noise, 4000, SAMPLE_RATE / 2)
    assert torch.all(passed > 0.95)
    assert torch.all(stopped < 1e-4)


def test_high_pass_attenuates_below_the_cutoff() -> None:
    noise = white_noise(4, 16384)
    filtered = filter_with(1.0, 800.0)(noise, generator())
    passed = band_energy(filtered, 1200, SAMPLE_RATE / 2) / band_energy(noise, 1200, SAMPLE_RATE / 2)
    stopped = band_energy(filtered, 0, 550) / band_energy(noise, 0, 550)
    assert torch.all(passed > 0.95)
    assert torch.all(stopped < 1e-4)


def test_filter_type_is_drawn_per_crop() -> None:
    effect = HighLowPass(SAMPLE_RATE, 0.5, (200.0, 1200.0), (2200.0, 4000.0), transition=0.5)
    filtered = effect(white_noise(200, 4096), generator())
    is_highpass = band_energy(filtered, 0, 140) < band_energy(filtered, 5100, 11025)
    assert 70 < int(is_highpass.sum()) < 130


def autocorrelation(waveforms: torch.Tensor) -> torch.Tensor:
    spectrum = torch.fft.rfft(waveforms, n=2 * waveforms.shape[-1])
    return torch.fft.irfft(spectrum.abs().pow(2))[:, : waveforms.shape[-1]]


def test_delay_shows_an_autocorrelation_peak_at_the_delay() -> None:
    noise = white_noise(6, 16384)
    delayed = Delay(SAMPLE_RATE, (200.0, 300.0), mix=0.5)(noise, generator())
    lags = autocorrelation(delayed)[:, 50:].argmax(dim=1) + 50
    allowed = {int(200 * SAMPLE_RATE / 1000), int(300 * SAMPLE_RATE / 1000)}
    assert set(lags.tolist()) == allowed
    assert torch.allclose(delayed[:, :4410], noise[:, :4410] / 2)


def sines(frequencies_hz: list[float], length: int) -> torch.Tensor:
    time = torch.arange(length) / SAMPLE_RATE
    return torch.stack([torch.sin(2 * math.pi * f * time) for f in frequencies_hz])


@pytest.mark.parametrize("semitones", [-5.0, 3.0, 5.0])
def test_pitch_shift_moves_a_sine_by_the_ratio_and_keeps_length(semitones: float) -> None:
    tones = sines([440.0, 1000.0], 16384)
    shifted = PitchShift((semitones, semitones), n_fft=1024)(tones, generator())
    expected = torch.tensor([440.0, 1000.0], dtype=torch.float64) * 2 ** (semitones / 12)
    assert shifted.shape == tones.shape
    assert torch.all((peak_frequency(shifted) / expected - 1).abs() < 0.02)
    assert torch.allclose(shifted.std(dim=1), tones.std(dim=1), rtol=0.05)


def decay_time(waveforms: torch.Tensor, drop_db: float) -> torch.Tensor:
    """Seconds until the backward-integrated (Schroeder) energy falls `drop_db` below its total."""
    remaining = waveforms.pow(2).flip(1).cumsum(1).flip(1)
    level_db = 10 * torch.log10(remaining / remaining[:, :1] + 1e-30)
    return (level_db > -drop_db).sum(dim=1) / SAMPLE_RATE


def reverb(reverberance: float) -> Reverb:
    return Reverb(SAMPLE_RATE, (50.0, 50.0), (reverberance, reverberance), (50.0, 50.0), 1.0, 0.25)


def test_reverb_lengthens_the_decay_of_a_burst() -> None:
    burst = torch.zeros(3, 22050)
    burst[:, :441] = white_noise(3, 441)
    light = reverb(20.0)(burst, generator())
    heavy = reverb(100.0)(burst, generator())
    dry = decay_time(burst, 30.0)
    assert torch.all(dry <= 0.02)
    assert torch.all(decay_time(light, 30.0) > dry + 0.02)
    assert torch.all(decay_time(heavy, 30.0) > decay_time(light, 30.0) + 0.1)
    assert torch.allclose(heavy[:, 0], burst[:, 0])
