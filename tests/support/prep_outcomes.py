"""What a data-prep run leaves, read back: its settings and shard size for small sets, its report rows, the tracks in
its shards, and the check that inputs, report and shards agree one to one."""

import csv
import json
import tarfile
from pathlib import Path

from musicssl.data_prep.report import REPORT_NAME
from musicssl.data_prep.track import PrepSettings
from musicssl.sharding.format import ShardIndex, TrackMeta
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.verify import iter_samples, verify_set

SETTINGS = PrepSettings(sample_rate=16000)
SMALL_SHARDS = 400_000  # bytes: about one 9-12 s track per shard, so runs commit several shards


def read_report(out: Path) -> list[dict[str, str]]:
    with (out / REPORT_NAME).open(newline="") as f:
        return list(csv.DictReader(f))


def shard_tracks(out: Path) -> list[TrackMeta]:
    """Metadata of every track in the indexed shards."""
    index = ShardIndex.load_local(out)
    metas = []
    for info in index.shards:
        with tarfile.open(out / info.name) as tar:
            metas += [TrackMeta(**json.loads(s["json"])) for s in iter_samples(tar)]
    return metas


def assert_consistent(out: Path, expected: dict[str, str]) -> list[dict[str, str]]:
    """Every input has exactly one row with its reason; ok rows and shard contents match one to one."""
    rows = read_report(out)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(Path(r["path"]).name for r in rows) == sorted(expected)  # one row each, nothing else
    for name, reason in expected.items():
        assert by_name[name]["reason"].startswith(reason), (name, by_name[name])
        assert by_name[name]["status"] == ("ok" if not reason else by_name[name]["status"])
    sources = [m.source for m in shard_tracks(out)]
    assert len(sources) == len(set(sources))  # no track stored twice
    assert sorted(sources) == sorted(r["path"] for r in rows if r["status"] == "ok")
    index = ShardIndex.load_local(out)
    assert {r["shard"] for r in rows if r["status"] == "ok"} == {s.name for s in index.shards}
    assert not list(out.glob("*.partial"))
    assert verify_set(ShardSet.open(out))[1] == []
    return rows
