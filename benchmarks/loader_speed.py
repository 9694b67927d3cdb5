"""Pair reader speed: random access (`sharding.crops`) against the sequential stream (`sharding.stream`).

Builds a temporary shard set of 3-5 minute synthetic tracks at 16 kHz (and a few of them as 44.1 kHz stereo
mp3 for the baseline), then measures in one run, on the same shards:
  1. pairs/s per worker, in this process and through real DataLoader worker processes (per worker = total /
     workers): random access at 1 pair per track, the stream at each `pairs_per_track`, and the baseline a user
     would write (PyAV decode + resample of the mp3 on every visit, then crop);
  2. bytes read per pair (`loader.stats`);
  3. same-track pairs per batch: random access from its epoch plan (`EpochPlan` + `TrackOrder`) for a large
     catalogue and the bench set, the stream simulated on track-visit ids, with its `pair_shuffle` grid;
  4. RSS and PSS (/proc/<pid>/smaps_rollup) of the DataLoader worker processes;
  5. time to the first batch at start and after resuming at batch 500 of a 512-batch epoch;
  6. random access over HTTP (`tests/range_server.py`, run in a child process) at several latencies per request,
     with `requests_in_flight` at its default and at 1, checked batch for batch against the local reads;
  7. scale, simulated: loading the track table of a 4,000,000-track index and slicing one epoch for 64 ranks x 8
     workers (checked disjoint and balanced);
  8. cold page cache (shards evicted with posix_fadvise before every batch) against warm.
MB = 2^20 bytes, KB = 2^10 bytes.

    .venv/bin/python benchmarks/loader_speed.py            # table
    .venv/bin/python benchmarks/loader_speed.py --json     # everything, machine-readable
    .venv/bin/python benchmarks/loader_speed.py --tracks 8 --measured-pairs 1024   # quick look
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import tyro
import webdataset as wds

from sharding.crops import CropLoader
from sharding.epochs import EpochPlan, TrackOrder
from sharding.format import SHARD_PATTERN, TRACKS_NAME, ShardIndex, ShardInfo
from sharding.pairs import PairsConfig, sample_pair_starts
from sharding.readers import PairReader
from sharding.stream import PairLoader
from sharding.tracks import SCHEMA, SHARDS_KEY, load_track_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from range_server import serve
from shard_factory import write_shard_set

RATE = 16_000
SOURCE_RATE = 44_100
LONG_EPOCH = 10**6  # batches per epoch of the speed measurements: one epoch covers every measurement
MB = 2**20
T = TypeVar("T")


@dataclass
class Args:
    """Benchmark settings."""

    tracks: int = 24  # synthetic tracks, 3-5 minutes each
    tracks_per_shard: int = 8
    batch_size: int = 256
    measured_pairs: int = 8192  # per speed measurement, after the first batch
    pairs_per_track: tuple[int, ...] = (1, 2, 4, 8, 16)  # the stream, in process
    workers: tuple[int, ...] = (1, 2)  # DataLoader worker processes, both readers
    stream_worker_pairs_per_track: tuple[int, ...] = (1, 8)  # the stream through DataLoader workers
    pair_shuffle: int = 1024  # the stream's pair shuffle buffer (its default)
    baseline_tracks: int = 3  # mp3 files written for the baseline (encoding is slow)
    baseline_visits: int = 6
    resume_epoch: int = 512  # batches per epoch of the resume measurement
    resume_batch: int = 500  # batch it resumes at
    stream_resume_batch_size: int = 8  # the stream's resume is measured at this batch (it replays the epoch)
    http_latencies_ms: tuple[float, ...] = (0.0, 5.0, 20.0)  # injected per request by the test server
    http_workers: tuple[int, ...] = (0, 2)
    http_measured_pairs: int = 4096  # per HTTP measurement, or `http_seconds`, whichever comes first
    http_seconds: float = 3.0
    http_sequential_batch_size: int = 16  # batch at requests_in_flight 1 (512 sequential 20 ms requests: 10 s)
    cold_batches: int = 6  # timed batches per cache measurement
    plan_catalogue: int = 10_000  # tracks of the catalogue whose plan composition is computed
    plan_pairs_per_track: tuple[int, ...] = (1, 8)
    plan_batches: int = 1000  # batches counted per plan composition
    composition_buffers: tuple[int, ...] = (1024, 4096, 16384)  # pair_shuffle sizes for the stream's grid
    scale_tracks: int = 4_000_000
    scale_shards: int = 10_000
    scale_ranks: int = 64
    scale_workers: int = 8
    json: bool = False


@dataclass
class Row:
    """One measured way of feeding pairs; rates are per worker (total / workers)."""

    reader: str
    setting: str
    pairs_per_track: int
    workers: int
    pairs_per_s: float
    bytes_per_pair: float
    first_batch_s: float | None = None
    rss_mb: float | None = None  # largest over the DataLoader workers
    pss_mb: float | None = None
    notes: str = ""


@dataclass
class Composition:
    """Stream batch composition for one (pairs_per_track, pair_shuffle), simulated on track-visit ids."""

    pairs_per_track: int
    pair_shuffle: int
    buffer_mb_per_worker: float
    same_track_pairs_per_batch: float


@dataclass
class PlanComposition:
    """Random-access batch composition from the epoch plan: item pairs of a batch that share a track."""

    catalogue_tracks: int
    pairs_per_track: int
    batches: int
    same_track_pairs_per_batch: float
    stream_simulated: float  # the stream at the same pairs_per_track, simulated
    stream_pair_shuffle: int


@dataclass
class Resume:
    """Time to the first batch after resuming mid-epoch."""

    reader: str
    setting: str
    batch_size: int
    first_batch_s: float
    estimated: bool = False
    matches: bool | None = None  # the resumed batch equals the same batch read directly


@dataclass
class HttpRow:
    """Random access over HTTP for one (latency, requests in flight, workers)."""

    latency_ms: float
    requests_in_flight: int
    workers: int
    batch_size: int
    pairs_per_s: float  # per worker
    first_batch_s: float
    latency_bound: float  # in_flight / (2 requests x latency): the most pairs/s per worker latency allows


@dataclass
class CacheRow:
    """A reader with the shards in the page cache or evicted before every batch (in this process)."""

    reader: str
    cache: str
    first_batch_s: float
    pairs_per_s: float


@dataclass
class Eviction:
    """Whether posix_fadvise eviction works here: page-cache residency and a sequential read, cold and warm."""

    resident_share_after: float | None  # of the shard bytes, from fincore (None: fincore not installed)
    cold_read_mb_s: float
    warm_read_mb_s: float


@dataclass
class Scale:
    """Track table load and epoch slicing for a simulated large index (no audio)."""

    tracks: int
    shards: int
    table_mb: float
    write_s: float
    load_s: float
    load_peak_mb: float  # peak RSS growth while loading and selecting
    arrays_mb: float  # the table columns a loader worker keeps
    permutation_s: float
    slices_s: float  # every (rank, worker) slice of one epoch
    ranks: int
    workers: int
    disjoint: bool
    rank_items: tuple[int, int]  # (min, max) items per rank
    worker_batches: tuple[int, int]  # (min, max) batches per (rank, worker) slice


@dataclass
class Report:
    """Everything one run measured."""

    track_seconds_mean: float
    cpu_count: int
    load_average: float
    batch_size: int
    runtime_s: float = 0.0
    rows: list[Row] = field(default_factory=list)
    resume: list[Resume] = field(default_factory=list)
    http: list[HttpRow] = field(default_factory=list)
    http_matches_local: bool | None = None
    cache: list[CacheRow] = field(default_factory=list)
    eviction: Eviction | None = None
    plan_composition: list[PlanComposition] = field(default_factory=list)
    composition: list[Composition] = field(default_factory=list)
    scale: Scale | None = None


def synthetic_music(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A few tones with vibrato, a beat and noise, in [-1, 1]: enough structure for mp3 to encode normally."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.05 * rng.standard_normal(len(t))
    for freq in rng.uniform(110, 880, size=4):
        wave += 0.15 * np.sin(2 * np.pi * freq * t + 3 * np.sin(2 * np.pi * 5 * t))
    wave *= 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)
    return np.clip(wave, -1, 1)


def write_mp3(path: Path, wave: np.ndarray, rate: int) -> None:
    """Encode a mono float wave as a 128 kbit/s stereo mp3, as a catalogue would hold it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = 128_000
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
        interleaved = np.repeat(pcm, 2)[None, :]
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def decode_mono(path: Path, rate: int) -> np.ndarray:
    """What the baseline does on every visit: decode the whole file, downmix and resample to int16 mono."""
    chunks = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray()[0] for out in resampler.resample(None))
    return np.concatenate(chunks)


