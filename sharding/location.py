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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from webdataset.gopen import gopen
from webdataset.tariterators import group_by_keys, url_opener

from musicssl.sharding.format import INDEX_NAME, ShardIndex

PLACEHOLDER = "{}"
URL_PREFIXES = ("http://", "https://")
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "oss")  # read through fsspec (s3fs, gcsfs, ...)
BLOCK = tarfile.BLOCKSIZE


def url_scheme(text: str) -> str | None:
    """The `scheme` of `scheme://...`, or None for a path or a `pipe:` command."""
    scheme, separator, _ = text.partition("://")
    return scheme.lower() if separator and scheme.isalnum() else None


def is_object_store(location: str | os.PathLike[str]) -> bool:
    """Whether the set lives in an object store that fsspec reads (s3://, gs://, ...)."""
    return url_scheme(os.fspath(location)) in OBJECT_STORE_SCHEMES


def resolve(location: str | os.PathLike[str], name: str) -> str:
    """The URL or path of file `name` (index.json or a shard) inside the set at `location`."""
    text = os.fspath(location)
    if PLACEHOLDER in text:
        return text.replace(PLACEHOLDER, name)
    if text.startswith(URL_PREFIXES) or is_object_store(text):
        return f"{text.rstrip('/')}/{name}"
    if "://" in text or text.startswith("pipe:"):
        raise ValueError(
            f"{text}: unsupported shard location; give a local folder, an http(s) base URL, an object store URL "
            f"({', '.join(s + '://' for s in OBJECT_STORE_SCHEMES)}), or a template with `{{}}` standing for the "
            "file name, e.g. `pipe:aws s3 cp s3://bucket/set/{} -`"
        )
    return str(Path(text).expanduser().absolute() / name)


def read_set_file(location: str | os.PathLike[str], name: str) -> bytes:
    """The bytes of a small file of the set (index.json, tracks.parquet), read the way its shards are."""
    url = resolve(location, name)
    try:
        if is_object_store(url):
            import fsspec  # the object store's package (s3fs, gcsfs) is an optional extra

            with fsspec.open(url, "rb") as stream:
                data = stream.read()
        else:
            with gopen(url, "rb") as stream:
                data = stream.read()
    except (OSError, ValueError, ImportError) as err:
        raise FileNotFoundError(f"cannot read {url} ({err})") from err
    if not data:
        raise FileNotFoundError(f"{url} is empty or missing")
    return data


def load_index(location: str | os.PathLike[str]) -> ShardIndex:
    """Read the set's index.json through the same opener the shards use (`sharding.shard_set.ShardSet.open` is
    how the rest of the code opens a set)."""
    try:
        text = read_set_file(location, INDEX_NAME)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{os.fspath(location)}: no readable shard index: {err}; check the location, or build the set with "
            "`python -m data_prep`"
        ) from err
    return ShardIndex.from_json(text.decode(), origin=resolve(location, INDEX_NAME))


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


def skip_exactly(stream: BinaryIO, size: int, what: str) -> None:
    """Move past `size` bytes: a seek on a seekable stream (checked against its end), else a read."""
    if not (getattr(stream, "seekable", None) and stream.seekable()):
        read_exactly(stream, size, what)
        return
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    if position + size > end:
        raise tarfile.ReadError(f"tar stream ends inside {what} ({end - position} of {size} bytes)")
    stream.seek(position + size)


@dataclass(frozen=True)
class TarMember:
    """One regular file of a tar: its name, where its payload starts in the tar, its size, and its bytes."""

    name: str
    offset: int
    size: int
    data: bytes | None  # None when the caller did not want it read


def iter_tar_members(stream: BinaryIO, wanted: Callable[[str], bool] = lambda name: True) -> Iterator[TarMember]:
    """Every regular file of a tar stream, in order, with its payload offset; one read per wanted member.

    Members `wanted` rejects are skipped (seeked over on a seekable stream), so their offsets cost no reads.
    """
    overrides: dict[bytes, bytes] = {}
    position = 0
    while True:
        header = stream.read(BLOCK)
        if not header or header.count(0) == BLOCK:
            return
        if len(header) != BLOCK:
            raise tarfile.ReadError(f"tar stream ends inside a header ({len(header)} bytes)")
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")  # checks the checksum
        size = int(overrides.get(b"size", info.size))
        offset = position + BLOCK
        position = offset + size + (-size % BLOCK)
        special = info.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME)
        name = overrides.get(b"path", b"").decode() or info.name
        keep = special or (info.type in tarfile.REGULAR_TYPES and wanted(name))
        data = read_exactly(stream, size, f"member {info.name}") if keep else None
        if keep:
            read_exactly(stream, -size % BLOCK, f"the padding of {info.name}")
        else:
            skip_exactly(stream, size + (-size % BLOCK), f"member {info.name}")
        if info.type == tarfile.XHDTYPE:
            overrides = pax_records(data or b"")
            continue
        if info.type == tarfile.GNUTYPE_LONGNAME:
            overrides = {b"path": (data or b"").rstrip(b"\0")}
            continue
        overrides = {}
        if info.type in tarfile.REGULAR_TYPES:
            yield TarMember(name, offset, size, data)


def expand_tar_streams(
    sources: Iterable[dict[str, Any]], handler: Callable[[Exception], bool]
) -> Iterator[dict[str, Any]]:
    """webdataset stage: opened shards -> file members, each shard followed by the end marker `{}`."""
    for source in sources:
        stream = source["stream"]
        try:
            for member in iter_tar_members(stream):
                yield {"fname": member.name, "data": member.data, "__url__": source["url"]}
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
