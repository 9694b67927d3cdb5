"""The random-access pair reader: reads exactly the bytes of each pair's two crops, nothing else.

Crops are runs of units of the set's layout (`sharding.layout`): samples of a PCM set, frames of a log-mel set
(whose crop starts and gaps are whole hops); everything below works in those units.

Every batch is a pure function of (seed, epoch, batch, rank) (`sharding.read.epoch_plan`): the tracks come from the
epoch's permutation, the crop starts from a generator seeded by the global batch's position (each rank draws those of
the whole global batch and keeps its slice: a step's pairs do not depend on the number of ranks), and the bytes from
the offsets of the track table (`sharding.tracks`), read with pread or range requests (`sharding.ranges`) straight into
the batch. A read that fails or comes back short is retried, then its pair is replaced by another track and counted; a
damaged member costs that member only. When more than `max_failed_share` of a worker's last `failure_window` reads
failed, the worker stops training with an error naming the shards.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter, deque
from collections.abc import Iterator

import numpy as np
import torch

from musicssl.sharding.layout import Layout
from musicssl.sharding.ranges import RangeRequest, RangeSource, range_source, serves_ranges
from musicssl.sharding.read.batches import empty_batch, sample_pair_starts
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.counters import SharedCounters
from musicssl.sharding.read.epoch_plan import CROP_STAGE, REPLACEMENT_STAGE, EpochPlan, TrackOrder
from musicssl.sharding.read.reader import PairReader
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable, TrackTable

logger = logging.getLogger(__name__)

TAR_BLOCK = 512  # tar payloads start on a block boundary: an offset off it is damaged
MAX_REPLACEMENTS = 32  # rounds of replacement tracks for the failed pairs of one batch (drawn with the batch seed)
LOGGED_FAILURES = 10  # failed reads logged one by one per worker; later ones are only counted
PREFETCH_FACTOR = 2  # batches each DataLoader worker has in flight (torch's default, set explicitly)


def ring_size(num_workers: int) -> int:
    """Buffers a worker cycles through when batches are reused: those in flight, the one the consumer holds,
    and the one being filled."""
    return PREFETCH_FACTOR + 2 if num_workers else 2


def crop_units(config: PairsConfig, sample_rate: int, layout: Layout) -> tuple[int, tuple[int, int]]:
    """A crop's length and the (min, max) start-to-start gap of a pair, in the layout's units."""
    return layout.units(config.crop_length(sample_rate)), layout.gap_units(*config.gap_bounds(sample_rate))


def pair_tracks(
    table: TrackTable, config: PairsConfig, sample_rate: int, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the table in the configured split, and those of them long enough for a pair: the tracks training
    draws from."""
    selected = table.select(config.split)
    crop, gaps = crop_units(config, sample_rate, layout)
    return selected, selected[layout.units(table.num_samples[selected]) >= crop + gaps[0]]


class RandomAccessUnavailable(ValueError):
    """The set cannot be read by random access (no track table, or no byte ranges); the stream still can."""


class DataReadError(RuntimeError):
    """Too many reads failed: training stops rather than train on what is left."""


class FailureAlarm:
    """The share of failed pair reads over a worker's last `window` reads, and the shards they failed in."""

    def __init__(self, location: str, max_share: float, window: int) -> None:
        self.location, self.max_share, self.window = location, max_share, window
        self._recent: deque[bool] = deque(maxlen=window)
        self._failed = 0
        self.shards: Counter[str] = Counter()

    def record(self, failed: np.ndarray, shard_names: list[str]) -> None:
        """Add the outcome of some reads; raise DataReadError once the window holds too many failures."""
        self.shards.update(shard_names)
        for outcome in failed.tolist():
            if len(self._recent) == self.window:
                self._failed -= self._recent[0]
            self._recent.append(outcome)
            self._failed += outcome
        if len(self._recent) == self.window and self._failed > self.max_share * self.window:
            named = ", ".join(f"{name} ({count})" for name, count in self.shards.most_common(10))
            raise DataReadError(
                f"{self.location}: {self._failed} of the last {self.window} pair reads failed (more than "
                f"{self.max_share:.1%}); failed reads by shard: {named}. Check the set with `python -m sharding "
                f"verify {self.location}` and rebuild the named shards, or raise --pairs.max-failed-share"
            )


