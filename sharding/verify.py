"""Re-read every shard the index lists and report anything that does not match it.

Checks per shard: size and sha256 against the index, the tar structure, every sample decodable with
format.decode_track, its payload (PCM or log-mel, `sharding.layout`) against the sha1 stored in its metadata (so
flipped bytes name the member), its sample rate, the shard's track count and total duration, and the byte offsets
and lengths the track table (tracks.parquet) gives for its payload members, which random access reads by.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from webdataset.gopen import gopen

from musicssl.data_prep.progress import progress_bar
from musicssl.sharding.format import TRACKS_NAME, ShardIndex, ShardInfo, decode_track
from musicssl.sharding.layout import Layout, payload_sha1
from musicssl.sharding.location import resolve
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable

DURATION_TOLERANCE_S = 0.01  # index durations are sums of per-track values rounded to milliseconds


@dataclass
class Problem:
    """One inconsistency, naming the shard and, where known, the member."""

    shard: str
    member: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.shard}: {self.member}" if self.member else self.shard
        return f"{where}: {self.message}"


class HashingReader:
    """A read-only stream wrapper that hashes and counts every byte read through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self) -> None:
        """Read what the tar reader left (end-of-archive padding) so the hash covers the whole file."""
        while self.read(1 << 20):
            pass


def iter_samples(tar: tarfile.TarFile, wanted: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Group consecutive tar members by key (name up to the first dot) into webdataset-style samples.

    `__offsets__` maps each member's extension to (payload offset in the tar, size).
    """
    sample: dict[str, Any] = {}
    for info in tar:
        if not info.isfile():
            continue
        key, _, extension = info.name.partition(".")
        if sample and sample["__key__"] != key:
            yield sample
            sample = {}
        sample.setdefault("__key__", key)
        sample.setdefault("__offsets__", {})[extension] = (info.offset_data, info.size)
        if wanted is None or extension in wanted:
            member = tar.extractfile(info)
            sample[extension] = member.read() if member else b""
    if sample:
        yield sample


def verify_shard(shards: ShardSet, info: ShardInfo, audio_at: list[tuple[int, int]] | None = None) -> list[Problem]:
    """Every problem found in one shard (an empty list for a sound one).

    `audio_at`: the (byte offset, size) of each track's audio in tar order, as the track table gives them.
    """
    problems: list[Problem] = []
    layout = shards.index.layout
    count, duration_s, last_key = 0, 0.0, None
    found_at: list[tuple[int, int]] = []
    try:
        with gopen(resolve(shards.location, info.name), "rb") as stream:
            reader = HashingReader(stream)
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for sample in iter_samples(tar):
                    last_key = sample["__key__"]
                    count += 1
                    if layout.member in sample["__offsets__"]:
                        found_at.append(sample["__offsets__"][layout.member])
                    sample_problems, sample_duration_s = check_sample(info.name, sample, shards.sample_rate, layout)
                    problems += sample_problems
                    duration_s += sample_duration_s
            reader.drain()
    except (OSError, tarfile.TarError, EOFError) as err:
        last = f" (last {last_key})" if last_key else ""
        return [
            *problems,
            Problem(info.name, None, f"unreadable after {count} complete track(s){last}: {err}"),
        ]
    if reader.bytes != info.bytes:
        problems.append(Problem(info.name, None, f"{reader.bytes} bytes, index says {info.bytes}"))
    if reader.sha256.hexdigest() != info.sha256:
        problems.append(Problem(info.name, None, "sha256 differs from the index (shard changed after writing)"))
    if count != info.samples:
        problems.append(Problem(info.name, None, f"{count} tracks, index says {info.samples}"))
    if abs(duration_s - info.duration_s) > DURATION_TOLERANCE_S * max(1, count):
        problems.append(Problem(info.name, None, f"{duration_s:.3f} s of audio, index says {info.duration_s} s"))
    if audio_at is not None and audio_at != found_at:
        wrong = next((n for n, (a, b) in enumerate(zip(audio_at, found_at, strict=False)) if a != b), len(found_at))
        problems.append(
            Problem(
                info.name,
                None,
                f"{TRACKS_NAME} gives other audio offsets than the tar holds (from track {wrong} on); rebuild it "
                f"with `python -m sharding index {shards.location}`",
            )
        )
    return problems


def verify_set(shards: ShardSet, progress: bool = False) -> tuple[ShardIndex, list[Problem]]:
    """The index and every problem in every shard it lists and in the track table (a bar in bytes when `progress`).

    A set without a track table is sound (it can only be streamed); a table that does not match the index is not.
    """
    index = shards.index
    problems = []
    audio_at: list[list[tuple[int, int]] | None] = [None] * len(index.shards)
    try:
        table = shards.track_table()
    except StaleTrackTable as err:
        if not isinstance(err.__cause__, FileNotFoundError):
            problems.append(Problem(TRACKS_NAME, None, str(err)))
    else:
        found: list[list[tuple[int, int]]] = [[] for _ in index.shards]
        sizes = index.layout.payload_bytes(table.num_samples)
        columns = table.shard.tolist(), table.payload_offset.tolist(), sizes.tolist()
        for shard, offset, size in zip(*columns, strict=True):
            found[shard].append((offset, size))
        audio_at = list(found)
    for info, expected in zip(shard_progress(index, "verifying", progress), audio_at, strict=True):
        problems += verify_shard(shards, info, expected)
    return index, problems


def shard_progress(index: ShardIndex, action: str, enabled: bool) -> Iterator[ShardInfo]:
    """The index's shards, advancing a tqdm bar by each shard's size (sizes come from the index)."""
    total = sum(info.bytes for info in index.shards)
    with progress_bar(total=total, unit="B", unit_scale=True, desc=action, disable=not enabled) as bar:
        for info in index.shards:
            yield info
            bar.update(info.bytes)


def check_sample(shard: str, sample: dict[str, Any], sample_rate: int, layout: Layout) -> tuple[list[Problem], float]:
    """Problems of one track (undecodable members, damaged payload, a foreign sample rate) and its duration."""
    key = sample["__key__"]
    try:
        _, meta = decode_track(sample, layout)
    except ValueError as err:
        return [Problem(shard, None, str(err))], 0.0  # the message names the sample
    problems = []
    expected = meta.extra.get(layout.hash_key)
    if expected and payload_sha1(sample[layout.member]) != expected:
        what = "log-mel" if layout.is_mel else "audio"
        problems.append(
            Problem(shard, f"{key}.{layout.member}", f"{what} bytes differ from their sha1 in the metadata")
        )
    if meta.sample_rate != sample_rate:
        problems.append(Problem(shard, f"{key}.json", f"sample rate {meta.sample_rate}, the set has {sample_rate}"))
    return problems, meta.duration_s
