"""The benchmarks' shared harness, and the pair loader benchmark on a tiny setting: it runs from the repository root
as `python -m benchmarks.loader_speed` and its `--json` keeps the keys docs/benchmarks.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import harness
from tests.support.paths import REPO as ROOT

TINY_LOADER_SETTINGS = {
    "tracks": 2, "tracks-per-shard": 1, "batch-size": 8, "measured-pairs": 16, "pairs-per-track": 1, "workers": 1,
    "stream-worker-pairs-per-track": 1, "baseline-tracks": 1, "baseline-visits": 1, "resume-epoch": 8,
    "resume-batch": 4, "stream-resume-batch-size": 2, "http-latencies-ms": 0, "http-workers": 0,
    "http-measured-pairs": 16, "http-seconds": 0.5, "http-sequential-batch-size": 4, "cold-batches": 1,
    "plan-catalogue": 100, "plan-batches": 5, "composition-buffers": 16, "pair-shuffle": 16, "scale-tracks": 1000,
    "scale-shards": 10, "scale-ranks": 2, "scale-workers": 2,
}  # fmt: skip
TINY_LOADER = [text for flag, value in TINY_LOADER_SETTINGS.items() for text in (f"--{flag}", str(value))]


def test_timing_counts_only_the_timed_calls_and_returns_results() -> None:
    calls = []
    seconds = harness.run_times(lambda: calls.append(1), repeats=3, warmup=2, sync=lambda: calls.append(0))
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)
    assert calls == [1, 0] * 5
    assert harness.timed(lambda: 42)[0] == 42
    assert harness.best_seconds(lambda: None, 2) <= harness.median_seconds(lambda: None, 2, warmup=0) + 1.0


def test_tables_format_each_column_by_its_spec(capsys: pytest.CaptureFixture[str]) -> None:
    harness.print_table(("name", "rate", "notes"), [("a", 1234.5, "fast")], ("4", "9,.1f"), notes=True)
    assert capsys.readouterr().out.splitlines() == ["name rate       notes", "a      1,234.5  fast"]
    assert harness.aligned_lines(["x", "wide"], [["10", "1"]], indent=" ") == ["  x  wide", " 10     1"]


@pytest.mark.slow
def test_the_loader_benchmark_runs_tiny_and_keeps_its_json_keys(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.loader_speed", *TINY_LOADER, "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert set(report) >= {"rows", "resume", "http", "http_matches_local", "cache", "eviction", "scale"}
    keys = {"reader", "setting", "layout", "pairs_per_s", "bytes_per_pair", "rss_mb", "pss_mb", "uss_mb"}
    assert keys <= set(report["rows"][0])
    assert report["http_matches_local"] is True and report["scale"]["disjoint"] is True
    assert set(report["conversion_s"]) == {"fp16", "uint8"}
    in_process = {row["layout"]: row["bytes_per_pair"] for row in report["rows"] if row["setting"] == "in process"}
    assert (in_process["logmel_f16"], in_process["logmel_u8"]) == (2 * 126 * 128 * 2, 2 * 126 * 128)
