"""Loudness measures, the silence and length checks, and normalisation of decoded audio.

Normalisation modes (`--normalise`):
- `peak` (default): scale so the largest absolute sample is -1 dBFS (0.891), leaving headroom for PCM16.
- `rms`: scale so the RMS level is -20 dBFS, then lower the gain if needed so the peak stays at or below
  -1 dBFS; quiet and loud masters end up at a similar loudness without clipping.
- `none`: keep the decoded level (samples beyond full scale are clipped when stored as PCM16).
Silence is judged before normalising, on the decoded level: RMS below `silence_dbfs` (-60 dBFS default).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

Normalisation = Literal["peak", "rms", "none"]
NORMALISATIONS: tuple[str, ...] = get_args(Normalisation)
PEAK_TARGET_DBFS = -1.0
RMS_TARGET_DBFS = -20.0


def db_to_amplitude(db: float) -> float:
    """Linear amplitude of a level in dBFS."""
    return float(10.0 ** (db / 20.0))


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def content_problem(wave: np.ndarray, sample_rate: int, min_duration_s: float, silence_dbfs: float) -> str | None:
    """The skip reason for audio that decodes but cannot serve as a training track, else None."""
    duration_s = len(wave) / sample_rate
    if duration_s < min_duration_s:
        return f"too short for a pair: {duration_s:.2f} s < {min_duration_s:g} s"
    level = rms_dbfs(wave)
    if level < silence_dbfs:
        return f"silent: RMS {level:.1f} dBFS < {silence_dbfs:g} dBFS"
    return None


def normalise(wave: np.ndarray, mode: str) -> np.ndarray:
    """Scale a waveform according to `mode` (see the module docstring)."""
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalisation {mode!r} is unknown; use one of {', '.join(NORMALISATIONS)}")
    if mode == "none":
        return wave
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak == 0.0:
        return wave
    peak_gain = db_to_amplitude(PEAK_TARGET_DBFS) / peak
    if mode == "peak":
        return wave * np.float32(peak_gain)
    rms_gain = db_to_amplitude(RMS_TARGET_DBFS - rms_dbfs(wave))
    return wave * np.float32(min(rms_gain, peak_gain))
