"""Decoding real files of every format with PyAV, and detecting damaged ones."""

from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.audio_files import write_audio
from musicssl.data_prep.decode import DecodeError, decode_file
from tests.support.audio_factory import (
    FORMATS,
    TEST_RATE,
    chord,
    cut_in_half,
    scramble_middle,
    write_chord,
    write_garbage,
)

SECONDS = 9.0


@pytest.mark.parametrize("extension", FORMATS)
def test_every_format_decodes_to_mono_at_the_target_rate(tmp_path: Path, extension: str) -> None:
    path = write_chord(tmp_path / f"chord{extension}", SECONDS, base_hz=330.0)
    audio = decode_file(path, 22050)
    assert audio.wave.dtype == np.float32 and audio.wave.ndim == 1
    # lossy codecs add priming/padding of a few frames at most
    assert abs(len(audio.wave) / 22050 - SECONDS) < 0.15
    assert abs(audio.decoded_s - SECONDS) < 0.15
    level, expected = (float(np.sqrt(np.mean(w**2))) for w in (audio.wave, chord(SECONDS, base_hz=330.0)))
    assert abs(level / expected - 1) < 0.1  # the level survives encoding, downmix and resampling


def test_resampling_keeps_pitch(tmp_path: Path) -> None:
    t = np.arange(int(SECONDS * 44100)) / 44100
    path = write_audio(tmp_path / "a440.flac", (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), 44100)
    wave = decode_file(path, TEST_RATE).wave
    spectrum = np.abs(np.fft.rfft(wave))
    peak_hz = np.argmax(spectrum) * TEST_RATE / len(wave)
    assert abs(peak_hz - 440.0) < 1.0


def test_stereo_vorbis_is_downmixed_to_the_same_signal(tmp_path: Path) -> None:
    reference = chord(SECONDS)
    decoded = decode_file(write_chord(tmp_path / "chord.ogg", SECONDS), TEST_RATE).wave
    n = min(len(reference), len(decoded))
    correlation = np.corrcoef(reference[1000 : n - 1000], decoded[1000 : n - 1000])[0, 1]
    assert correlation > 0.95


@pytest.mark.parametrize("extension", [".wav", ".mp3"])
def test_file_cut_in_half_is_truncated(tmp_path: Path, extension: str) -> None:
    path = cut_in_half(write_chord(tmp_path / f"cut{extension}", 12.0))
    with pytest.raises(DecodeError, match=r"^truncated: decoded [56]\.\d\d s of 12\.00 s$"):
        decode_file(path, TEST_RATE)


def test_flac_cut_in_half_fails_with_its_position(tmp_path: Path) -> None:
    path = cut_in_half(write_chord(tmp_path / "cut.flac", 12.0))
    with pytest.raises(DecodeError, match=r"(truncated|decoder error at \d+\.\d\d s of 12\.00 s)"):
        decode_file(path, TEST_RATE)


def test_damage_mid_file_is_a_decoder_error(tmp_path: Path) -> None:
    path = scramble_middle(write_chord(tmp_path / "bad.mp3", 12.0))
    with pytest.raises(DecodeError, match=r"^cannot decode: decoder error at \d+\.\d\d s of 12\.00 s"):
        decode_file(path, TEST_RATE)


def test_random_bytes_cannot_be_decoded(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match=r"^cannot decode: "):
        decode_file(write_garbage(tmp_path / "junk.mp3"), TEST_RATE)


def test_unknown_extension_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot write '\.xyz' files"):
        write_audio(tmp_path / "a.xyz", chord(1.0), TEST_RATE)
