"""Write a shard set crash-safely: tar shards under a temporary name, committed one by one into the index.

Protocol (the index is the commit point; it lists complete shards only):
1. samples go to `shard-NNNNNN.tar.partial` through webdataset's ShardWriter, which rotates at `shard_size`;
2. when a shard is full (or at close), it is fsynced, renamed to `shard-NNNNNN.tar` and hashed (sha256);
3. `on_shard_ready(name, payloads)` runs (data_prep appends the shard's report rows there);
4. the index is saved atomically with the new shard: from here on the shard exists;
5. at close, the track table (`tracks.parquet`, every track's byte offsets for random access) is brought up to
   date with the index, scanning only the shards it does not cover yet.
A kill before 4 leaves an unindexed shard or a `.partial`; `ShardSetWriter.open` deletes both and numbering
continues after the last indexed shard, so nothing half-written is ever read as valid.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import numpy as np
from webdataset import ShardWriter

from musicssl.sharding.format import SHARD_PATTERN, ShardIndex, ShardInfo, TrackMeta, encode_track
from musicssl.sharding.layout import PCM_LAYOUT, Layout
from musicssl.sharding.tracks import build_track_table

PARTIAL_SUFFIX = ".partial"
SHARD_NAME = re.compile(r"^shard-(\d{6})\.tar$")
DEFAULT_SHARD_SIZE = 1_000_000_000
HASH_BLOCK = 1 << 20

Payload = TypeVar("Payload")


class ShardSetWriter(Generic[Payload]):
    """Appends tracks to a shard set, committing each full shard to the index; resumes an existing set."""

    def __init__(
        self,
        directory: Path,
        index: ShardIndex,
        shard_size: int,
        on_shard_ready: Callable[[str, list[Payload]], None] | None = None,
    ) -> None:
        self.directory = directory
        self.index = index
        self.shard_size = shard_size
        self.on_shard_ready = on_shard_ready
        self._sink: ShardWriter | None = None
        self._pending: list[tuple[TrackMeta, Payload]] = []  # tracks of the shard being written

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        sample_rate: int,
        normalisation: str,
        shard_size: int = DEFAULT_SHARD_SIZE,
        on_shard_ready: Callable[[str, list[Payload]], None] | None = None,
        layout: Layout = PCM_LAYOUT,
    ) -> ShardSetWriter[Payload]:
        """Start a new set in `layout` or resume one made with the same settings, after removing uncommitted
        files."""
        if shard_size <= 0:
            raise ValueError(f"shard size {shard_size} bytes: must be positive")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / "index.json").exists():
            index = ShardIndex.load_local(directory)
            if (index.sample_rate, index.normalisation, index.layout) != (sample_rate, normalisation, layout):
                raise ValueError(
                    f"{directory}: existing shard set has {index.sample_rate} Hz, {index.normalisation!r} "
                    f"normalisation, layout {index.layout.describe()}; this run asks for {sample_rate} Hz, "
                    f"{normalisation!r}, {layout.describe()}. Use the same settings to resume, or a new output folder"
                )
        else:
            index = ShardIndex.new(sample_rate, normalisation, layout)
            index.save(directory)
        remove_uncommitted(directory, index)
        return cls(directory, index, shard_size, on_shard_ready)

    @property
    def committed_names(self) -> set[str]:
        """Names of the shards the index lists."""
        return {s.name for s in self.index.shards}

    @property
    def layout(self) -> Layout:
        return self.index.layout

    def add(self, key: str, pcm: np.ndarray, meta: TrackMeta, payload: Payload, encoded: bytes | None = None) -> None:
        """Queue one track of int16 `pcm`, stored in the set's layout (`encoded`: that payload when computed
        already, e.g. log-mel in a decoding worker); `payload` comes back through `on_shard_ready` once its shard
        is committed."""
        if encoded is None:
            encoded = self.layout.encode(pcm)
        if self._sink is None:
            pattern = str(self.directory / (SHARD_PATTERN + PARTIAL_SUFFIX))
            self._sink = ShardWriter(
                pattern,
                maxsize=self.shard_size,
                post=self._commit,
                start_shard=_next_number(self.index),
                verbose=0,
            )
        self._sink.write(encode_track(key, encoded, meta, self.layout))  # may commit the previous shard first
        self._pending.append((meta, payload))

    def end_shard(self) -> None:
        """Commit the shard being written now, whatever its size; the next track starts a new one."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def close(self) -> None:
        """Commit the shard being written, if any, and bring the track table up to date."""
        self.end_shard()
        build_track_table(self.directory)

    def abort(self) -> None:
        """Stop without committing: close and delete the open `.partial`; its tracks are redone on resume."""
        if self._sink is not None and self._sink.tarstream is not None:
            self._sink.tarstream.close()  # the TarWriter alone: ShardWriter.close would commit
            Path(self._sink.fname).unlink(missing_ok=True)
        self._sink = None
        self._pending = []

    def __enter__(self) -> ShardSetWriter[Payload]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _commit(self, partial_name: str) -> None:
        """ShardWriter's `post` hook: make the finished `.partial` durable, final, hashed and indexed."""
        partial = Path(partial_name)
        final = partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))
        fsync_file(partial)
        os.replace(partial, final)
        fsync_file(self.directory)
        metas = [meta for meta, _ in self._pending]
        info = ShardInfo(
            name=final.name,
            samples=len(metas),
            duration_s=round(sum(m.duration_s for m in metas), 3),
            bytes=final.stat().st_size,
            sha256=sha256_file(final),
        )
        if self.on_shard_ready is not None:
            self.on_shard_ready(final.name, [payload for _, payload in self._pending])
        self.index.shards.append(info)
        self.index.save(self.directory)
        self._pending = []


def remove_uncommitted(directory: Path, index: ShardIndex) -> list[Path]:
    """Delete `.partial` files and shards the index does not list; returns what was removed."""
    listed = {s.name for s in index.shards}
    stray = [
        p
        for p in directory.iterdir()
        if p.name.endswith(PARTIAL_SUFFIX) or (SHARD_NAME.match(p.name) and p.name not in listed)
    ]
    for path in stray:
        path.unlink()
    return stray


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _next_number(index: ShardIndex) -> int:
    """The shard number after the last indexed one."""
    numbers = [int(m.group(1)) for s in index.shards if (m := SHARD_NAME.match(s.name))]
    return max(numbers, default=-1) + 1


def fsync_file(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
