"""Where a shard set lives and how its files are read.

A set is named by a local folder, an http(s) base URL, or a template with `{}` for the file name (e.g. a
`pipe:` command). The index travels with the shards and is read through the same opener (webdataset's
`gopen`), so a set that streams from object storage needs nothing on local disk. Shards are read with one
`read` per member: Python's streaming tarfile reads 10 KB at a time, ten times slower on multi-MB tracks.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from webdataset.gopen import gopen
from webdataset.tariterators import group_by_keys, url_opener

from sharding.format import INDEX_NAME, ShardIndex

PLACEHOLDER = "{}"
URL_PREFIXES = ("http://", "https://")
BLOCK = tarfile.BLOCKSIZE


def resolve(location: str | os.PathLike[str], name: str) -> str:
    """The URL or path of file `name` (index.json or a shard) inside the set at `location`."""
    text = os.fspath(location)
    if PLACEHOLDER in text:
        return text.replace(PLACEHOLDER, name)
    if text.startswith(URL_PREFIXES):
        return f"{text.rstrip('/')}/{name}"
    if "://" in text or text.startswith("pipe:"):
        raise ValueError(
            f"{text}: unsupported shard location; give a local folder, an http(s) base URL, or a template "
            "with `{}` standing for the file name, e.g. `pipe:aws s3 cp s3://bucket/set/{} -`"
        )
    return str(Path(text).expanduser().absolute() / name)


def load_index(location: str | os.PathLike[str]) -> ShardIndex:
    """Read the set's index.json through the same opener the shards use."""
    url = resolve(location, INDEX_NAME)
    try:
        with gopen(url, "rb") as stream:
            text = stream.read()
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"{os.fspath(location)}: cannot read the shard index {url} ({err}); check the location, or build "
            "the set with `python -m data_prep`"
        ) from err
    if not text:
        raise FileNotFoundError(
            f"{os.fspath(location)}: the shard index {url} is empty or missing; check the location, or build "
            "the set with `python -m data_prep`"
        )
    return ShardIndex.from_json(text.decode(), origin=url)


def shard_urls(location: str | os.PathLike[str], index: ShardIndex) -> list[str]:
    """The URL or path of every shard the index lists, in index order."""
    if not index.shards:
        raise ValueError(f"{os.fspath(location)}: the shard index lists no shards; the set holds no tracks")
    return [resolve(location, shard.name) for shard in index.shards]


def pax_records(data: bytes) -> dict[bytes, bytes]:
    """The `length key=value\\n` records of a pax extended header."""
    records = {}
    position = 0
    while position < len(data) and data[position] != 0:
        space = data.index(b" ", position)
        end = position + int(data[position:space])
        key, _, value = data[space + 1 : end - 1].partition(b"=")
        records[key] = value
        position = end
    return records


def read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    """`size` bytes from the stream, or tarfile.ReadError naming what was cut short."""
    data = stream.read(size)
    if len(data) != size:
        raise tarfile.ReadError(f"tar stream ends inside {what} ({len(data)} of {size} bytes)")
    return data


def iter_tar_members(stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(name, data) of every regular file of a tar stream, in order; one read per member, no seeking."""
    overrides: dict[bytes, bytes] = {}
    while True:
        header = stream.read(BLOCK)
        if not header or header.count(0) == BLOCK:
            return
        if len(header) != BLOCK:
            raise tarfile.ReadError(f"tar stream ends inside a header ({len(header)} bytes)")
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")  # checks the checksum
        size = int(overrides.get(b"size", info.size))
        data = read_exactly(stream, size, f"member {info.name}")
        read_exactly(stream, -size % BLOCK, f"the padding of {info.name}")
        if info.type == tarfile.XHDTYPE:
            overrides = pax_records(data)
            continue
        if info.type == tarfile.GNUTYPE_LONGNAME:
            overrides = {b"path": data.rstrip(b"\0")}
            continue
        name = overrides.get(b"path", b"").decode() or info.name
        overrides = {}
        if info.type in tarfile.REGULAR_TYPES:
            yield name, data


def expand_tar_streams(
    sources: Iterable[dict[str, Any]], handler: Callable[[Exception], bool]
) -> Iterator[dict[str, Any]]:
    """webdataset stage: opened shards -> file members, each shard followed by the end marker `{}`."""
    for source in sources:
        stream = source["stream"]
        try:
            for name, data in iter_tar_members(stream):
                yield {"fname": name, "data": data, "__url__": source["url"]}
            yield {}
            stream.close()  # a pipe reports its command's failure here
        except Exception as err:  # any failure of one shard, reported to the caller's handler
            with contextlib.suppress(Exception):
                stream.close()
            err.args = (f"{source['url']}: {err}", *err.args[1:])
            if not handler(err):
                return


def tar_samples(urls: Iterable[dict[str, Any]], handler: Callable[[Exception], bool]) -> Iterator[dict[str, Any]]:
    """webdataset stage: {"url": ...} dicts -> samples ({"__key__", "__url__", "pcm", "json"})."""
    streams = url_opener(urls, handler=handler)
    return group_by_keys(expand_tar_streams(streams, handler), handler=handler)
