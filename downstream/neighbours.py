"""`python -m downstream.neighbours {build,query}`: the tracks most similar to a track or an audio file.

    python -m downstream.neighbours build EMBEDDINGS --out INDEX [--metric cosine]
    python -m downstream.neighbours query INDEX --track ID [-k 10] [--json]
    python -m downstream.neighbours query INDEX --audio FILE [--backbone SOURCE] [-k 10] [--json]

EMBEDDINGS is the folder `python -m downstream.embed` writes (one pooled row per track) or a .parquet file of
`python -m downstream.embed_files`. The index (`downstream.neighbour_index`) is exact below --exact-below tracks
and an HNSW graph above. A query by track id leaves the track itself out; a query by audio embeds the file with
the backbone the embeddings were made with (recorded in their `_embedding.json`; --backbone for a single file, or
to use another backbone of the same embedding size) and pools its windows the same way.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from musicssl.data_prep.entry import UserError, run_command
from musicssl.data_prep.subcommands import run_subcommand
from musicssl.downstream.embed import SETTINGS_NAME as EMBEDDING_SETTINGS
from musicssl.downstream.embed_files import embed_files
from musicssl.downstream.extract_task import ExtractionSettings, default_device
from musicssl.downstream.neighbour_index import (
    EXACT_BELOW,
    HnswSettings,
    IndexSettings,
    Metric,
    NeighbourIndex,
    build_index,
    prepare,
    write_index_folder,
)
from musicssl.trainer.export import load_backbone


@dataclass(frozen=True)
class Embeddings:
    """Track ids and their (N, D) embeddings, with the settings `downstream.embed` recorded (None for a file)."""

    track_ids: list[str]
    vectors: np.ndarray
    source: dict[str, Any] | None


def read_embeddings(path: Path) -> Embeddings:
    """One pooled embedding per track from an embedding folder or parquet file; per-window rows, an empty set and
    duplicate ids are UserErrors."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not path.exists():
        raise UserError(f"{path}: no such embeddings; write them with `python -m downstream.embed` or embed_files")
    dataset = ds.dataset(path, format="parquet")
    if "window" in dataset.schema.names:
        raise UserError(f"{path}: one row per window; index pooled embeddings (downstream.embed without --windows)")
    table = dataset.to_table(columns=["track_id", "embedding"])
    if table.num_rows == 0:
        raise UserError(f"{path}: no embeddings in it (0 rows); embed some tracks first")
    if pc.count_distinct(table.column("track_id")).as_py() != table.num_rows:
        raise UserError(f"{path}: a track id appears more than once; embed each track once")
    column = table.column("embedding")
    dim = column.type.list_size
    vectors = np.concatenate([chunk.flatten().to_numpy().reshape(-1, dim) for chunk in column.chunks])
    settings = path / EMBEDDING_SETTINGS
    source = json.loads(settings.read_text()) if settings.is_file() else None
    return Embeddings(table.column("track_id").to_pylist(), vectors, source)


@dataclass
class Build:
    """Index embeddings for similarity search: exact below --exact-below tracks, HNSW above."""

    embeddings: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="EMBEDDINGS")]
    """Folder written by `python -m downstream.embed`, or a .parquet file of `python -m downstream.embed_files`."""
    out: Path
    """Index folder (created; an index already there is replaced)."""
    metric: Metric = "cosine"
    """cosine: inner product of unit-length embeddings; dot: of the embeddings as they are."""
    exact_below: int = EXACT_BELOW
    """Index exactly below this many tracks, with an HNSW graph from there on."""
    hnsw: HnswSettings = field(default_factory=HnswSettings)
    """The HNSW graph's settings (ef_search is the default of queries)."""
    progress: bool = True
    """Show a progress bar while building an HNSW graph."""

    def run(self) -> int:
        embeddings = read_embeddings(self.embeddings)
        vectors = prepare(embeddings.vectors, self.metric)
        index, kind = build_index(vectors, self.exact_below, self.hnsw, self.progress)
        settings = IndexSettings(
            metric=self.metric,
            kind=kind,
            dim=vectors.shape[1],
            tracks=len(vectors),
            embeddings=str(self.embeddings.resolve()),
            hnsw=self.hnsw if kind == "hnsw" else None,
            source=embeddings.source,
        )
        write_index_folder(self.out, index, embeddings.track_ids, settings)
        print(f"indexed {len(vectors)} tracks ({vectors.shape[1]}-d, {self.metric}, {kind}) -> {self.out}")
        return 0


@dataclass
class Query:
    """The k tracks nearest to a track of the index or to an audio file, with their similarity scores."""

    index: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="INDEX")]
    """Index folder written by `build`."""
    track: str | None = None
    """Track id of the index to query with (left out of its own answer)."""
    audio: Path | None = None
    """Audio file to query with, embedded with --backbone."""
    backbone: str | None = None
    """Backbone for --audio (any source load_backbone reads); default: the one the embeddings were made with."""
    k: Annotated[int, tyro.conf.arg(aliases=["-k"])] = 10
    """Number of neighbours."""
    ef_search: int | None = None
    """HNSW candidate list of this query (more: higher recall, slower); default: the index's."""
    json: bool = False
    """Print one JSON object instead of a table."""
    device: str = field(default_factory=default_device)
    """Torch device for embedding --audio."""

    def run(self) -> int:
        if (self.track is None) == (self.audio is None):
            raise UserError("query with exactly one of --track ID and --audio FILE")
        if self.k < 1:
            raise UserError(f"-k must be >= 1, got {self.k}")
        found = NeighbourIndex.load(self.index)
        if self.track is not None:
            row = found.row_of(self.track)
            neighbours = found.nearest(found.embedding(row), self.k, exclude=[row], ef_search=self.ef_search)[0]
        else:
            neighbours = found.nearest(self.embed_audio(found.settings), self.k, ef_search=self.ef_search)[0]
        query = self.track if self.track is not None else str(self.audio)
        if self.json:
            rows = [{"track_id": track, "score": score} for track, score in neighbours]
            print(json.dumps({"query": query, "k": self.k, "neighbours": rows}, indent=1))
        else:
            width = max([len("track_id"), *(len(track) for track, _ in neighbours)])
            print(f"nearest to {query}:\n rank  {'track_id':<{width}}  score")
            for rank, (track, score) in enumerate(neighbours, 1):
                print(f"{rank:>5}  {track:<{width}}  {score:.4f}")
        return 0

    def embed_audio(self, settings: IndexSettings) -> np.ndarray:
        """The audio file's (1, D) embedding, pooled as the indexed embeddings were, by a backbone of their size."""
        source = settings.source or {}
        backbone_source = self.backbone or source.get("backbone")
        if backbone_source is None:
            raise UserError(f"{self.index} records no backbone (built from a single file): give --backbone")
        backbone, _ = load_backbone(backbone_source)
        if backbone.embed_dim != settings.dim:
            raise UserError(
                f"backbone {backbone_source} gives {backbone.embed_dim}-d embeddings but the index {self.index} "
                f"holds {settings.dim}-d ones (from {source.get('backbone', settings.embeddings)})"
            )
        extraction = ExtractionSettings(device=self.device, cache_dir=None, progress=False)
        result = embed_files(backbone, [(self.audio.stem, self.audio)], extraction, source.get("pooling", "mean"))
        if result.failures:
            path, reason = result.failures[0]
            raise UserError(f"{path}: cannot be embedded: {reason}")
        return result.embeddings


COMMANDS = {"build": Build, "query": Query}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand."""
    return run_subcommand(COMMANDS, argv, "python -m downstream.neighbours")


def cli() -> int:
    """The console script `musicssl-neighbours` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