def crop_pair(pcm: np.ndarray, rng: np.random.Generator, config: PairsConfig) -> np.ndarray:
    """One (2, S) int16 pair cut the way the readers cut it."""
    crop = config.crop_length(RATE)
    (anchor, positive), *_ = sample_pair_starts(rng, len(pcm), crop, *config.gap_bounds(RATE), count=1)
    return np.stack([pcm[anchor : anchor + crop], pcm[positive : positive + crop]])


def bench_baseline(mp3s: list[Path], visits: int) -> Row:
    """PyAV decode + resample + crop per visit, one pair per visit."""
    rng, config = np.random.default_rng(0), PairsConfig()
    start = time.perf_counter()
    read = 0
    for path in itertools.islice(itertools.cycle(mp3s), visits):
        crop_pair(decode_mono(path, RATE), rng, config)
        read += path.stat().st_size
    elapsed = time.perf_counter() - start
    return Row("pyav decode mp3", "in process", 1, 0, visits / elapsed, read / visits, notes="44.1 kHz stereo mp3")


def open_reader(
    kind: str,
    location: str | Path,
    batch_size: int,
    batches_per_epoch: int = LONG_EPOCH,
    reuse_buffers: bool = True,
    **config: object,
) -> PairReader:
    """A random-access (CropLoader, reusing its batch buffers as the trainer does unless told otherwise) or
    stream (PairLoader) reader of rank 0 of 1, seed 0."""
    pairs, settings = PairsConfig(**config), {"seed": 0, "batches_per_epoch": batches_per_epoch}
    if kind == "random access":
        return CropLoader(location, pairs, batch_size, 0, 1, **settings, reuse_buffers=reuse_buffers)
    return PairLoader(location, pairs, batch_size, 0, 1, **settings)


