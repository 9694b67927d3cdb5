"""Pairs/s per worker of random access, the stream and the PyAV baseline, and the first batch after resuming."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import print_table, timed
from benchmarks.loader.common import (
    RATE,
    Args,
    Row,
    crop_pair,
    decode_mono,
    measure,
    open_reader,
    optional,
    setting_name,
    time_first,
)
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader


@dataclass
class Resume:
    """Time to the first batch after resuming mid-epoch."""

    reader: str
    setting: str
    batch_size: int
    first_batch_s: float
    estimated: bool = False
    matches: bool | None = None  # the resumed batch equals the same batch read directly


def bench_baseline(mp3s: list[Path], visits: int) -> Row:
    """PyAV decode + resample + crop per visit, one pair per visit."""
    rng, config = np.random.default_rng(0), PairsConfig()

    def visit_all() -> int:
        read = 0
        for path in itertools.islice(itertools.cycle(mp3s), visits):
            crop_pair(decode_mono(path, RATE), rng, config)
            read += path.stat().st_size
        return read

    read, elapsed = timed(visit_all)
    return Row(
        "pyav decode mp3", "in process", "mp3", 1, 0, visits / elapsed, read / visits, notes="44.1 kHz stereo mp3"
    )


def speed_rows(shards: Path, mel: dict[str, tuple[Path, float]], args: Args) -> list[Row]:
    """Random access at 1 pair per track, from the PCM set and its log-mel layouts (`mel`), and the stream at each
    pairs_per_track, in process and in workers."""
    rows = []
    for location in (shards, *(path for path, _ in mel.values())):
        for workers in (0, *args.workers):
            loader = open_reader("random access", location, args.batch_size, num_workers=workers)
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


def resume_rows(shards: Path, args: Args, stream_rate: float) -> list[Resume]:
    """First batch after `iter_from(0, resume_batch)`: random access measured; the stream measured at a small
    batch and estimated at the full one from its in-process rate (`stream_rate` pairs/s, 1 pair per track)."""
    rows = []
    for workers in (0, *args.workers):
        loader = open_reader("random access", shards, args.batch_size, args.resume_epoch, num_workers=workers)
        batches = loader.iter_from(0, args.resume_batch)
        batch, seconds = time_first(batches)
        batches.close()
        assert isinstance(loader, RandomAccessReader)
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


def stream_match(rows: list[Row], row: Row) -> Row | None:
    """The stream row at 1 pair per track in the same setting as a random-access row."""
    return next(
        (r for r in rows if r.reader == "stream" and r.setting == row.setting and r.pairs_per_track == 1),
        None,
    )


def print_speed(rows: list[Row]) -> None:
    """Pairs/s per worker, bytes per pair, first batch and worker memory, with random access / stream."""
    header = (
        "reader",
        "setting",
        "layout",
        "ppt",
        "pairs/s/wkr",
        "x stream",
        "KB/pair",
        "1st batch s",
        "RSS MB",
        "PSS MB",
        "USS MB",
        "notes",
    )
    lines = []
    for row in rows:
        stream = stream_match(rows, row) if row.reader == "random access" else None
        ratio = "" if stream is None else f"{row.pairs_per_s / stream.pairs_per_s:.1f}x"
        first = optional(row.first_batch_s, ".2f")
        rss, pss, uss = (optional(value, ".0f") for value in (row.rss_mb, row.pss_mb, row.uss_mb))
        kb = row.bytes_per_pair / 1024
        counts = (row.pairs_per_track, row.pairs_per_s, ratio, kb, first, rss, pss, uss)
        lines.append((row.reader, row.setting, row.layout, *counts, row.notes))
    specs = ("16", "21", "10", "3d", "11,.1f", ">8", "8,.1f", ">11", ">7", ">7", ">7")
    header_specs = ("16", "21", "10", ">3", ">11", ">8", ">8", ">11", ">7", ">7", ">7")
    print_table(header, lines, specs, header_specs=header_specs, notes=True)
    print("x stream: random access / the stream at 1 pair per track in the same setting (same run)")


def print_resume(resume: list[Resume]) -> None:
    """First batch after resuming."""
    print("\nfirst batch after iter_from(0, 500) in a 512-batch epoch (the stream replays the batches before it)")
    for item in resume:
        how = "estimated: 501 batches at its in-process rate" if item.estimated else "measured"
        check = "" if item.matches is None else f", equals the batch read directly: {'ok' if item.matches else 'NO'}"
        label = f"{item.reader:14} {item.setting:21} batch {item.batch_size:3d}"
        print(f"  {label}: {item.first_batch_s:7.2f} s ({how}{check})")
