"""A faiss index of track embeddings searched by inner product: exact below a size, HNSW above; saved as a folder.

Cosine similarity is the inner product of unit rows (`downstream.similarity.unit_rows`); `dot` keeps the raw
embeddings. Up to EXACT_BELOW tracks the index is exact (`IndexFlatIP`: it builds instantly and one query scans
every track); from there on it is an HNSW graph (`IndexHNSWFlat`, METRIC_INNER_PRODUCT): at 1M tracks on one core
it answers a query in 1.6 ms instead of 136 ms and returns 92 % of the exact top 10 (98 % at 100k), after a
build of ~10 min (docs/benchmarks.md, "Similarity search"). The folder holds
`index.faiss`, `track_ids.parquet` (row i of the index is track i) and `index.json` (metric, kind, dimension,
HNSW settings, the source embeddings' settings), written last: a folder without it is no index.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from musicssl.data_prep.atomic import FILE_MODE, write_atomic
from musicssl.data_prep.entry import UserError
from musicssl.data_prep.progress import progress_bar
from musicssl.downstream.similarity import unit_rows

Metric = Literal["cosine", "dot"]
Kind = Literal["exact", "hnsw"]
INDEX_NAME, IDS_NAME, SETTINGS_NAME = "index.faiss", "track_ids.parquet", "index.json"
EXACT_BELOW = 200_000  # tracks; exact: <= ~30 ms a query, >= ~100 queries/s a core, no build (docs/benchmarks.md)
ADD_CHUNK = 50_000  # vectors added to an HNSW graph between progress updates


@dataclass(frozen=True)
class HnswSettings:
    """The HNSW graph: links per node, the candidate list while building and while searching (faiss' names)."""

    m: int = 32
    ef_construction: int = 80
    ef_search: int = 256  # recall@10 0.92 at 1M tracks, 0.98 at 100k (128: 0.85, 0.96)


@dataclass(frozen=True)
class IndexSettings:
    """What `index.json` records: how the index was built and from which embeddings."""

    metric: Metric
    kind: Kind
    dim: int
    tracks: int
    embeddings: str
    hnsw: HnswSettings | None = None
    source: dict[str, Any] | None = None
    """The embeddings' `_embedding.json` (`downstream.embed`: backbone, pooling, ...); None for a single file."""

    @classmethod
    def from_json(cls, text: str) -> IndexSettings:
        """Settings from `index.json` text."""
        values = json.loads(text)
        hnsw = values.pop("hnsw")
        return cls(**values, hnsw=None if hnsw is None else HnswSettings(**hnsw))


def prepare(vectors: np.ndarray, metric: Metric) -> np.ndarray:
    """Rows as the index stores and searches them: float32, unit length for cosine."""
    return unit_rows(vectors) if metric == "cosine" else np.ascontiguousarray(vectors, dtype=np.float32)


def build_index(
    vectors: np.ndarray, exact_below: int = EXACT_BELOW, hnsw: HnswSettings | None = None, progress: bool = True
) -> tuple[faiss.Index, Kind]:
    """An exact index of the prepared rows below `exact_below` tracks, else an HNSW graph (progress while adding)."""
    dim = vectors.shape[1]
    if len(vectors) < exact_below:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index, "exact"
    hnsw = hnsw or HnswSettings()
    index = faiss.IndexHNSWFlat(dim, hnsw.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = hnsw.ef_construction
    with progress_bar(total=len(vectors), desc="indexing", unit="track", disable=not progress) as bar:
        for start in range(0, len(vectors), ADD_CHUNK):
            index.add(vectors[start : start + ADD_CHUNK])
            bar.update(min(ADD_CHUNK, len(vectors) - start))
    return index, "hnsw"


def search(
    index: faiss.Index, queries: np.ndarray, k: int, ef_search: int | None = None, exclude: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (Q, k) and scores of each prepared query's k best matches, best first; query i never gets the row
    `exclude[i]` (a track searched by itself: it would be its own best match). `ef_search` only for HNSW.
    -1 pads a short answer."""
    extra = 1 if len(exclude) else 0
    if ef_search is not None:
        index.hnsw.efSearch = max(ef_search, k + extra)
    scores, rows = index.search(queries, min(k + extra, index.ntotal))
    if extra:
        keep = rows != np.asarray(exclude)[:, None]
        keep[keep.all(axis=1), -1] = False  # the track was not among its own best: drop the last instead
        rows, scores = rows[keep].reshape(len(rows), -1), scores[keep].reshape(len(rows), -1)
    return rows[:, :k], scores[:, :k]


def write_faiss(index: faiss.Index, path: Path) -> None:
    """faiss' own writer into a temporary file renamed over `path` (data_prep.atomic's guarantee, without a
    copy of the index in memory)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        faiss.write_index(index, temporary)
        os.chmod(temporary, FILE_MODE)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_index_folder(folder: Path, index: faiss.Index, track_ids: Sequence[str], settings: IndexSettings) -> None:
    """The index, its track ids and, last, its settings; a rebuild first removes the settings, so that a folder
    caught half-written is refused rather than read with the old ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_NAME).unlink(missing_ok=True)
    write_faiss(index, folder / INDEX_NAME)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"track_id": pa.array(track_ids, pa.string())}), buffer)
    write_atomic(folder / IDS_NAME, buffer.getvalue())
    write_atomic(folder / SETTINGS_NAME, (json.dumps(asdict(settings), indent=1) + "\n").encode())


@dataclass
class NeighbourIndex:
    """A loaded index folder: the faiss index, its track ids (row order) and settings."""

    folder: Path
    index: faiss.Index
    track_ids: list[str]
    settings: IndexSettings
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, folder: Path) -> NeighbourIndex:
        """Read a folder written by `write_index_folder`; one that is not an index is a UserError."""
        import pyarrow.parquet as pq

        if not (folder / SETTINGS_NAME).is_file():
            raise UserError(
                f"{folder}: no similarity index there ({SETTINGS_NAME} missing); build one with "
                f"`python -m downstream.neighbours build EMBEDDINGS --out {folder}`"
            )
        settings = IndexSettings.from_json((folder / SETTINGS_NAME).read_text())
        track_ids = pq.read_table(folder / IDS_NAME).column("track_id").to_pylist()
        return cls(folder, faiss.read_index(str(folder / INDEX_NAME)), track_ids, settings)

    def row_of(self, track_id: str) -> int:
        """The index row of a track; an unknown id is a UserError."""
        if not self._rows:
            self._rows = {track: row for row, track in enumerate(self.track_ids)}
        if track_id not in self._rows:
            raise UserError(f"track id {track_id!r} is not in the index {self.folder} ({len(self.track_ids)} tracks)")
        return self._rows[track_id]

    def nearest(
        self, queries: np.ndarray, k: int, exclude: Sequence[int] = (), ef_search: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """The k nearest tracks (id, score), best first, of each raw query embedding (Q, D)."""
        hnsw = self.settings.hnsw
        ef = (ef_search or hnsw.ef_search) if hnsw is not None else None
        rows, scores = search(self.index, prepare(queries, self.settings.metric), k, ef, exclude)
        return [
            [(self.track_ids[row], float(score)) for row, score in zip(found, values, strict=True) if row >= 0]
            for found, values in zip(rows, scores, strict=True)
        ]

    def embedding(self, row: int) -> np.ndarray:
        """The stored (prepared) embedding of a row, (1, D)."""
        return self.index.reconstruct(row)[None]