def child_pids() -> set[int]:
    """Process ids of this process's descendants."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


def process_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in MB, from /proc/<pid>/smaps_rollup."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0]) * 1024 / MB
    return values["Rss"], values["Pss"]


def workers_memory_mb(pids: set[int]) -> tuple[float | None, float | None]:
    """The largest RSS and PSS over the given worker processes; (None, None) without any."""
    if not pids:
        return None, None
    usage = [process_memory_mb(pid) for pid in pids]
    return max(rss for rss, _ in usage), max(pss for _, pss in usage)


def measure(
    loader: PairReader, reader: str, setting: str, workers: int, pairs: int, max_seconds: float = math.inf
) -> Row:
    """First-batch latency, then pairs/s per worker and bytes per pair over `pairs` pairs (or `max_seconds`)."""
    known = child_pids()
    batches = iter(loader)
    start = time.perf_counter()
    batch_size = len(next(batches))
    first = time.perf_counter() - start
    before, count, start = loader.stats, 0, time.perf_counter()
    while count * batch_size < pairs and time.perf_counter() - start < max_seconds:
        next(batches)
        count += 1
    elapsed, after = time.perf_counter() - start, loader.stats
    rss, pss = workers_memory_mb(child_pids() - known)
    batches.close()
    rate = count * batch_size / elapsed / max(1, workers)
    bytes_per_pair = (after.bytes - before.bytes) / max(1, after.pairs - before.pairs)
    return Row(reader, setting, loader.config.pairs_per_track, workers, rate, bytes_per_pair, first, rss, pss)


def setting_name(workers: int) -> str:
    """Where the batches are read: this process or N DataLoader workers."""
    return "in process" if workers == 0 else f"{workers} DataLoader worker{'s' * (workers > 1)}"


def speed_rows(shards: Path, args: Args) -> list[Row]:
    """Random access at 1 pair per track and the stream at each pairs_per_track, in process and in workers."""
    rows = []
    for workers in (0, *args.workers):
        loader = open_reader("random access", shards, args.batch_size, num_workers=workers)
        rows.append(measure(loader, "random access", setting_name(workers), workers, args.measured_pairs))
    fresh = open_reader("random access", shards, args.batch_size, reuse_buffers=False, num_workers=0)
    rows.append(measure(fresh, "random access", "in process", 0, args.measured_pairs))
    rows[-1].notes = "a new batch tensor per batch (reuse_buffers=False)"
    stream_runs = [(0, count) for count in args.pairs_per_track]
    stream_runs += [(w, count) for w in args.workers for count in args.stream_worker_pairs_per_track]
    for workers, count in stream_runs:
        config = {"num_workers": workers, "pairs_per_track": count, "pair_shuffle": args.pair_shuffle}
        loader = open_reader("stream", shards, args.batch_size, **config)
        row = measure(loader, "stream", setting_name(workers), workers, args.measured_pairs)
        row.notes = f"track_shuffle 16, pair_shuffle {args.pair_shuffle}"
        rows.append(row)
    return rows


def time_first(batches: Iterator[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """The first batch of an iterator and the seconds it took."""
    start = time.perf_counter()
    batch = next(batches)
    return batch, time.perf_counter() - start


def resume_rows(shards: Path, args: Args, stream_rate: float) -> list[Resume]:
    """First batch after `iter_from(0, resume_batch)`: random access measured; the stream measured at a small
    batch and estimated at the full one from its in-process rate (`stream_rate` pairs/s, 1 pair per track)."""
    rows = []
    for workers in (0, *args.workers):
        loader = open_reader("random access", shards, args.batch_size, args.resume_epoch, num_workers=workers)
        batches = loader.iter_from(0, args.resume_batch)
        batch, seconds = time_first(batches)
        batches.close()
        assert isinstance(loader, CropLoader)
        matches = torch.equal(batch, loader.dataset.read_batch(0, args.resume_batch))
        rows.append(Resume("random access", setting_name(workers), args.batch_size, seconds, matches=matches))
    small = args.stream_resume_batch_size
    loader = open_reader("stream", shards, small, args.resume_epoch, num_workers=0, pair_shuffle=args.pair_shuffle)
    batches = loader.iter_from(0, args.resume_batch)
    rows.append(Resume("stream", "in process", small, time_first(batches)[1]))
    batches.close()
    estimate = (args.resume_batch + 1) * args.batch_size / stream_rate
    rows.append(Resume("stream", "in process", args.batch_size, estimate, estimated=True))
    return rows


def serve_in_child(root: Path, latency_s: float, connection: Connection) -> None:
    """Serve `root` until told to stop (the body of the server's child process)."""
    with serve(root, latency_s=latency_s) as server:
        connection.send(server.url)
        connection.recv()


@contextlib.contextmanager
def http_set(root: Path, latency_s: float) -> Iterator[str]:
    """The base URL of `root` served with ranges by a child process, so the server does not share our GIL."""
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=serve_in_child, args=(root, latency_s, theirs))
    server.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        server.join()


