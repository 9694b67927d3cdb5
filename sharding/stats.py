"""Statistics of a shard set: shards, tracks, hours, sample rate, size, durations, tags and splits.

Totals come from the index; durations, tags and splits from each track's metadata member (audio members are
skipped without reading where the shard is a seekable local file).
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from webdataset.gopen import gopen

from musicssl.sharding.format import INDEX_NAME, META_KEY, ShardIndex, TrackMeta, repair_hint
from musicssl.sharding.location import resolve
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.verify import iter_samples, shard_progress

SECONDS_PER_HOUR = 3600.0
TOP_TAGS = 20
NO_SPLIT = "(none)"


@dataclass
class SetStats:
    """What `inspect` reports about one shard set."""

    index: ShardIndex
    durations_s: list[float] = field(default_factory=list)
    tags: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)

    def lines(self, top_tags: int = TOP_TAGS) -> list[str]:
        """A readable report."""
        index = self.index
        size_gb = sum(s.bytes for s in index.shards) / 1e9
        out = [
            f"shards: {len(index.shards)} ({size_gb:.3f} GB), format v{index.format_version} "
            f"{index.encoding}, {index.sample_rate} Hz, normalisation {index.normalisation}",
            f"tracks: {index.num_tracks}, {index.total_duration_s / SECONDS_PER_HOUR:.3f} h",
        ]
        if self.durations_s:
            d = np.asarray(self.durations_s)
            quantiles = np.percentile(d, [0, 10, 50, 90, 100])
            names = ("min", "p10", "median", "p90", "max")
            out.append(
                "duration (s): "
                + ", ".join(f"{n} {q:.1f}" for n, q in zip(names, quantiles, strict=True))
                + f", mean {d.mean():.1f}"
            )
        out.append("splits: " + (", ".join(f"{s} {n}" for s, n in sorted(self.splits.items())) or "none"))
        shown = self.tags.most_common(top_tags)
        more = f" (top {top_tags} of {len(self.tags)})" if len(self.tags) > top_tags else ""
        out.append(f"tags{more}: " + (", ".join(f"{t} {n}" for t, n in shown) or "none"))
        return out


def inspect_set(shards: ShardSet, progress: bool = False) -> SetStats:
    """Gather the statistics of the set (a folder or anything sharding.location accepts)."""
    stats = SetStats(shards.index)
    for meta in iter_metadata(shards, progress):
        stats.durations_s.append(meta.duration_s)
        stats.tags.update(meta.tags)
        stats.splits[meta.split or NO_SPLIT] += 1
    return stats


def iter_metadata(shards: ShardSet, progress: bool = False) -> Iterator[TrackMeta]:
    """The TrackMeta of every track in the shards the index lists."""
    location = shards.location
    for info in shard_progress(shards.index, "reading metadata", progress):
        shard = resolve(location, info.name)
        try:
            with gopen(shard, "rb") as stream:
                mode = "r:" if stream.seekable() else "r|"
                with tarfile.open(fileobj=stream, mode=mode) as tar:
                    metas = [TrackMeta(**json.loads(s[META_KEY])) for s in iter_samples(tar, wanted={META_KEY})]
        except (tarfile.TarError, EOFError, KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"{shard}: unreadable ({type(err).__name__}: {err}); find what is damaged with "
                f"`python -m sharding verify {location}`, then "
                f"{repair_hint(location + '/' + INDEX_NAME)}"
            ) from err
        yield from metas
