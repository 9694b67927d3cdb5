"""Pair reader speed: random access (`sharding.read.random_access`) against the stream (`sharding.read.stream`).

Builds a temporary shard set of 3-5 minute synthetic tracks at 16 kHz (and a few of them as 44.1 kHz stereo
mp3 for the baseline), converts it to the log-mel layouts (fp16, uint8; `python -m sharding convert`), then
measures in one run, on the same tracks:
  1. pairs/s per worker, in this process and through real DataLoader worker processes (per worker = total /
     workers): random access at 1 pair per track from each layout, the stream at each `pairs_per_track`, and
     the baseline a user would write (PyAV decode + resample of the mp3 on every visit, then crop);
  2. bytes read per pair (`loader.stats`);
  3. same-track pairs per batch: random access from its epoch plan (`EpochPlan` + `TrackOrder`) for a large
     catalogue and the bench set, the stream simulated on track-visit ids, with its `pair_shuffle` grid;
  4. RSS and PSS (/proc/<pid>/smaps_rollup) of the DataLoader worker processes;
  5. time to the first batch at start and after resuming at batch 500 of a 512-batch epoch;
  6. random access over HTTP (`tests.support.range_server`, run in a child process) at several latencies per request,
     with `requests_in_flight` at its default and at 1, checked batch for batch against the local reads;
  7. scale, simulated: loading the track table of a 4,000,000-track index and slicing one epoch for 64 ranks x 8
     workers (checked disjoint and balanced);
  8. cold page cache (shards evicted with posix_fadvise before every batch) against warm.
MB = 2^20 bytes, KB = 2^10 bytes.

    .venv/bin/python -m benchmarks.loader_speed         # table
    .venv/bin/python -m benchmarks.loader_speed --json  # everything, machine-readable
    .venv/bin/python -m benchmarks.loader_speed --tracks 8 --measured-pairs 1024   # quick look
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from benchmarks.harness import emit_report
from benchmarks.loader.common import RATE, Args, Row, build_sets, mel_sets
from benchmarks.loader.composition import (
    Composition,
    PlanComposition,
    composition_grid,
    plan_compositions,
    print_composition,
)
from benchmarks.loader.page_cache import CacheRow, Eviction, cache_rows, eviction_check, print_cache, shard_files
from benchmarks.loader.remote import HttpRow, http_rows, print_http
from benchmarks.loader.scale import Scale, bench_scale, print_scale
from benchmarks.loader.speed import Resume, bench_baseline, print_resume, print_speed, resume_rows, speed_rows


@dataclass
class Report:
    """Everything one run measured."""

    track_seconds_mean: float
    cpu_count: int
    load_average: float
    batch_size: int
    runtime_s: float = 0.0
    conversion_s: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    resume: list[Resume] = field(default_factory=list)
    http: list[HttpRow] = field(default_factory=list)
    http_matches_local: bool | None = None
    cache: list[CacheRow] = field(default_factory=list)
    eviction: Eviction | None = None
    plan_composition: list[PlanComposition] = field(default_factory=list)
    composition: list[Composition] = field(default_factory=list)
    scale: Scale | None = None


def run(args: Args) -> Report:
    """Build the data, then measure everything."""
    started = time.perf_counter()
    report = Report(0.0, os.cpu_count() or 1, os.getloadavg()[0], args.batch_size)
    with tempfile.TemporaryDirectory(prefix="loader-speed-") as tmp:
        shards, mp3s, report.track_seconds_mean = build_sets(args, Path(tmp))
        mel = mel_sets(shards, Path(tmp))
        report.conversion_s = {encoding: seconds for encoding, (_, seconds) in mel.items()}
        report.rows = [bench_baseline(mp3s, args.baseline_visits), *speed_rows(shards, mel, args)]
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


def print_report(report: Report) -> None:
    """Human-readable tables."""
    print(
        f"tracks {report.track_seconds_mean:.0f} s mean at {RATE} Hz, batch {report.batch_size}, "
        f"{report.cpu_count} CPUs, load average {report.load_average:.1f} at the start, run {report.runtime_s:.0f} s"
    )
    converted = ", ".join(f"{encoding} {seconds:.1f} s" for encoding, seconds in report.conversion_s.items())
    print(f"converting the PCM set to log-mel (`python -m sharding convert`): {converted}")
    print_speed(report.rows)
    print_resume(report.resume)
    print_http(report.http, report.http_matches_local)
    print_cache(report.eviction, report.cache)
    print_composition(report.batch_size, report.plan_composition, report.composition)
    print_scale(report.scale)


def main() -> None:
    args = tyro.cli(Args)
    emit_report(run(args), args.json, print_report)


if __name__ == "__main__":
    main()
