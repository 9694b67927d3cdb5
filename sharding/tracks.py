"""The track table: where every track's payload lies in the shards, so a reader can fetch any crop of any track.

One Parquet file per set, `tracks.parquet` beside index.json, with a row per track: its shard (position in the
index), the byte offset of its payload (`.pcm` or `.mel` member, `sharding.layout`) in that tar, its number of
samples, its id and its split. The tar
shards stay plain WebDataset shards. The table names the shards it covers (name and sha256) in its metadata, so
a table that no longer matches index.json is refused, and `build_track_table` rebuilds it incrementally: only
shards it does not cover are scanned (headers and the small JSON members; the audio is seeked over).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.progress import progress_bar
from musicssl.sharding.format import INDEX_NAME, META_KEY, TRACKS_NAME, ShardIndex, ShardInfo
from musicssl.sharding.layout import Layout
from musicssl.sharding.location import iter_tar_members, read_set_file

SHARDS_KEY = b"musicssl.shards"  # parquet metadata: [[name, sha256, tracks], ...] in index order
SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("payload_offset", pa.int64()),
        ("num_samples", pa.int64()),
        ("track_id", pa.string()),
        ("split", pa.dictionary(pa.int16(), pa.string())),
    ]
)
READER_COLUMNS = ("shard", "payload_offset", "num_samples", "split")  # what training needs: no track ids


class StaleTrackTable(ValueError):
    """The track table is missing or does not match the set's index."""


@dataclass
class TrackTable:
    """Columns of the track table as NumPy arrays (track ids only when asked for)."""

    shards: list[ShardInfo]  # the index's shards, in index order; `shard` holds positions in this list
    shard: np.ndarray  # int32
    payload_offset: np.ndarray  # int64, byte offset of the track's first sample or frame in the shard
    num_samples: np.ndarray  # int64
    split_code: np.ndarray  # int16 position in `split_names`, -1 for a track without a split
    split_names: list[str]
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.shard)

    def select(self, split: str | None) -> np.ndarray:
        """Row numbers of the tracks of `split` (tracks without a split count as training data); None: all."""
        if split is None:
            return np.arange(len(self))
        wanted = [-1, self.split_names.index(split)] if split in self.split_names else [-1]
        return np.flatnonzero(np.isin(self.split_code, wanted))


