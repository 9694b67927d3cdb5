"""Test helper: write tiny shard sets from numpy arrays, so streaming tests need no real audio or writer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from webdataset import TarWriter

from musicssl.sharding.format import SHARD_PATTERN, ShardIndex, ShardInfo, TrackMeta, encode_track
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.tracks import build_track_table

RAMP_STRIDE = 4096  # track t of a ramp set holds values -32768 + t * RAMP_STRIDE + position


def ramp_track(track_number: int, num_samples: int) -> np.ndarray:
    """Int16 samples whose values encode (track number, position), so crops reveal where they came from."""
    if num_samples > RAMP_STRIDE or (track_number + 1) * RAMP_STRIDE > 65536:
        raise ValueError(f"ramp track {track_number} of {num_samples} samples does not fit in int16")
    return (np.arange(num_samples) + track_number * RAMP_STRIDE - 32768).astype(np.int16)


def ramp_position(values: np.ndarray) -> tuple[int, int]:
    """(track number, start position) of a crop cut from ramp tracks, checking it is one contiguous run."""
    values = np.asarray(values)
    pcm = values if values.dtype.kind == "i" else np.rint(values.astype(np.float64) * 32768)
    codes = pcm.astype(np.int64) + 32768
    if not np.array_equal(codes, codes[0] + np.arange(len(codes))):
        raise AssertionError(f"crop is not a contiguous run of one ramp track: starts {codes[:4]}")
    track, start = divmod(int(codes[0]), RAMP_STRIDE)
    if start + len(codes) > RAMP_STRIDE:
        raise AssertionError(f"crop starting at {start} runs across a ramp track boundary")
    return track, start


def track_sample(key: str, pcm: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """A webdataset sample for one synthetic track."""
    meta = TrackMeta(
        track_id=key,
        source=f"synthetic/{key}.wav",
        duration_s=len(pcm) / sample_rate,
        sample_rate=sample_rate,
        num_samples=len(pcm),
    )
    return encode_track(key, PCM_LAYOUT.encode(pcm), meta, PCM_LAYOUT)


def write_shard(path: Path, samples: Sequence[dict[str, Any]], sample_rate: int) -> ShardInfo:
    """Write raw webdataset samples (possibly corrupt ones) into one tar and describe it for the index."""
    with TarWriter(str(path)) as sink:
        for sample in samples:
            sink.write(sample)
    data = path.read_bytes()
    num_samples = sum(len(s.get("pcm", b"")) // 2 for s in samples)
    return ShardInfo(
        name=path.name,
        samples=len(samples),
        duration_s=num_samples / sample_rate,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def write_shard_set(
    directory: Path, tracks: Sequence[np.ndarray], sample_rate: int, tracks_per_shard: int = 4
) -> ShardIndex:
    """Write int16 tracks as shards of `tracks_per_shard` tracks, index.json and tracks.parquet, as the writer
    does; returns the index."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = [track_sample(f"track{i:06d}", pcm, sample_rate) for i, pcm in enumerate(tracks)]
    index = ShardIndex(sample_rate=sample_rate, normalisation="none")
    for shard_number, first in enumerate(range(0, len(samples), tracks_per_shard)):
        path = directory / (SHARD_PATTERN % shard_number)
        index.shards.append(write_shard(path, samples[first : first + tracks_per_shard], sample_rate))
    index.save(directory)
    build_track_table(directory)
    return index
