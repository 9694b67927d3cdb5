"""How anchor/positive pairs are cut from a shard set and read: the one `PairsConfig` both readers, `train.py`,
`python -m sharding stream` and the benchmarks take."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ReaderName = Literal["auto", "random_access", "stream"]


@dataclass(frozen=True)
class PairsConfig:
    """How anchor/positive pairs are cut from the shards and read; the defaults are the paper's."""

    crop_seconds: float = 4.0
    """Length of each crop in seconds (ignored when the backbone fixes its input length, e.g. SampleCNN)."""
    crop_samples: int | None = None
    """Crop length in samples; overrides crop_seconds (e.g. 59049 for SampleCNN)."""
    min_gap_seconds: float = 4.0
    """Smallest start-to-start distance between anchor and positive, either side."""
    max_gap_seconds: float = 16.0
    """Largest start-to-start distance between anchor and positive."""
    pairs_per_track: int = 1
    """Pairs per track per epoch (random access: spread over the epoch; stream: cut per track visit)."""
    split: str | None = "train"
    """Train on tracks of this split only (tracks without a split count as training data); None: all tracks."""
    reader: ReaderName = "auto"
    """random_access: read only the two crops of a pair (needs tracks.parquet and byte ranges); stream: decode
    whole tracks sequentially; auto: random_access where possible, else the stream, with a message saying why."""
    num_workers: int = 4
    """Loader worker processes per rank."""
    max_failed_share: float = 0.01
    """Random access: stop with an error when more than this share of the last `failure_window` reads failed."""
    failure_window: int = 10_000
    """Random access: pair reads per worker over which the failed share is judged."""
    requests_in_flight: int = 32
    """Random access, remote sets: range requests a worker keeps in flight (hides latency)."""
    read_retries: int = 2
    """Random access: retries of a failed or short read before the pair is replaced and counted."""
    track_shuffle: int = 16
    """Stream only: shuffle buffer of whole tracks per worker (16 x 7.7 MB for 4-minute tracks at 16 kHz)."""
    pair_shuffle: int = 1024
    """Stream only: shuffle buffer of pairs per worker (1024 x 256 KB at 4 s, 16 kHz; docs/data-layout.md)."""
    start_method: str | None = None
    """How loader workers start: fork, forkserver, spawn; None: Python's default."""

    def __post_init__(self) -> None:
        if self.crop_samples is None and self.crop_seconds <= 0:
            raise ValueError(f"crop_seconds must be positive, got {self.crop_seconds}")
        if self.crop_samples is not None and self.crop_samples <= 0:
            raise ValueError(f"crop_samples must be positive, got {self.crop_samples}")
        if not 0 <= self.min_gap_seconds <= self.max_gap_seconds:
            raise ValueError(
                f"need 0 <= min_gap_seconds <= max_gap_seconds, got {self.min_gap_seconds} and {self.max_gap_seconds}"
            )
        for name in ("pairs_per_track", "track_shuffle", "pair_shuffle", "failure_window", "requests_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 (load in the main process) or more, got {self.num_workers}")
        if self.read_retries < 0:
            raise ValueError(f"read_retries must be 0 or more, got {self.read_retries}")
        if not 0 <= self.max_failed_share <= 1:
            raise ValueError(f"max_failed_share must be in [0, 1], got {self.max_failed_share}")

    def crop_length(self, sample_rate: int) -> int:
        """Crop length in samples at the set's sample rate."""
        return self.crop_samples if self.crop_samples is not None else round(self.crop_seconds * sample_rate)

    def gap_bounds(self, sample_rate: int) -> tuple[int, int]:
        """(min, max) start-to-start distance in samples."""
        return math.ceil(self.min_gap_seconds * sample_rate), math.floor(self.max_gap_seconds * sample_rate)