def batches_equal(first: CropLoader, second: CropLoader, batches: int = 3) -> bool:
    """Whether two random-access readers give the same first batches."""
    return all(torch.equal(first.dataset.read_batch(0, b), second.dataset.read_batch(0, b)) for b in range(batches))


def http_rows(shards: Path, args: Args) -> tuple[list[HttpRow], bool]:
    """Random access over HTTP per (latency, requests in flight, workers); and whether it reads the local batches."""
    rows, matches = [], False
    for latency_ms in args.http_latencies_ms:
        with http_set(shards, latency_ms / 1000) as url:
            if latency_ms == 0:
                local = open_reader("random access", shards, args.batch_size, num_workers=0)
                remote = open_reader("random access", url, args.batch_size, num_workers=0)
                assert isinstance(local, CropLoader) and isinstance(remote, CropLoader)
                matches = batches_equal(local, remote)
            for in_flight, workers in itertools.product((PairsConfig.requests_in_flight, 1), args.http_workers):
                batch = args.batch_size if in_flight > 1 else args.http_sequential_batch_size
                config = {"num_workers": workers, "requests_in_flight": in_flight}
                loader = open_reader("random access", url, batch, **config)
                row = measure(loader, "random access", "http", workers, args.http_measured_pairs, args.http_seconds)
                bound = in_flight / (2 * latency_ms / 1000) if latency_ms else math.inf
                rows.append(
                    HttpRow(latency_ms, in_flight, workers, batch, row.pairs_per_s, row.first_batch_s or 0.0, bound)
                )
    return rows, matches


