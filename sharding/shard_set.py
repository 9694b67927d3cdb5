"""One shard set, opened once per process: where it lives, its index, its shards' URLs and its track table.

Readers, `training_tracks`, extraction, the monitor and the command lines take this value rather than a location,
so a process reads index.json once and tracks.parquet at most once (on first use), whether the set is a local
folder, an http(s) or object-store URL, or a `{}` template (`sharding.location`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from musicssl.sharding.format import ShardIndex
from musicssl.sharding.location import load_index, shard_urls
from musicssl.sharding.tracks import StaleTrackTable, TrackTable, load_track_table


@dataclass
class ShardSet:
    """A set's location and index; its shard URLs and track table are worked out or read on first use."""

    location: str
    index: ShardIndex
    _table: TrackTable | StaleTrackTable | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> ShardSet:
        """Read the index of the set at `location` (FileNotFoundError naming the location when there is none)."""
        return cls(os.fspath(location), load_index(location))

    @property
    def sample_rate(self) -> int:
        return self.index.sample_rate

    @cached_property
    def urls(self) -> list[str]:
        """The URL or path of every shard, in index order; ValueError for a set without shards."""
        return shard_urls(self.location, self.index)

    def require_sample_rate(self, sample_rate: int) -> None:
        """Refuse a set at another rate than a model's, saying how to rebuild it."""
        if self.sample_rate != sample_rate:
            raise ValueError(
                f"{self.location}: shards are at {self.sample_rate} Hz but the backbone expects {sample_rate} Hz; "
                f"re-run `python -m data_prep ... --sample-rate {sample_rate}`"
            )

    def require_pcm(self, what: str) -> None:
        """Refuse a log-mel set where `what` needs the waveforms, saying which set to use instead."""
        if self.index.layout.is_mel:
            raise ValueError(
                f"{self.location}: holds log-mel ({self.index.encoding}), not PCM, and {what} needs waveforms; use "
                "a PCM set of the same tracks (`python -m data_prep` without --layout logmel)"
            )

    def track_table(self) -> TrackTable:
        """The track table (without track ids), read once; StaleTrackTable, every time, when it is missing or
        does not match the index."""
        if self._table is None:
            try:
                self._table = load_track_table(self.location, self.index)
            except StaleTrackTable as err:
                self._table = err
        if isinstance(self._table, StaleTrackTable):
            raise StaleTrackTable(*self._table.args) from self._table.__cause__
        return self._table
