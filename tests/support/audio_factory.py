"""Test helper: write tiny real audio files (every supported format, via PyAV) and damaged ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicssl.data_prep.audio_files import ENCODINGS, write_audio

FORMATS = tuple(sorted(ENCODINGS))  # ".flac", ".m4a", ".mp3", ".ogg", ".opus", ".wav"
TEST_RATE = 16000


def chord(seconds: float, base_hz: float = 220.0, sample_rate: int = TEST_RATE, amplitude: float = 0.3) -> np.ndarray:
    """A steady three-note chord with a slow tremolo: distinct per `base_hz`, never silent."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    notes = sum(np.sin(2 * np.pi * base_hz * ratio * t) for ratio in (1.0, 1.25, 1.5))
    tremolo = 0.8 + 0.2 * np.sin(2 * np.pi * 2.0 * t)
    return (amplitude / 3 * notes * tremolo).astype(np.float32)


def write_chord(path: Path, seconds: float, base_hz: float = 220.0, sample_rate: int = TEST_RATE) -> Path:
    """A chord encoded to the format named by `path`'s extension."""
    return write_audio(path, chord(seconds, base_hz, sample_rate), sample_rate)


def write_silence(path: Path, seconds: float, sample_rate: int = TEST_RATE) -> Path:
    """Near-silent audio (-80 dBFS noise), which must be rejected as silent."""
    noise = np.random.default_rng(0).standard_normal(int(seconds * sample_rate)) * 1e-4
    return write_audio(path, noise.astype(np.float32), sample_rate)


def write_garbage(path: Path, size: int = 4096) -> Path:
    """Random bytes under an audio extension: no decoder accepts them."""
    path.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def cut_in_half(path: Path) -> Path:
    """Drop the second half of a file's bytes, as an interrupted download does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def scramble_middle(path: Path, length: int = 2000) -> Path:
    """Overwrite bytes in the middle of a file, as disk or transfer damage does."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + length] = np.random.default_rng(2).integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path