def shard_files(shards: Path) -> list[Path]:
    """The tar files of the bench set."""
    return sorted(shards.glob("*.tar"))


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (written back first: dirty pages cannot be dropped)."""
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def resident_share(paths: list[Path]) -> float | None:
    """Share of the files' bytes in the page cache, from util-linux fincore; None where it is not installed."""
    if shutil.which("fincore") is None:
        return None
    command = ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *map(str, paths)]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split("\n")
    resident, size = np.array([line.split() for line in lines if line.strip()], dtype=np.int64).sum(axis=0)
    return float(resident / size)


def read_mb_s(path: Path) -> float:
    """Sequential read speed of a whole file in MB/s, 1 MB at a time."""
    start = time.perf_counter()
    with path.open("rb", buffering=0) as stream:
        while stream.read(MB):
            pass
    return path.stat().st_size / MB / (time.perf_counter() - start)


def eviction_check(files: list[Path]) -> Eviction:
    """Residency right after evicting, and a sequential read of one shard after evicting it and again warm."""
    evict(files)
    share = resident_share(files)
    evict(files[:1])
    cold = read_mb_s(files[0])
    return Eviction(share, cold, read_mb_s(files[0]))


def cache_row(loader: PairReader, reader: str, files: list[Path], batches: int, cold: bool) -> CacheRow:
    """Pairs/s over `batches` batches in this process, evicting the shards before each one when `cold`."""
    iterator = iter(loader)
    if cold:
        evict(files)
    batch, first = time_first(iterator)
    seconds = 0.0
    for _ in range(batches):
        if cold:
            evict(files)
        seconds += time_first(iterator)[1]
    iterator.close()
    return CacheRow(reader, "cold" if cold else "warm", first, batches * len(batch) / seconds)


def cache_rows(shards: Path, args: Args) -> list[CacheRow]:
    """Both readers at 1 pair per track, warm and cold."""
    files = shard_files(shards)
    rows = []
    for reader, cold in itertools.product(("random access", "stream"), (False, True)):
        loader = open_reader(reader, shards, args.batch_size, num_workers=0, pair_shuffle=args.pair_shuffle)
        rows.append(cache_row(loader, reader, files, args.cold_batches, cold))
    return rows


