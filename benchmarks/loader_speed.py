"""Pair loader speed: pairs/s per worker and bytes read per pair, shards vs decoding the source per visit.

Builds a temporary shard set of 3-5 minute synthetic tracks at 16 kHz (and the same tracks as 44.1 kHz stereo
mp3 for the baseline), then measures, in this one process (= the work of one loader worker):
  - `pair_loader` for each `pairs_per_track`;
  - random-access crops read with pread from the same tar shards (a local-disk-only alternative);
  - the baseline a user would write: PyAV decode + resample of the mp3 on every visit, then crop;
and the batch composition each `pairs_per_track` gives (same-track pairs per batch, simulated on track ids).

    .venv/bin/python benchmarks/loader_speed.py            # table
    .venv/bin/python benchmarks/loader_speed.py --json     # machine-readable
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import tyro
import webdataset as wds

from sharding.stream import PairStreamConfig, pair_loader, sample_pair_starts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from shard_factory import write_shard_set

RATE = 16_000
SOURCE_RATE = 44_100


@dataclass
class Args:
    """Benchmark settings."""

    tracks: int = 24  # synthetic tracks, 3-5 minutes each
    tracks_per_shard: int = 8
    pairs_per_track: tuple[int, ...] = (1, 2, 4, 8, 16)
    batch_size: int = 256
    pair_shuffle: int = 1024
    measured_pairs: int = 4096  # per pair_loader measurement, after the first batch
    baseline_tracks: int = 3  # mp3 files written for the baseline (encoding is slow)
    baseline_visits: int = 6
    workers: int = 1  # also time the real DataLoader with this many worker processes (0: skip)
    composition_buffers: tuple[int, ...] = (1024, 4096, 16384)  # pair_shuffle sizes for the composition grid
    json: bool = False


@dataclass
class Row:
    """One measured way of feeding pairs."""

    method: str
    pairs_per_track: int
    pairs_per_s: float
    bytes_per_pair: float
    first_batch_s: float | None = None
    same_track_pairs_per_batch: float | None = None
    notes: str = ""


@dataclass
class Composition:
    """Batch composition for one (pairs_per_track, pair_shuffle), simulated on track-visit ids."""

    pairs_per_track: int
    pair_shuffle: int
    buffer_mb_per_worker: float
    same_track_pairs_per_batch: float


@dataclass
class Report:
    """Everything one run measured."""

    track_seconds_mean: float
    cpu_count: int
    rows: list[Row] = field(default_factory=list)
    composition: list[Composition] = field(default_factory=list)


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


def crop_pair(pcm: np.ndarray, rng: np.random.Generator, config: PairStreamConfig) -> np.ndarray:
    """One (2, S) int16 pair cut the way the loader cuts it."""
    crop = config.crop_length(RATE)
    (anchor, positive), *_ = sample_pair_starts(rng, len(pcm), crop, *config.gap_bounds(RATE), count=1)
    return np.stack([pcm[anchor : anchor + crop], pcm[positive : positive + crop]])


def bench_baseline(mp3s: list[Path], visits: int, config: PairStreamConfig) -> Row:
    """PyAV decode + resample + crop per visit, one pair per visit."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    read = 0
    for path in itertools.islice(itertools.cycle(mp3s), visits):
        crop_pair(decode_mono(path, RATE), rng, config)
        read += path.stat().st_size
    elapsed = time.perf_counter() - start
    return Row("pyav-decode-mp3", 1, visits / elapsed, read / visits, notes="44.1 kHz stereo 128k mp3")


