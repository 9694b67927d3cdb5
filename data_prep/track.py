"""Turn one input file into a ready-to-shard track or a skip/fail reason; runs inside worker processes.

Status rules: `failed` means the file itself is bad (unreadable, empty, cannot decode, truncated); `skipped`
means it is no regular file (a named pipe, socket or device: never opened as audio), or decodes but is unusable
for pair training (too short, silent) or repeats an earlier track (duplicate, decided by the parent since it
sees every result).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import tyro

from musicssl.data_prep.audio_files import special_kind
from musicssl.data_prep.decode import DecodeError, decode_file
from musicssl.data_prep.inputs import InputTrack
from musicssl.data_prep.levels import Normalisation, content_problem, normalise
from musicssl.data_prep.pcm import float_to_pcm, pcm_sha1

DEFAULT_SAMPLE_RATE = 16000
MIN_SAMPLE_RATE = 1000  # below this no music is left (and 0 divides by zero)
DEFAULT_MIN_DURATION_S = 8.0
DEFAULT_SILENCE_DBFS = -60.0


@dataclass(frozen=True)
class PrepSettings:
    """How every track of a run is decoded and checked; `python -m data_prep` takes these as its flags."""

    sample_rate: int = DEFAULT_SAMPLE_RATE
    """Target sample rate in Hz (16000 for the paper's ResNet, 22050 for SampleCNN presets)."""
    normalisation: Annotated[Normalisation, tyro.conf.arg(name="normalise")] = "peak"
    """peak: max |x| at -1 dBFS; rms: RMS at -20 dBFS with the peak kept <= -1 dBFS; none: as decoded."""
    min_duration_s: Annotated[float, tyro.conf.arg(name="min-duration")] = DEFAULT_MIN_DURATION_S
    """Tracks shorter than this (seconds) are skipped: too short for an anchor/positive pair."""
    silence_dbfs: float = DEFAULT_SILENCE_DBFS
    """Tracks whose RMS level is below this (dBFS) are skipped as silent."""

    def __post_init__(self) -> None:
        if self.sample_rate < MIN_SAMPLE_RATE:
            raise ValueError(
                f"--sample-rate {self.sample_rate} is not a usable rate: give Hz, e.g. 16000 (the paper's ResNet) "
                "or 22050 (SampleCNN)"
            )


@dataclass
class TrackResult:
    """What became of one input; `pcm` (int16 mono at the run's rate) and its sha1 are set if ok only."""

    track: InputTrack
    status: str
    reason: str = ""
    duration_s: float | None = None
    pcm: np.ndarray | None = None
    audio_sha1: str = ""


def prepare_track(track: InputTrack, settings: PrepSettings) -> TrackResult:
    """Read, decode, check and normalise one file; never raises for bad input."""
    problem = _unreadable(track)
    if problem:
        return TrackResult(track, *problem)
    try:
        audio = decode_file(track.path, settings.sample_rate)
    except DecodeError as err:
        return TrackResult(track, "failed", str(err))
    except Exception as err:  # an unexpected decoder failure is still one input's outcome, not the run's
        return TrackResult(track, "failed", f"cannot decode: {type(err).__name__}: {err}")
    duration_s = len(audio.wave) / settings.sample_rate
    skip = content_problem(audio.wave, settings.sample_rate, settings.min_duration_s, settings.silence_dbfs)
    if skip:
        return TrackResult(track, "skipped", skip, duration_s)
    pcm = float_to_pcm(normalise(audio.wave, settings.normalisation))
    return TrackResult(track, "ok", "", duration_s, pcm, pcm_sha1(pcm))


def _unreadable(track: InputTrack) -> tuple[str, str] | None:
    """(status, reason) for a file that cannot even be read, is empty or is no regular file, before any decoding.

    Opened without blocking and checked on the open file, so a named pipe is reported, not waited on."""
    try:
        fd = os.open(track.path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        return "failed", f"unreadable: {type(err).__name__}: {err.strerror or err}"
    try:
        mode = os.fstat(fd).st_mode
        kind = special_kind(mode)
        if kind:
            return "skipped", f"not a regular file: {kind}"
        if stat.S_ISDIR(mode):
            return "failed", "unreadable: a folder, not a file"
        first = os.read(fd, 1)
    except OSError as err:
        return "failed", f"unreadable: {type(err).__name__}: {err.strerror or err}"
    finally:
        os.close(fd)
    return None if first else ("failed", "empty: zero-length file")
