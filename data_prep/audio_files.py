"""Which files count as audio (regular files with an audio extension), and writing waveforms as audio files.

Writing lives here (not only in tests) because the demo corpus and the benchmark produce real encoded files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

AUDIO_EXTENSIONS = frozenset({".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".mp4", ".aiff"})
SPECIAL_KINDS = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)
FRAME_SECONDS = 1.0  # encoder input chunk length; bounds memory, not quality


def special_kind(mode: int) -> str | None:
    """What a file of this `st_mode` is if it is a pipe, socket or device, which are never opened as audio: reading
    one can wait forever for a writer. None for a regular file or a folder."""
    return next((name for test, name in SPECIAL_KINDS if test(mode)), None)


@dataclass(frozen=True)
class Encoding:
    """How one file extension is written: container, codec, the sample format and layout it accepts."""

    container: str
    codec: str
    sample_format: str
    layout: str = "mono"
    rate: int | None = None  # forced encoder rate (Opus only runs at 48 kHz here)
    options: tuple[tuple[str, str], ...] = ()


ENCODINGS: dict[str, Encoding] = {
    ".wav": Encoding("wav", "pcm_s16le", "s16"),
    ".flac": Encoding("flac", "flac", "s16"),
    ".mp3": Encoding("mp3", "libmp3lame", "fltp", options=(("compression_level", "9"),)),  # LAME's fastest
    # FFmpeg's built-in Vorbis encoder is experimental and stereo-only; the decoder downmixes it back.
    ".ogg": Encoding("ogg", "vorbis", "fltp", layout="stereo", options=(("strict", "experimental"),)),
    ".opus": Encoding("ogg", "libopus", "flt", rate=48000),
    ".m4a": Encoding("ipod", "aac", "fltp"),
}


def write_audio(path: str | os.PathLike[str], wave: np.ndarray, sample_rate: int) -> Path:
    """Encode a mono float waveform in [-1, 1] to the format named by the file's extension."""
    path = Path(path)
    encoding = ENCODINGS.get(path.suffix.lower())
    if encoding is None:
        raise ValueError(f"{path}: cannot write {path.suffix!r} files; use one of {sorted(ENCODINGS)}")
    if wave.ndim != 1:
        raise ValueError(f"{path}: expected a mono waveform, got shape {wave.shape}")
    rate = encoding.rate or sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=encoding.container) as container:
        stream = container.add_stream(encoding.codec, rate=rate, layout=encoding.layout)
        stream.codec_context.options = dict(encoding.options)
        resampler = av.AudioResampler(format=encoding.sample_format, layout=encoding.layout, rate=rate)
        step = int(sample_rate * FRAME_SECONDS)
        for start in range(0, len(wave) + 1, step):
            chunk = wave[start : start + step]
            if len(chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk, dtype=np.float32)[None], format="flt", layout="mono"
                )
                frame.sample_rate = sample_rate
                _encode(container, stream, resampler.resample(frame))
        _encode(container, stream, resampler.resample(None))
        container.mux(stream.encode(None))
    return path


def _encode(container: av.container.OutputContainer, stream: av.AudioStream, frames: list) -> None:
    """Encode and mux resampled frames."""
    for frame in frames:
        container.mux(stream.encode(frame))
