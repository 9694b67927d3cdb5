"""Re-read every shard the index lists and report anything that does not match it.

Checks per shard: size and sha256 against the index, the tar structure, every sample decodable with
format.decode_track, its audio against the `pcm_sha1` stored in its metadata (so flipped audio bytes name the
member), its sample rate, and the shard's track count and total duration.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from tqdm.auto import tqdm
from webdataset.gopen import gopen

from sharding.format import PCM_SHA1_KEY, ShardIndex, ShardInfo, decode_track, pcm_sha1
from sharding.location import load_index, resolve

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


def read_index(location: str | os.PathLike[str]) -> ShardIndex:
    """The set's index: the one place verify and inspect read it (local folder or URL, see location)."""
    return load_index(location)


def iter_samples(tar: tarfile.TarFile, wanted: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Group consecutive tar members by key (name up to the first dot) into webdataset-style samples."""
    sample: dict[str, Any] = {}
    for info in tar:
        if not info.isfile():
            continue
        key, _, extension = info.name.partition(".")
        if sample and sample["__key__"] != key:
            yield sample
            sample = {}
        sample.setdefault("__key__", key)
        if wanted is None or extension in wanted:
            member = tar.extractfile(info)
            sample[extension] = member.read() if member else b""
    if sample:
        yield sample


def verify_shard(location: str | os.PathLike[str], info: ShardInfo, sample_rate: int) -> list[Problem]:
    """Every problem found in one shard (an empty list for a sound one)."""
    problems: list[Problem] = []
    count, duration_s, last_key = 0, 0.0, None
    try:
        with gopen(resolve(location, info.name), "rb") as stream:
            reader = HashingReader(stream)
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for sample in iter_samples(tar):
                    last_key = sample["__key__"]
                    count += 1
                    sample_problems, sample_duration_s = _check_sample(info.name, sample, sample_rate)
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
    return problems


def verify_set(location: str | os.PathLike[str], progress: bool = False) -> tuple[ShardIndex, list[Problem]]:
    """The index and every problem in every shard it lists (with a bar in bytes when `progress`)."""
    index = read_index(location)
    problems = []
    for info in shard_progress(index, "verifying", progress):
        problems += verify_shard(location, info, index.sample_rate)
    return index, problems


def shard_progress(index: ShardIndex, action: str, enabled: bool) -> Iterator[ShardInfo]:
    """The index's shards, advancing a tqdm bar by each shard's size (sizes come from the index)."""
    total = sum(info.bytes for info in index.shards)
    with tqdm(total=total, unit="B", unit_scale=True, desc=action, disable=not enabled) as bar:
        for info in index.shards:
            yield info
            bar.update(info.bytes)


def _check_sample(shard: str, sample: dict[str, Any], sample_rate: int) -> tuple[list[Problem], float]:
    """Problems of one track (undecodable members, damaged audio, a foreign sample rate) and its duration."""
    key = sample["__key__"]
    try:
        pcm, meta = decode_track(sample)
    except ValueError as err:
        return [Problem(shard, None, str(err))], 0.0  # the message names the sample
    problems = []
    expected = meta.extra.get(PCM_SHA1_KEY)
    if expected and pcm_sha1(pcm) != expected:
        problems.append(Problem(shard, f"{key}.pcm", "audio bytes differ from their sha1 in the metadata"))
    if meta.sample_rate != sample_rate:
        problems.append(Problem(shard, f"{key}.json", f"sample rate {meta.sample_rate}, the set has {sample_rate}"))
    return problems, meta.duration_s