class RandomAccessDataset(torch.utils.data.IterableDataset):
    """The batches of one epoch of one rank from a start batch; worker w of W reads batches b % W == w."""

    def __init__(
        self,
        location: str,
        urls: list[str],
        shard_bytes: np.ndarray,
        layout: Layout,
        tracks: tuple[np.ndarray, np.ndarray, np.ndarray],
        plan: EpochPlan,
        rank: int,
        crop: int,
        gaps: tuple[int, int],
        config: PairsConfig,
        counters: SharedCounters,
        reuse_buffers: bool,
    ) -> None:
        super().__init__()
        self.location, self.urls, self.shard_bytes, self.layout = location, urls, shard_bytes, layout
        self.shard, self.payload_offset, num_samples = tracks
        self.num_units = layout.units(num_samples)
        self.payload_bytes = self.num_units * layout.unit_bytes
        self.plan, self.rank, self.crop, self.gaps = plan, rank, crop, gaps
        self.config, self.counters = config, counters
        self.epoch, self.start_batch = 0, 0
        self.ring = ring_size(config.num_workers) if reuse_buffers else 0
        self._buffers: list[torch.Tensor] = []
        self._filled = 0
        self._source: RangeSource | None = None
        self._order: TrackOrder | None = None
        self._alarm: FailureAlarm | None = None
        self._logged = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for batch in self.plan.worker_batches(self.start_batch, worker, workers):
            yield self.read_batch(self.epoch, batch)

    def read_batch(self, epoch: int, batch: int) -> torch.Tensor:
        """One batch of the layout's shape (`Layout.batch_shape`); failed pairs are replaced by pairs of other
        tracks, and counted."""
        every_rank = self.plan.step_positions(epoch, batch)
        tracks = self._track_order().tracks(every_rank)
        starts = self._pair_starts(self.plan.batch_rng(CROP_STAGE, every_rank), tracks)
        mine = slice(self.rank * self.plan.batch_size, (self.rank + 1) * self.plan.batch_size)
        tracks, starts = tracks[mine], starts[mine]  # drawn for the global batch: the same on any number of ranks
        out = self._buffer(len(tracks))
        values = out.numpy()
        failed = self._fill(values, np.arange(len(tracks)), tracks, starts)
        failures = int(failed.sum())
        replacements = self.plan.batch_rng(REPLACEMENT_STAGE, every_rank[mine])
        for _ in range(MAX_REPLACEMENTS):
            if not failed.any():
                break
            rows = np.flatnonzero(failed)
            others = replacements.integers(0, self.plan.num_tracks, size=len(rows))
            failed[rows] = self._fill(values, rows, others, self._pair_starts(replacements, others))
            failures += int(failed.sum())
        if failed.any():
            raise DataReadError(
                f"{self.location}: {int(failed.sum())} pairs of batch {batch} could not be read from any track "
                f"after {MAX_REPLACEMENTS} replacements; check the set with `python -m sharding verify`"
            )
        if sys.byteorder == "big" and values.dtype.itemsize > 1:  # shards hold little-endian values
            values.byteswap(inplace=True)
        self.counters.add(
            tracks=len(tracks), pairs=len(tracks), bytes=(len(tracks) + failures) * values[0].nbytes,
            corrupt_skipped=failures,
        )  # fmt: skip
        return out

    def _pair_starts(self, rng: np.random.Generator, tracks: np.ndarray) -> np.ndarray:
        """(len(tracks), 2) crop starts (anchor, positive) in each track, in units."""
        return sample_pair_starts(rng, self.num_units[tracks], self.crop, *self.gaps, count=len(tracks))

    def _fill(self, out: np.ndarray, rows: np.ndarray, tracks: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Read the pair of each track starting at `starts` into `out[rows]`; returns which rows failed."""
        shards = self.shard[tracks]
        offsets = self.payload_offset[tracks][:, None] + self.layout.unit_bytes * starts
        damaged = (self.payload_offset[tracks] % TAR_BLOCK != 0) | (
            self.payload_offset[tracks] + self.payload_bytes[tracks] > self.shard_bytes[shards]
        )
        # One byte view of the batch, sliced per crop: at 16 KB a crop, Python's cost per crop is what remains
        crop_bytes = out[0, 0].nbytes
        view = memoryview(out.reshape(-1).view(np.uint8))
        requests, owners = [], []
        urls = self.urls
        for row, (track_row, shard, (anchor, positive), bad) in enumerate(
            zip(rows.tolist(), shards.tolist(), offsets.tolist(), damaged.tolist(), strict=True)
        ):
            if bad:
                continue
            first = 2 * track_row * crop_bytes
            requests.append(RangeRequest(urls[shard], anchor, view[first : first + crop_bytes]))
            requests.append(RangeRequest(urls[shard], positive, view[first + crop_bytes : first + 2 * crop_bytes]))
            owners += (row, row)
        failed = damaged.copy()
        for row, error in self._read(requests, owners):
            failed[row] = True
            self._log_failure(self.urls[shards[row]], error)
        for row in np.flatnonzero(damaged):
            self._log_failure(self.urls[shards[row]], f"damaged offset {self.payload_offset[tracks[row]]} in the table")
        self._failure_alarm().record(failed, [self.urls[s].rsplit("/", 1)[-1] for s in shards[failed]])
        return failed

    def _read(self, requests: list[RangeRequest], owners: list[int]) -> list[tuple[int, str]]:
        """Read every request, retrying failed or short ones; (owner row, last error) of those that never arrived."""
        pending = list(range(len(requests)))
        errors: dict[int, str] = {}
        for _ in range(1 + self.config.read_retries):
            if not pending:
                break
            results = self._range_source().read([requests[i] for i in pending])
            still = []
            for number, result in zip(pending, results, strict=True):
                expected = len(requests[number].buffer)
                if isinstance(result, Exception) or result != expected:
                    errors[number] = str(result) if isinstance(result, Exception) else f"{result} of {expected} bytes"
                    still.append(number)
            pending = still
        return [(owners[number], errors[number]) for number in pending]

    def _buffer(self, batch_size: int) -> torch.Tensor:
        """The tensor to fill: a new one, or the next of the ring (page faults on fresh memory cost more than
        reading the crops: 50 ms for a 65 MB batch on the 2-core test machine)."""
        shape = self.layout.batch_shape(batch_size, self.crop)
        if not self.ring:
            return empty_batch(shape, self.layout.dtype)
        if len(self._buffers) < self.ring:
            self._buffers.append(empty_batch(shape, self.layout.dtype))
        self._filled += 1
        return self._buffers[(self._filled - 1) % self.ring]

    def _log_failure(self, url: str, error: str) -> None:
        if self._logged < LOGGED_FAILURES:
            self._logged += 1
            later = " (further failures of this worker are only counted)" if self._logged == LOGGED_FAILURES else ""
            logger.warning("%s: read failed, pair replaced: %s%s", url, error, later)

    def _range_source(self) -> RangeSource:
        if self._source is None:
            self._source = range_source(self.urls[0], self.config.requests_in_flight)
            assert self._source is not None  # the loader checked the location serves ranges
        return self._source

    def _track_order(self) -> TrackOrder:
        if self._order is None:
            self._order = TrackOrder(self.plan)
        return self._order

    def _failure_alarm(self) -> FailureAlarm:
        if self._alarm is None:
            self._alarm = FailureAlarm(self.location, self.config.max_failed_share, self.config.failure_window)
        return self._alarm

    def __getstate__(self) -> dict:
        """Workers start with fresh per-process state (open files, sessions, permutations, failure window)."""
        fresh = {"_source": None, "_order": None, "_alarm": None, "_logged": 0, "_buffers": [], "_filled": 0}
        return {**self.__dict__, **fresh}


class RandomAccessReader(PairReader):
    """Random-access pairs: reads only the bytes of each pair's two crops; `iter_from(epoch, batch)` starts
    anywhere without reading what comes before.

    `reuse_buffers`: fill a small ring of batch tensors per worker instead of a new one per batch, 3-4x faster;
    a batch is then valid only until the consumer asks for the next one (the trainer converts each at once).
    """

    def __init__(
        self,
        shards: ShardSet,
        config: PairsConfig,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        reuse_buffers: bool = False,
    ) -> None:
        super().__init__(shards, config, batch_size, rank, world_size, seed, batches_per_epoch)
        urls = shards.urls
        source = range_source(urls[0], config.requests_in_flight)
        reason = "it is a pipe: command" if source is None else serves_ranges(source, urls[0])
        if reason is not None:
            raise RandomAccessUnavailable(f"{self.location}: byte ranges cannot be read ({reason})")
        try:
            table = shards.track_table()
        except StaleTrackTable as err:
            raise RandomAccessUnavailable(str(err)) from err
        layout = shards.index.layout
        crop, gaps = crop_units(config, self.sample_rate, layout)
        shortest = config.crop_length(self.sample_rate) + config.gap_bounds(self.sample_rate)[0]
        selected, usable = pair_tracks(table, config, self.sample_rate, layout)
        self.short_tracks = len(selected) - len(usable)
        if self.short_tracks:
            logger.warning(
                "%s: %d of %d tracks are shorter than a pair (%d samples) and are left out",
                self.location, self.short_tracks, len(selected), shortest,
            )  # fmt: skip
        if not len(usable):
            raise ValueError(
                f"{self.location}: none of the {len(selected)} tracks of split {config.split!r} is long enough for a "
                f"pair ({shortest} samples); choose another --pairs.split or shorten the crop"
            )
        self.plan = EpochPlan(len(usable), config.pairs_per_track, batch_size, world_size, seed, batches_per_epoch)
        self.batches_per_epoch = self.plan.batches_per_epoch
        self.counters.add(short_skipped=self.short_tracks)
        tracks = (table.shard[usable], table.payload_offset[usable], table.num_samples[usable])
        shard_bytes = np.array([info.bytes for info in shards.index.shards], dtype=np.int64)
        self.dataset = RandomAccessDataset(
            self.location,
            urls,
            shard_bytes,
            layout,
            tracks,
            self.plan,
            rank,
            crop,
            gaps,
            config,
            self.counters,
            reuse_buffers,
        )

    def read_epoch(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        """The batches of epoch `epoch` from batch `start` on, from a fresh DataLoader over the dataset."""
        self.dataset.epoch, self.dataset.start_batch = epoch, start  # workers copy the dataset when they start
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=None,
            num_workers=self.config.num_workers,
            prefetch_factor=PREFETCH_FACTOR if self.config.num_workers else None,
            multiprocessing_context=self.context if self.config.num_workers else None,
        )
        yield from loader