def scan_shard(path: str | os.PathLike[str], shard_position: int, layout: Layout) -> pa.Table:
    """The track table rows of one local shard of a set in `layout`, read from its headers and JSON members only."""
    offsets: dict[str, tuple[int, int]] = {}
    metas: dict[str, dict] = {}
    with open(path, "rb") as stream:
        for member in iter_tar_members(stream, wanted=lambda name: name.endswith(f".{META_KEY}")):
            key, _, extension = member.name.partition(".")
            if extension == layout.member:
                offsets[key] = (member.offset, member.size)
            elif extension == META_KEY and member.data is not None:
                metas[key] = json.loads(member.data)
    rows = []
    for key, (offset, size) in offsets.items():
        meta = metas.get(key)
        if meta is None or size != layout.payload_bytes(meta["num_samples"]):
            raise ValueError(
                f"{path}: sample {key} has {size} {layout.member} bytes and metadata {meta and meta['num_samples']} "
                f"samples ({layout.encoding}); "
                "check the shard with `python -m sharding verify` and rebuild it with `python -m data_prep`"
            )
        rows.append((shard_position, offset, meta["num_samples"], meta["track_id"], meta.get("split")))
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in SCHEMA]
    return pa.Table.from_arrays(
        [pa.array(list(column), type=field.type) for column, field in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def covered_shards(table: pa.Table) -> list[tuple[str, str, int]]:
    """(name, sha256, tracks) of every shard a table holds rows of, from its metadata."""
    metadata = table.schema.metadata or {}
    return [tuple(entry) for entry in json.loads(metadata.get(SHARDS_KEY, b"[]"))]


def reusable_rows(path: Path, prefix: str = "") -> dict[tuple[str, str], pa.Table]:
    """Rows of an existing track table by (shard name with `prefix`, sha256); empty if there is none or it cannot
    be read, so `python -m sharding index` rebuilds a damaged table from the tars."""
    try:
        table = pq.read_table(path)
    except (FileNotFoundError, pa.ArrowException, OSError):
        return {}  # none, or damaged: its shards are scanned again
    rows: dict[tuple[str, str], pa.Table] = {}
    shard_column = table.column("shard").to_numpy()
    for position, (name, sha256, _) in enumerate(covered_shards(table)):
        rows[(prefix + name, sha256)] = table.filter(pa.array(shard_column == position))
    return rows


def build_track_table(
    directory: str | os.PathLike[str], reuse: Iterable[tuple[Path, str]] = (), progress: bool = False
) -> Path:
    """Write `tracks.parquet` for the local set in `directory`, scanning only the shards no table covers.

    `reuse` adds other tables to take rows from, as (path, prefix of their shard names): a merged set reuses
    its parts' tables.
    """
    directory = Path(directory)
    index = ShardIndex.load_local(directory)
    known = reusable_rows(directory / TRACKS_NAME)
    for path, prefix in reuse:
        known |= reusable_rows(path, prefix)
    pieces = []
    for position, info in enumerate(
        progress_bar(iterable=index.shards, desc="indexing tracks", unit="shard", disable=not progress)
    ):
        piece = known.get((info.name, info.sha256))
        if piece is None:
            piece = scan_shard(directory / info.name, position, index.layout)
        else:
            piece = piece.set_column(0, "shard", pa.array(np.full(len(piece), position, np.int32)))
        if len(piece) != info.samples:
            raise ValueError(
                f"{directory / info.name}: holds {len(piece)} tracks, {INDEX_NAME} says {info.samples}; check the "
                "set with `python -m sharding verify`"
            )
        pieces.append(piece.cast(SCHEMA))
    table = pa.concat_tables(pieces) if pieces else SCHEMA.empty_table()
    shards = [[info.name, info.sha256, info.samples] for info in index.shards]
    table = table.replace_schema_metadata({SHARDS_KEY: json.dumps(shards).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    path = directory / TRACKS_NAME
    write_atomic(path, buffer.getvalue())
    return path


def load_track_table(location: str | os.PathLike[str], index: ShardIndex, with_track_ids: bool = False) -> TrackTable:
    """The set's track table, checked against its index; StaleTrackTable says how to rebuild it."""
    hint = f"build it with `python -m sharding index {os.fspath(location)}`"
    try:
        data = read_set_file(location, TRACKS_NAME)
    except FileNotFoundError as err:
        raise StaleTrackTable(f"{os.fspath(location)}: no {TRACKS_NAME} ({err}); {hint}") from err
    columns = [*READER_COLUMNS, "track_id"] if with_track_ids else list(READER_COLUMNS)
    try:
        table = pq.read_table(io.BytesIO(data), columns=columns)
    except (pa.ArrowException, OSError) as err:
        where = f"{os.fspath(location)}/{TRACKS_NAME}"
        raise StaleTrackTable(f"{where}: unreadable ({type(err).__name__}: {err}); re{hint[1:]}") from err
    expected = [(info.name, info.sha256, info.samples) for info in index.shards]
    if covered_shards(table) != expected:
        raise StaleTrackTable(f"{os.fspath(location)}: {TRACKS_NAME} does not match {INDEX_NAME}; re{hint[1:]}")
    split = table.column("split").unify_dictionaries().combine_chunks()
    if isinstance(split, pa.ChunkedArray):  # an empty table has no chunk to combine
        split = pa.DictionaryArray.from_arrays(pa.array([], pa.int16()), pa.array([], pa.string()))
    return TrackTable(
        shards=list(index.shards),
        shard=table.column("shard").to_numpy(),
        payload_offset=table.column("payload_offset").to_numpy(),
        num_samples=table.column("num_samples").to_numpy(),
        split_code=split.indices.fill_null(-1).to_numpy().astype(np.int16),
        split_names=split.dictionary.to_pylist(),
        track_ids=table.column("track_id").to_numpy(zero_copy_only=False) if with_track_ids else None,
    )
