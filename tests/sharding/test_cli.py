"""`python -m sharding stream`: the asked batches, with and without workers, and what reading them cost."""

import re
from pathlib import Path

import pytest

from musicssl.sharding.__main__ import main
from tests.support.shard_factory import ramp_track, write_shard_set

RATE = 100  # Hz: 4 s crops are 400 samples, a pair needs 800
SHORT, LONG = 600, 3_000


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards of one short and one long track each, so any shard visit meets a track too short for a pair."""
    directory = tmp_path_factory.mktemp("mixed")
    tracks = [ramp_track(t, SHORT if t % 2 == 0 else LONG) for t in range(8)]
    write_shard_set(directory, tracks, RATE, tracks_per_shard=2)
    return directory


def numbers(pattern: str, text: str) -> list[int]:
    """The integers a pattern's groups capture in the output, failing clearly when the line is missing."""
    found = re.search(pattern, text)
    assert found, f"no line matching {pattern!r} in:\n{text}"
    return [int(group) for group in found.groups()]


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_prints_the_asked_batches_and_counters(
    mixed_set: Path, workers: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["stream", str(mixed_set), "--batches", "2", "--batch-size", "4", "--pairs.num-workers", str(workers)]
    assert main([*argv, "--pairs.reader", "stream", "--pairs.track-shuffle", "2", "--pairs.pair-shuffle", "8"]) == 0
    out = capsys.readouterr().out
    assert f"sequential stream, {RATE} Hz, crops of 400 samples, 1 pair(s) per track, {workers} loader worker(s)" in out
    assert out.count("shape (4, 2, 400) torch.int16") == 2 and "batch 3" not in out
    assert numbers(r"delivered (\d+) pairs", out) == [8]
    cut, visits = numbers(r"read (\d+) pairs from (\d+) track reads", out)
    assert cut >= 8 and visits >= cut
    corrupt, short = numbers(r"skipped (\d+) failed read\(s\), (\d+) track\(s\) too short", out)
    assert corrupt == 0 and short >= 1
    low, high = (float(v) for v in re.findall(r"values in \[(-?[\d.]+), (-?[\d.]+)\]", out)[0])
    assert -1.0 <= low < high < 1.0


def test_stream_options_reach_the_loader(mixed_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stream", str(mixed_set), "--batches", "1", "--batch-size", "6", "--pairs.num-workers", "0"]
    assert main([*argv, "--pairs.crop-samples", "300", "--pairs.pairs-per-track", "3"]) == 0
    out = capsys.readouterr().out
    assert "random access, 100 Hz, crops of 300 samples, 3 pair(s) per track" in out
    assert "batch 1: shape (6, 2, 300) torch.int16" in out
    assert numbers(r"read (\d+) pairs", out) == [6]
    assert numbers(r"(\d+) track\(s\) too short", out) == [4]  # the short tracks are left out up front


def test_stream_of_a_missing_set_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", str(tmp_path / "nowhere")]) == 2
    assert "no readable shard index" in capsys.readouterr().err
