"""Decode any file FFmpeg reads, in process with PyAV, to mono float32 at a target sample rate.

Integrity checks happen here because only the decoder knows them: a decoder error mid-stream fails the file
("cannot decode: decoder error at X s ..."), and a file whose decoded length falls short of the length its
container declares (FLAC STREAMINFO, MP3 Xing/LAME header, MP4 moov, WAV data chunk size) by more than
`TRUNCATION_TOLERANCE_S` and `TRUNCATION_TOLERANCE_FRACTION` fails as "truncated: decoded X s of Y s".
Smaller shortfalls (encoder padding, priming samples) are kept as they are. Containers that declare no length
(or derive it from the file size, as Ogg does) cannot reveal a clean cut; mid-stream damage still shows there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

TRUNCATION_TOLERANCE_S = 0.1
TRUNCATION_TOLERANCE_FRACTION = 0.001


class DecodeError(Exception):
    """A file that cannot become a track; the message is the report's reason."""


@dataclass
class DecodedAudio:
    """Mono float32 audio at the requested rate, with what the container promised."""

    wave: np.ndarray
    sample_rate: int
    decoded_s: float  # length decoded, at the source rate
    declared_s: float | None  # length the container declares, if it does


def decode_file(path: Path, sample_rate: int) -> DecodedAudio:
    """Decode, downmix and resample one file; raises DecodeError with a report reason."""
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise DecodeError(f"cannot decode: {_ffmpeg_message(err)}") from err
    with container:
        if not container.streams.audio:
            raise DecodeError("empty: no audio stream")
        stream = container.streams.audio[0]
        declared_s = _declared_seconds(path, container, stream)
        # one-second output frames: far fewer numpy conversions than the decoder's ~1000-sample frames
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate, frame_size=sample_rate)
        chunks: list[np.ndarray] = []
        source_samples = 0
        source_rate = stream.sample_rate or sample_rate
        try:
            for frame in container.decode(stream):
                source_samples += frame.samples
                source_rate = frame.sample_rate
                chunks.extend(f.to_ndarray()[0] for f in resampler.resample(frame))
        except av.error.FFmpegError as err:
            at = source_samples / source_rate
            of = f" of {declared_s:.2f} s" if declared_s else ""
            raise DecodeError(f"cannot decode: decoder error at {at:.2f} s{of} ({_ffmpeg_message(err)})") from err
        chunks.extend(f.to_ndarray()[0] for f in resampler.resample(None))
    decoded_s = source_samples / source_rate
    if source_samples == 0:
        raise DecodeError("empty: zero samples decoded")
    if declared_s is not None and _is_truncated(decoded_s, declared_s):
        raise DecodeError(f"truncated: decoded {decoded_s:.2f} s of {declared_s:.2f} s")
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    return DecodedAudio(wave=wave, sample_rate=sample_rate, decoded_s=decoded_s, declared_s=declared_s)


def _is_truncated(decoded_s: float, declared_s: float) -> bool:
    """Whether the shortfall is more than padding and priming can explain."""
    tolerance = max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * declared_s)
    return declared_s - decoded_s > tolerance


def _declared_seconds(path: Path, container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The length the file claims; WAV's header is read directly since FFmpeg clamps it to the file size."""
    if container.format.name == "wav":
        return _wav_declared_seconds(path)
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _wav_declared_seconds(path: Path) -> float | None:
    """Seconds promised by a RIFF/WAVE header's data chunk; None when it is a streaming placeholder."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = None
    offset = 12
    while offset + 8 <= len(head):
        chunk_id, size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
        if chunk_id == b"fmt " and offset + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16 : offset + 20])[0]
        if chunk_id == b"data":
            if not byte_rate or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        offset += 8 + size + (size & 1)
    return None


def _ffmpeg_message(err: av.error.FFmpegError) -> str:
    """FFmpeg's error text without the file name PyAV appends."""
    return err.strerror or str(err)
