"""What the pair loader benchmarks share: settings, the speed row, synthetic tracks and mp3s, opening a
reader and measuring it (pairs/s per worker, bytes per pair, first batch, worker memory)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import psutil
import torch

from benchmarks.harness import timed
from musicssl.sharding.convert import convert_set
from musicssl.sharding.layout import MEL_ENCODINGS, Layout
from musicssl.sharding.mel import MelSettings
from musicssl.sharding.read.batches import sample_pair_starts
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader
from musicssl.sharding.read.reader import PairReader
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.shard_set import ShardSet
from tests.support.shard_factory import write_shard_set

RATE = 16_000
SOURCE_RATE = 44_100
LONG_EPOCH = 10**6  # batches per epoch of the speed measurements: one epoch covers every measurement
MB = 2**20


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
    layout: str
    pairs_per_track: int
    workers: int
    pairs_per_s: float
    bytes_per_pair: float
    first_batch_s: float | None = None
    rss_mb: float | None = None  # largest over the DataLoader workers
    pss_mb: float | None = None
    uss_mb: float | None = None  # private to the worker: what it adds beyond the pages it shares with its parent
    notes: str = ""


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


def open_reader(
    kind: str,
    location: str | Path,
    batch_size: int,
    batches_per_epoch: int = LONG_EPOCH,
    reuse_buffers: bool = True,
    **config: object,
) -> PairReader:
    """A random-access (RandomAccessReader, reusing its batch buffers as the trainer does unless told otherwise) or
    stream (StreamReader) reader of rank 0 of 1, seed 0."""
    pairs, settings = PairsConfig(**config), {"seed": 0, "batches_per_epoch": batches_per_epoch}
    shards = ShardSet.open(location)
    if kind == "random access":
        return RandomAccessReader(shards, pairs, batch_size, 0, 1, **settings, reuse_buffers=reuse_buffers)
    return StreamReader(shards, pairs, batch_size, 0, 1, **settings)


def child_pids() -> set[int]:
    """Process ids of this process's descendants."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


def process_memory_mb(pid: int) -> tuple[float, float, float]:
    """(RSS, PSS, USS) of a process in MB, from /proc/<pid>/smaps_rollup (USS: its private pages)."""
    values = {"Private_Clean": 0.0, "Private_Dirty": 0.0}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            values[key] = int(rest.split()[0]) * 1024 / MB
    return values["Rss"], values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


def workers_memory_mb(pids: set[int]) -> tuple[float | None, float | None, float | None]:
    """The largest RSS, PSS and USS over the given worker processes; Nones without any."""
    if not pids:
        return None, None, None
    usage = [process_memory_mb(pid) for pid in pids]
    return tuple(max(column) for column in zip(*usage, strict=True))  # type: ignore[return-value]


def measure(
    loader: PairReader, reader: str, setting: str, workers: int, pairs: int, max_seconds: float = math.inf
) -> Row:
    """First-batch latency, then pairs/s per worker and bytes per pair over `pairs` pairs (or `max_seconds`)."""
    known = child_pids()
    batches = iter(loader)
    batch_size, first = timed(lambda: len(next(batches)))
    before, count, start = loader.stats, 0, time.perf_counter()
    while count * batch_size < pairs and time.perf_counter() - start < max_seconds:
        next(batches)
        count += 1
    elapsed, after = time.perf_counter() - start, loader.stats
    rss, pss, uss = workers_memory_mb(child_pids() - known)
    batches.close()
    rate = count * batch_size / elapsed / max(1, workers)
    bytes_per_pair = (after.bytes - before.bytes) / max(1, after.pairs - before.pairs)
    counts = (loader.config.pairs_per_track, workers, rate, bytes_per_pair, first, rss, pss, uss)
    return Row(reader, setting, loader.layout.encoding, *counts)


def setting_name(workers: int) -> str:
    """Where the batches are read: this process or N DataLoader workers."""
    return "in process" if workers == 0 else f"{workers} DataLoader worker{'s' * (workers > 1)}"


def time_first(batches: Iterator[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """The first batch of an iterator and the seconds it took."""
    return timed(lambda: next(batches))


def build_sets(args: Args, workdir: Path) -> tuple[Path, list[Path], float]:
    """The PCM shard set (with its track table) and the baseline's mp3 files; returns the mean track length in s."""
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


def mel_sets(shards: Path, workdir: Path) -> dict[str, tuple[Path, float]]:
    """The log-mel layouts of the PCM set (`python -m sharding convert`), with the seconds each conversion took."""
    sets = {}
    for encoding in MEL_ENCODINGS:
        out, layout = workdir / f"logmel-{encoding}", Layout.logmel(encoding, MelSettings(RATE))
        started = time.perf_counter()
        convert_set(ShardSet.open(shards), out, layout, progress=False)
        sets[encoding] = (out, time.perf_counter() - started)
    return sets


def optional(value: float | None, spec: str) -> str:
    """A number formatted with `spec`, or blank for None."""
    return "" if value is None else format(value, spec)