def bench_loader(location: Path, config: PairStreamConfig, measured_pairs: int) -> Row:
    """The pair loader in this process: first-batch latency, then steady-state pairs/s and bytes/pair."""
    loader = pair_loader(location, config, rank=0, world_size=1)
    batches = iter(loader)
    start = time.perf_counter()
    next(batches)
    first = time.perf_counter() - start
    before, start = loader.stats, time.perf_counter()
    for _ in range(max(1, measured_pairs // config.batch_size)):
        next(batches)
    elapsed, after = time.perf_counter() - start, loader.stats
    pairs = after.pairs - before.pairs
    method = "shards-stream" if config.num_workers == 0 else f"shards-stream-{config.num_workers}-workers"
    rate = pairs / elapsed / max(1, config.num_workers)
    return Row(method, config.pairs_per_track, rate, (after.bytes - before.bytes) / pairs, first)


def pcm_members(location: Path) -> list[tuple[Path, int, int]]:
    """(shard, byte offset, samples) of every track's audio member, for random access."""
    members = []
    for shard in sorted(location.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            members += [(shard, m.offset_data, m.size // 2) for m in tar if m.name.endswith(".pcm")]
    return members


def bench_random_access(location: Path, config: PairStreamConfig, pairs: int) -> Row:
    """Read only the two crops of each pair with pread: the byte floor, for local seekable storage only."""
    members = pcm_members(location)
    handles = {shard: os.open(shard, os.O_RDONLY) for shard, _, _ in members}
    crop = config.crop_length(RATE)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(pairs):
        shard, offset, samples = members[rng.integers(len(members))]
        starts = sample_pair_starts(rng, samples, crop, *config.gap_bounds(RATE), count=1)[0]
        crops = [np.frombuffer(os.pread(handles[shard], 2 * crop, offset + 2 * s), "<i2") for s in starts]
        np.stack(crops)
    elapsed = time.perf_counter() - start
    for handle in handles.values():
        os.close(handle)
    return Row("pread-crops", 1, pairs / elapsed, 2 * 2 * crop, notes="local files only")


def same_track_pairs_per_batch(pairs_per_track: int, pair_shuffle: int, batch_size: int, batches: int = 200) -> float:
    """Mean number of item pairs in a batch cut from the same track visit, simulated on visit ids."""
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
    """Same-track pairs per batch for every pairs_per_track x pair_shuffle, with the buffer's memory."""
    pair_bytes = 2 * 2 * PairStreamConfig().crop_length(RATE)
    return [
        Composition(count, size, size * pair_bytes / 2**20, same_track_pairs_per_batch(count, size, args.batch_size))
        for count in args.pairs_per_track
        for size in args.composition_buffers
    ]


def build_sets(args: Args, workdir: Path) -> tuple[Path, list[Path], float]:
    """The shard set and the baseline's mp3 files; returns the mean track length in seconds."""
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
    """Build the data, then measure every method."""
    with tempfile.TemporaryDirectory(prefix="loader-speed-") as tmp:
        shards, mp3s, mean_seconds = build_sets(args, Path(tmp))
        report = Report(track_seconds_mean=mean_seconds, cpu_count=os.cpu_count() or 1)
        base = PairStreamConfig(
            batch_size=args.batch_size,
            pair_shuffle=args.pair_shuffle,
            num_workers=0,
            batches_per_epoch=10**9,  # one long epoch: time the steady state, not buffer refills
        )
        report.rows.append(bench_baseline(mp3s, args.baseline_visits, base))
        for count in args.pairs_per_track:
            config = PairStreamConfig(**{**asdict(base), "pairs_per_track": count})
            row = bench_loader(shards, config, args.measured_pairs)
            row.same_track_pairs_per_batch = same_track_pairs_per_batch(count, args.pair_shuffle, args.batch_size)
            report.rows.append(row)
        if args.workers:
            config = PairStreamConfig(**{**asdict(base), "pairs_per_track": 8, "num_workers": args.workers})
            report.rows.append(bench_loader(shards, config, args.measured_pairs))
        report.rows.append(bench_random_access(shards, base, args.measured_pairs))
    report.composition = composition_grid(args)
    return report


def print_table(report: Report) -> None:
    """Human-readable table with the speed-up over the baseline."""
    baseline = report.rows[0].pairs_per_s
    print(f"tracks {report.track_seconds_mean:.0f} s mean at {RATE} Hz, {report.cpu_count} CPUs")
    header = ("method", "ppt", "pairs/s", "x base", "KB/pair", "1st batch s", "same/batch")
    print("{:30} {:>4} {:>9} {:>7} {:>9} {:>11} {:>10}".format(*header))
    for row in report.rows:
        first = "" if row.first_batch_s is None else f"{row.first_batch_s:.1f}"
        same = "" if row.same_track_pairs_per_batch is None else f"{row.same_track_pairs_per_batch:.1f}"
        print(
            f"{row.method:30} {row.pairs_per_track:4d} {row.pairs_per_s:9.1f} "
            f"{row.pairs_per_s / baseline:7.0f} "
            f"{row.bytes_per_pair / 1024:9.0f} {first:>11} {same:>10}"
        )
    print("\nsame-track pairs per batch (pair_shuffle buffer, its memory per worker)")
    for item in report.composition:
        print(
            f"ppt {item.pairs_per_track:3d}  pair_shuffle {item.pair_shuffle:6d} "
            f"({item.buffer_mb_per_worker:5.0f} MB)  {item.same_track_pairs_per_batch:7.1f}"
        )


def main() -> None:
    args = tyro.cli(Args)
    report = run(args)
    if args.json:
        print(json.dumps(asdict(report), indent=1))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