def plan_same_track_pairs(num_tracks: int, pairs_per_track: int, batch_size: int, batches: int) -> float:
    """Mean item pairs of a random-access batch (rank 0 of 1) that share a track, over `batches` batches."""
    plan = EpochPlan(num_tracks, pairs_per_track, batch_size, 1, seed=0)
    order = TrackOrder(plan)
    total = 0
    for number in range(batches):
        epoch, batch = divmod(number, plan.batches_per_epoch)
        counts = np.unique(order.tracks(plan.positions(epoch, batch, 0)), return_counts=True)[1]
        total += int((counts * (counts - 1) // 2).sum())
    return total / batches


def same_track_pairs_per_batch(pairs_per_track: int, pair_shuffle: int, batch_size: int, batches: int = 200) -> float:
    """Mean number of item pairs in a stream batch cut from the same track visit, simulated on visit ids."""
    visits = (visit for visit in itertools.count() for _ in range(pairs_per_track))
    stream = wds.shuffle(pair_shuffle, pair_shuffle, rng=random.Random(0))(visits)
    for _ in range(pair_shuffle * 2):  # reach the steady state
        next(stream)
    total = 0
    for _ in range(batches):
        counts = np.unique(list(itertools.islice(stream, batch_size)), return_counts=True)[1]
        total += int((counts * (counts - 1) // 2).sum())
    return total / batches


def composition_grid(args: Args) -> list[Composition]:
    """Stream: same-track pairs per batch for every pairs_per_track x pair_shuffle, with the buffer's memory."""
    pair_bytes = 2 * 2 * PairsConfig().crop_length(RATE)
    return [
        Composition(count, size, size * pair_bytes / MB, same_track_pairs_per_batch(count, size, args.batch_size))
        for count in args.pairs_per_track
        for size in args.composition_buffers
    ]


def plan_compositions(args: Args) -> list[PlanComposition]:
    """Random access from the plan, for the large catalogue and the bench set, beside the stream's figure."""
    return [
        PlanComposition(
            tracks,
            count,
            args.plan_batches,
            plan_same_track_pairs(tracks, count, args.batch_size, args.plan_batches),
            same_track_pairs_per_batch(count, args.pair_shuffle, args.batch_size),
            args.pair_shuffle,
        )
        for tracks in (args.plan_catalogue, args.tracks)
        for count in args.plan_pairs_per_track
    ]


def with_peak_rss(run: Callable[[], T]) -> tuple[T, float, float]:
    """(result, seconds, peak RSS growth in MB) of a call; the peak is VmHWM after resetting it (clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
    return result, seconds, (peak - before) / MB


def scale_table(directory: Path, tracks: int, shards: int) -> ShardIndex:
    """Write a track table of `tracks` random 3-5 minute tracks in `shards` shards (index only, no audio)."""
    rng = np.random.default_rng(0)
    per_shard = tracks // shards
    num_samples = rng.integers(180 * RATE, 300 * RATE, size=(shards, per_shard))
    member_bytes = 1536 + (2 * num_samples + 511) // 512 * 512  # json header + json + pcm header, padded pcm
    ends = np.cumsum(member_bytes, axis=1)
    pcm_offset = ends - member_bytes + 1536
    ids = pc.binary_join_element_wise("track", pc.cast(pa.array(np.arange(shards * per_shard)), pa.string()), "")
    split = pa.DictionaryArray.from_arrays(
        pa.array(rng.choice(3, size=shards * per_shard, p=[0.8, 0.1, 0.1]).astype(np.int16)),
        pa.array(["train", "valid", "test"]),
    )
    shard = np.repeat(np.arange(shards, dtype=np.int32), per_shard)
    columns = [pa.array(shard), pa.array(pcm_offset.ravel()), pa.array(num_samples.ravel()), ids, split]
    infos = [
        ShardInfo(
            SHARD_PATTERN % n, per_shard, float(num_samples[n].sum() / RATE), int(ends[n, -1] + 1024), f"{n:064x}"
        )
        for n in range(shards)
    ]
    metadata = json.dumps([[info.name, info.sha256, info.samples] for info in infos]).encode()
    table = pa.Table.from_arrays(columns, schema=SCHEMA).replace_schema_metadata({SHARDS_KEY: metadata})
    pq.write_table(table, directory / TRACKS_NAME, compression="zstd")
    return ShardIndex(sample_rate=RATE, normalisation="none", shards=infos)


def selected_columns(directory: Path, index: ShardIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a random-access reader keeps of the table: the columns of the usable training tracks."""
    table = load_track_table(directory, index)
    config = PairsConfig()
    selected = table.select(config.split)
    usable = selected[table.num_samples[selected] >= config.crop_length(RATE) + config.gap_bounds(RATE)[0]]
    return table.shard[usable], table.pcm_offset[usable], table.num_samples[usable]


def epoch_slices(plan: EpochPlan, workers: int) -> list[np.ndarray]:
    """The tracks every (rank, worker) reads in epoch 0, rank-major."""
    order = TrackOrder(plan)
    slices = []
    for rank, worker in itertools.product(range(plan.world_size), range(workers)):
        batches = plan.worker_batches(0, worker, workers)
        positions = np.concatenate([plan.positions(0, batch, rank) for batch in batches])
        slices.append(order.tracks(positions))
    return slices


def bench_scale(args: Args, workdir: Path) -> Scale:
    """Load a simulated large track table and cut one epoch into every (rank, worker) slice."""
    directory = workdir / "scale"
    directory.mkdir()
    start = time.perf_counter()
    index = scale_table(directory, args.scale_tracks, args.scale_shards)
    write_s = time.perf_counter() - start
    columns, load_s, load_peak = with_peak_rss(lambda: selected_columns(directory, index))
    plan = EpochPlan(len(columns[0]), 1, args.batch_size, args.scale_ranks, seed=0)
    start = time.perf_counter()
    plan.permutation(0)
    permutation_s = time.perf_counter() - start
    start = time.perf_counter()
    slices = epoch_slices(plan, args.scale_workers)
    slices_s = time.perf_counter() - start
    everything = np.concatenate(slices)
    rank_items = [sum(map(len, slices[r : r + args.scale_workers])) for r in range(0, len(slices), args.scale_workers)]
    worker_batches = [len(s) // args.batch_size for s in slices]
    return Scale(
        tracks=args.scale_tracks,
        shards=args.scale_shards,
        table_mb=(directory / TRACKS_NAME).stat().st_size / MB,
        write_s=write_s,
        load_s=load_s,
        load_peak_mb=load_peak,
        arrays_mb=sum(column.nbytes for column in columns) / MB,
        permutation_s=permutation_s,
        slices_s=slices_s,
        ranks=args.scale_ranks,
        workers=args.scale_workers,
        disjoint=len(np.unique(everything)) == len(everything),
        rank_items=(min(rank_items), max(rank_items)),
        worker_batches=(min(worker_batches), max(worker_batches)),
    )


def build_sets(args: Args, workdir: Path) -> tuple[Path, list[Path], float]:
    """The shard set (with its track table) and the baseline's mp3 files; returns the mean track length in s."""
    rng = np.random.default_rng(0)
    seconds = rng.uniform(180, 300, size=args.tracks)
    tracks = [(synthetic_music(rng, s, RATE) * 32767).astype(np.int16) for s in seconds]
    write_shard_set(workdir / "shards", tracks, RATE, args.tracks_per_shard)
    del tracks
    mp3s = []
    for number, length in enumerate(seconds[: args.baseline_tracks]):
        path = workdir / f"track{number}.mp3"
        write_mp3(path, synthetic_music(rng, length, SOURCE_RATE), SOURCE_RATE)
        mp3s.append(path)
    return workdir / "shards", mp3s, float(seconds.mean())


def run(args: Args) -> Report:
    """Build the data, then measure everything."""
    started = time.perf_counter()
    report = Report(0.0, os.cpu_count() or 1, os.getloadavg()[0], args.batch_size)
    with tempfile.TemporaryDirectory(prefix="loader-speed-") as tmp:
        shards, mp3s, report.track_seconds_mean = build_sets(args, Path(tmp))
        report.rows = [bench_baseline(mp3s, args.baseline_visits), *speed_rows(shards, args)]
        stream_rate = next(r.pairs_per_s for r in report.rows if r.reader == "stream" and r.pairs_per_track == 1)
        report.resume = resume_rows(shards, args, stream_rate)
        report.http, report.http_matches_local = http_rows(shards, args)
        report.eviction = eviction_check(shard_files(shards))
        report.cache = cache_rows(shards, args)
        report.scale = bench_scale(args, Path(tmp))
    report.composition = composition_grid(args)
    report.plan_composition = plan_compositions(args)
    report.runtime_s = time.perf_counter() - started
    return report


def optional(value: float | None, spec: str) -> str:
    """A number formatted with `spec`, or blank for None."""
    return "" if value is None else format(value, spec)


def stream_match(report: Report, row: Row) -> Row | None:
    """The stream row at 1 pair per track in the same setting as a random-access row."""
    return next(
        (r for r in report.rows if r.reader == "stream" and r.setting == row.setting and r.pairs_per_track == 1),
        None,
    )


def print_speed(report: Report) -> None:
    """Pairs/s per worker, bytes per pair, first batch and worker memory, with random access / stream."""
    header = ("reader", "setting", "ppt", "pairs/s/wkr", "x stream", "KB/pair", "1st batch s", "RSS MB", "PSS MB")
    print("{:16} {:21} {:>3} {:>11} {:>8} {:>8} {:>11} {:>7} {:>7}  notes".format(*header))
    for row in report.rows:
        stream = stream_match(report, row) if row.reader == "random access" else None
        ratio = "" if stream is None else f"{row.pairs_per_s / stream.pairs_per_s:.1f}x"
        print(
            f"{row.reader:16} {row.setting:21} {row.pairs_per_track:3d} {row.pairs_per_s:11,.1f} {ratio:>8} "
            f"{row.bytes_per_pair / 1024:8,.0f} {optional(row.first_batch_s, '.2f'):>11} "
            f"{optional(row.rss_mb, '.0f'):>7} {optional(row.pss_mb, '.0f'):>7}  {row.notes}"
        )
    print("x stream: random access / the stream at 1 pair per track in the same setting (same run)")


def print_resume(report: Report) -> None:
    """First batch after resuming."""
    print("\nfirst batch after iter_from(0, 500) in a 512-batch epoch (the stream replays the batches before it)")
    for item in report.resume:
        how = "estimated: 501 batches at its in-process rate" if item.estimated else "measured"
        check = "" if item.matches is None else f", equals the batch read directly: {'ok' if item.matches else 'NO'}"
        label = f"{item.reader:14} {item.setting:21} batch {item.batch_size:3d}"
        print(f"  {label}: {item.first_batch_s:7.2f} s ({how}{check})")


def print_http(report: Report) -> None:
    """Random access over HTTP by latency and requests in flight."""
    print("\nrandom access over HTTP (test server in a child process; latency added per request)")
    print(f"  batches equal the local reads for the same seed: {'ok' if report.http_matches_local else 'MISMATCH'}")
    print("  latency  in flight  workers  batch  pairs/s/wkr  1st batch s  latency bound pairs/s/wkr")
    for row in report.http:
        bound = "" if math.isinf(row.latency_bound) else f"{row.latency_bound:,.0f}"
        print(
            f"  {row.latency_ms:5.0f} ms {row.requests_in_flight:10d} {row.workers:8d} {row.batch_size:6d} "
            f"{row.pairs_per_s:12,.0f} {row.first_batch_s:12.2f}  {bound:>12}"
        )


def print_cache(report: Report) -> None:
    """Cold against warm page cache."""
    eviction = report.eviction
    assert eviction is not None
    share = "fincore not installed" if eviction.resident_share_after is None else f"{eviction.resident_share_after:.1%}"
    print("\npage cache: shards evicted with posix_fadvise(DONTNEED) before every batch (cold) or not (warm)")
    print(
        f"  after eviction {share} of the shard bytes stay resident; sequential read of a shard: "
        f"{eviction.cold_read_mb_s:,.0f} MB/s cold, {eviction.warm_read_mb_s:,.0f} MB/s warm"
    )
    for row in report.cache:
        print(f"  {row.reader:14} {row.cache}: {row.pairs_per_s:9,.0f} pairs/s, first batch {row.first_batch_s:.2f} s")


def print_composition(report: Report) -> None:
    """Same-track pairs per batch: random access from its plan, the stream simulated."""
    print(f"\nsame-track item pairs per batch of {report.batch_size} (world size 1)")
    for item in report.plan_composition:
        print(
            f"  random access, {item.catalogue_tracks:6,d} tracks, ppt {item.pairs_per_track:2d}: "
            f"{item.same_track_pairs_per_batch:8.2f} (plan, {item.batches} batches); "
            f"stream {item.stream_simulated:6.1f} (simulated, pair_shuffle {item.stream_pair_shuffle})"
        )
    print("stream: pair_shuffle buffer (its memory per worker) -> same-track pairs per batch")
    for c in report.composition:
        print(
            f"  ppt {c.pairs_per_track:3d}  pair_shuffle {c.pair_shuffle:6d} ({c.buffer_mb_per_worker:5.0f} MB)"
            f"  {c.same_track_pairs_per_batch:7.1f}"
        )


def print_scale(report: Report) -> None:
    """The simulated large index."""
    s = report.scale
    assert s is not None
    print(f"\nscale, simulated: {s.tracks:,} tracks in {s.shards:,} shards (index only)")
    print(
        f"  track table {s.table_mb:.0f} MB written in {s.write_s:.1f} s; load + split selection {s.load_s:.2f} s, "
        f"peak RSS +{s.load_peak_mb:.0f} MB; columns kept per worker {s.arrays_mb:.0f} MB"
    )
    print(
        f"  epoch permutation {s.permutation_s:.2f} s; all {s.ranks} ranks x {s.workers} workers slices "
        f"{s.slices_s:.2f} s; disjoint: {'ok' if s.disjoint else 'NO'}; items per rank {s.rank_items[0]:,}-"
        f"{s.rank_items[1]:,}; batches per worker slice {s.worker_batches[0]}-{s.worker_batches[1]}"
    )


def print_table(report: Report) -> None:
    """Human-readable tables."""
    print(
        f"tracks {report.track_seconds_mean:.0f} s mean at {RATE} Hz, batch {report.batch_size}, "
        f"{report.cpu_count} CPUs, load average {report.load_average:.1f} at the start, run {report.runtime_s:.0f} s"
    )
    print_speed(report)
    print_resume(report)
    print_http(report)
    print_cache(report)
    print_composition(report)
    print_scale(report)


def main() -> None:
    args = tyro.cli(Args)
    report = run(args)
    if args.json:
        print(json.dumps(asdict(report), indent=1))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
