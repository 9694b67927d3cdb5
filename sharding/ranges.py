"""Byte ranges of shard files, read straight into caller-given buffers: pread locally, fsspec remotely.

`LocalRanges` keeps a bounded set of open files per process and reads with `os.preadv` into the batch buffer
(no intermediate copy). `RemoteRanges` sends HTTP(S) Range requests or object-store reads through fsspec, with
at most `in_flight` requests outstanding per process, so latency is hidden behind concurrency. Both report per
range how many bytes arrived; the caller decides what a short read means.
"""

from __future__ import annotations

import os
import tarfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from musicssl.sharding.location import URL_PREFIXES, is_object_store

MAX_OPEN_FILES = 256


@dataclass(frozen=True)
class RangeRequest:
    """Read `len(buffer)` bytes of file `path` from byte `offset` into `buffer` (a writable byte view)."""

    path: str
    offset: int
    buffer: memoryview


class RangeSource(Protocol):
    """Reads many byte ranges; returns, per request, the bytes that arrived or the error that stopped it."""

    def read(self, requests: Sequence[RangeRequest]) -> list[int | Exception]: ...


class LocalRanges:
    """pread on local files, with up to MAX_OPEN_FILES kept open (least recently used closed first)."""

    def __init__(self) -> None:
        self._files: OrderedDict[str, int] = OrderedDict()
        self._pid = os.getpid()

    def read(self, requests: Sequence[RangeRequest]) -> list[int | Exception]:
        if self._pid != os.getpid():  # a forked worker must not share file positions with its parent
            self._files, self._pid = OrderedDict(), os.getpid()
        results: list[int | Exception] = []
        for request in requests:
            try:
                results.append(os.preadv(self._descriptor(request.path), [request.buffer], request.offset))
            except OSError as err:
                results.append(err)
        return results

    def _descriptor(self, path: str) -> int:
        if path in self._files:
            self._files.move_to_end(path)
            return self._files[path]
        if len(self._files) >= MAX_OPEN_FILES:
            os.close(self._files.popitem(last=False)[1])
        self._files[path] = os.open(path, os.O_RDONLY)
        return self._files[path]


class RemoteRanges:
    """HTTP(S) Range requests and object-store reads through fsspec, `in_flight` at a time."""

    def __init__(self, protocol: str, in_flight: int) -> None:
        self.protocol, self.in_flight = protocol, in_flight
        self._fs: Any = None
        self._pid = os.getpid()

    def read(self, requests: Sequence[RangeRequest]) -> list[int | Exception]:
        fs = self._filesystem()
        paths = [request.path for request in requests]
        starts = [request.offset for request in requests]
        ends = [request.offset + len(request.buffer) for request in requests]
        try:
            datas = fs.cat_ranges(paths, starts, ends, batch_size=self.in_flight, on_error="return")
        except Exception as err:  # a failure of the whole call (session, DNS) fails every request of it
            return [err] * len(requests)
        results: list[int | Exception] = []
        for request, data in zip(requests, datas, strict=True):
            if isinstance(data, Exception):
                results.append(data)
            else:
                size = min(len(data), len(request.buffer))
                request.buffer[:size] = data[:size]
                results.append(len(data))  # more than asked for: the server ignored the range
        return results

    def _filesystem(self) -> Any:
        if self._fs is None or self._pid != os.getpid():  # each worker process opens its own sessions
            import fsspec

            self._fs = fsspec.filesystem(self.protocol, skip_instance_cache=True)
            self._pid = os.getpid()
        return self._fs


def range_source(url: str, in_flight: int) -> RangeSource | None:
    """The source that reads ranges of `url` (a shard's path or URL), or None where ranges cannot be read."""
    if url.startswith("pipe:"):
        return None
    if url.startswith(URL_PREFIXES) or is_object_store(url):
        return RemoteRanges(url.split("://", 1)[0], in_flight)
    return LocalRanges()


def serves_ranges(source: RangeSource, url: str) -> str | None:
    """Why `url` cannot serve byte ranges (None when it can): reads its first tar header as a range."""
    block = bytearray(tarfile.BLOCKSIZE)
    (result,) = source.read([RangeRequest(url, 0, memoryview(block))])
    if isinstance(result, Exception):
        return f"reading bytes 0-511 of {url} failed: {result}"
    if result != len(block):
        return f"a request for bytes 0-511 of {url} returned {result} bytes (no Range support?)"
    try:
        tarfile.TarInfo.frombuf(bytes(block), "utf-8", "surrogateescape")
    except tarfile.TarError as err:
        return f"bytes 0-511 of {url} are not a tar header ({err})"
    return None
