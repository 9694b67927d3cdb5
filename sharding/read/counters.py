"""What a reader's workers have read (tracks, bytes, pairs, skipped reads), counted in shared memory."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, fields

MAX_FRUITLESS_VISITS = 1000  # consecutive unreadable or too-short reads before a worker gives up loudly


@dataclass(frozen=True)
class LoaderStats:
    """What a loader's workers have read so far (all workers, all epochs)."""

    tracks: int = 0  # track visits read (stream: whole tracks decoded; random access: pairs' tracks)
    bytes: int = 0  # payload bytes read for them
    pairs: int = 0
    corrupt_skipped: int = 0  # reads that failed: unreadable members or shards, damaged offsets
    short_skipped: int = 0  # tracks too short for a pair


STAT_NAMES = tuple(f.name for f in fields(LoaderStats))


class SharedCounters:
    """LoaderStats counters in shared memory, written by loader workers and read by the main process."""

    def __init__(self, location: str, context: multiprocessing.context.BaseContext) -> None:
        self.location = location
        self._values = context.Array("q", len(STAT_NAMES))  # same context as the workers, or it cannot travel
        self._fruitless = 0  # per process: reads since the last pair

    def add(self, **counts: int) -> None:
        """Add to named counters under one lock."""
        with self._values.get_lock():
            for name, value in counts.items():
                self._values[STAT_NAMES.index(name)] += value

    def snapshot(self) -> LoaderStats:
        """The current totals."""
        with self._values.get_lock():
            return LoaderStats(*self._values[:])

    def productive(self) -> None:
        """Note that a read gave a pair."""
        self._fruitless = 0

    def fruitless(self, reason: str) -> None:
        """Note a read that gave no pair; stop loudly when nothing in the set can give pairs."""
        self._fruitless += 1
        if self._fruitless >= MAX_FRUITLESS_VISITS:
            raise RuntimeError(
                f"{self.location}: {self._fruitless} reads in a row gave no pair (last: {reason}); the shards are "
                "unreadable or the tracks shorter than crop + min gap; check the set with "
                "`python -m sharding verify` or shorten the crop"
            )
