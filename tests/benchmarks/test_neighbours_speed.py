"""The similarity search benchmark on its small setting: it runs, and its `--json` keeps the keys
docs/benchmarks.md quotes."""

from __future__ import annotations

import json

import pytest

from benchmarks import neighbours_speed


def test_the_small_run_reports_build_speed_and_recall(capsys: pytest.CaptureFixture[str]) -> None:
    assert neighbours_speed.main(["--small", "--ef-search", "16", "128", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (size,) = report["sizes"]
    assert size["tracks"] == 2000 and report["dim"] == 32
    assert {"build_s", "index_bytes", "queries_per_s", "single_query_ms"} <= set(size["exact"])
    narrow, wide = size["hnsw"]["searches"]
    assert (narrow["ef_search"], wide["ef_search"]) == (16, 128)
    assert 0.0 < narrow["recall_at_10"] <= wide["recall_at_10"] <= 1.0 and wide["recall_at_10"] > 0.95
    assert size["hnsw"]["index_bytes"] > size["exact"]["index_bytes"] > 2000 * 32 * 4
