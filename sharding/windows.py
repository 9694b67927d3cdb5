"""Deterministic access for evaluation: every track of a set once, in order, cut into fixed windows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from webdataset.handlers import reraise_exception

from musicssl.data_prep.pcm import pcm_to_float
from musicssl.sharding.format import ShardInfo, TrackMeta, decode_track
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.location import tar_samples
from musicssl.sharding.shard_set import ShardSet


def iter_windows(wave: np.ndarray, window: int, hop: int | None = None) -> Iterator[np.ndarray]:
    """Windows of `window` samples along the last axis, every `hop` (default: `window`), in order.

    The tail shorter than a window is dropped. A track shorter than one window yields exactly one window,
    zero-padded at the end, so every track gets an embedding. Full windows are views, not copies.
    """
    hop = window if hop is None else hop
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive numbers of samples")
    length = wave.shape[-1]
    if length < window:
        padded = np.zeros((*wave.shape[:-1], window), dtype=wave.dtype)
        padded[..., :length] = wave
        yield padded
        return
    for start in range(0, length - window + 1, hop):
        yield wave[..., start : start + window]


def iter_tracks(shards: ShardSet) -> Iterator[tuple[np.ndarray, TrackMeta]]:
    """(float32 waveform, metadata) of every track of a PCM set once, in index order.

    Evaluation must see every track, so a corrupt member or a shard holding fewer tracks than the index says
    raises instead of being skipped.
    """
    shards.require_pcm("reading whole tracks for evaluation or embedding")
    for url, info in zip(shards.urls, shards.index.shards, strict=True):
        for _, pcm, meta in shard_tracks(url, info):
            yield pcm_to_float(pcm), meta


def shard_tracks(url: str, info: ShardInfo) -> Iterator[tuple[str, np.ndarray, TrackMeta]]:
    """(key, int16 PCM, metadata) of every track of one shard of a PCM set, in order; raises on a corrupt member
    or when the shard holds another number of tracks than the index says."""
    count = 0
    for sample in tar_samples([{"url": url}], handler=reraise_exception):
        try:
            pcm, meta = decode_track(sample, PCM_LAYOUT)
        except ValueError as err:
            raise ValueError(f"{url}: {err}; rebuild this shard with `python -m data_prep`") from err
        count += 1
        yield sample["__key__"], pcm, meta
    if count != info.samples:
        raise ValueError(
            f"{url}: holds {count} tracks, the index says {info.samples}; the shard set is inconsistent, "
            "check it with `python -m sharding verify`"
        )
