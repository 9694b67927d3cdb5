"""`python -m downstream.embed_files --backbone SOURCE INPUT... --out FILE`: one embedding per audio file.

INPUT is an audio file, a folder (every audio file under it) or a CSV manifest with a `path` column, as for
`python -m data_prep`. Files are decoded to mono at the backbone's sample rate, cut into non-overlapping
windows of its input length (a file shorter than one window is zero-padded) and the window embeddings are
averaged per file. Files that fail to decode, and pipes or devices (never opened), are reported on stderr and
skipped.

Track ids are the ones `python -m data_prep` would give, so embeddings join with shard sets: a manifest's
`track_id` column, else the path relative to the folder with "/" turned into "_" and no extension; a file
given directly gets its name without extension.

Output, chosen by the extension of --out:
- `.npy`: a float32 (N, D) array, and next to it `<name>.track_ids.txt` with the N track ids, one a line,
  in the same order as the rows;
- `.parquet`: columns `track_id` (string) and `embedding` (fixed-size list of D float32), one row per track.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro
from torch import nn

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.audio_files import special_kind
from musicssl.data_prep.decode import DecodeError, decode_file
from musicssl.data_prep.entry import UserError, run_command
from musicssl.data_prep.inputs import find_inputs, safe_key
from musicssl.downstream.extract_task import (
    DEFAULT_BATCH_SIZE,
    ExtractionSettings,
    default_device,
    embed_tracks,
    pool_windows,
    prepare_backbone,
    track_windows,
    with_progress,
)
from musicssl.trainer.export import load_backbone

OUTPUT_SUFFIXES = (".npy", ".parquet")
IDS_SUFFIX = ".track_ids.txt"


@dataclass(frozen=True)
class EmbedArgs:
    """Embed audio files with a frozen backbone: one vector per file, the mean of its window embeddings."""

    inputs: Annotated[tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="INPUT")]
    """Audio files, folders of audio, or CSV manifests with a path column."""
    backbone: str
    """backbone.safetensors exported by train.py, a pretrained folder (config.json + model.safetensors, from
    `python -m downstream.pretrained`), a checkpoint folder runs/.../checkpoints/step-*, or a deezer .pt checkpoint."""
    out: Path
    """Output file: .npy (plus <name>.track_ids.txt) or .parquet (track_id, embedding columns)."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Windows per forward pass."""
    device: str = field(default_factory=default_device)
    """Torch device; default cuda when available."""
    bf16: bool = False
    """bf16 autocast (CUDA only)."""


@dataclass
class EmbeddedFiles:
    """Track embeddings (N, D) with their ids, and the files that could not be decoded with the reason."""

    track_ids: list[str]
    embeddings: np.ndarray
    failures: list[tuple[Path, str]]


def list_inputs(inputs: Sequence[Path]) -> list[tuple[str, Path]]:
    """(track id, path) of every file named by the inputs; duplicate ids are an error."""
    found: list[tuple[str, Path]] = []
    for given in inputs:
        if given.is_dir() or given.suffix.lower() == ".csv":
            found.extend((track.track_id, track.path) for track in find_inputs(given))
        elif given.exists():  # a pipe or device too: embed_files reports it as skipped
            found.append((safe_key(given.stem), given))
        else:
            raise FileNotFoundError(f"{given}: no such file or folder; give audio files, folders or manifests")
    seen: dict[str, Path] = {}
    for track_id, path in found:
        if track_id in seen:
            raise ValueError(
                f"track id {track_id!r} names both {seen[track_id]} and {path}; embed them in separate runs "
                "or list them in a manifest with distinct track_id values"
            )
        seen[track_id] = path
    return found


def embed_files(
    backbone: nn.Module, files: Sequence[tuple[str, Path]], settings: ExtractionSettings, pooling: str = "mean"
) -> EmbeddedFiles:
    """Decode, window and embed every file, pooling its windows (`extract_task.pool_windows`); undecodable files
    are recorded in `failures`, not raised."""
    backbone = prepare_backbone(backbone, settings)
    track_ids: list[str] = []
    failures: list[tuple[Path, str]] = []

    def decoded_windows() -> Iterator[np.ndarray]:
        for track_id, path in files:
            kind = special_kind(path.stat().st_mode)
            if kind:  # decoding would wait forever for a pipe's writer
                failures.append((path, f"not a regular file: {kind}"))
                continue
            try:
                wave = decode_file(path, backbone.sample_rate).wave
            except DecodeError as err:
                failures.append((path, str(err)))
                continue
            track_ids.append(track_id)
            yield track_windows(wave, backbone.num_samples)

    per_track = embed_tracks(backbone, decoded_windows(), settings.batch_size, settings.bf16)
    pooled = [
        pool_windows(windows, pooling)
        for windows in with_progress(per_track, len(files), "embedding", settings.progress)
    ]
    embeddings = np.stack(pooled) if pooled else np.zeros((0, backbone.embed_dim), dtype=np.float32)
    return EmbeddedFiles(track_ids, embeddings.astype(np.float32, copy=False), failures)


def ids_path(out: Path) -> Path:
    """The track-id list written next to a .npy output: `emb.npy` -> `emb.track_ids.txt`."""
    return out.with_suffix(IDS_SUFFIX)


def write_embeddings(out: Path, track_ids: Sequence[str], embeddings: np.ndarray) -> list[Path]:
    """Write .npy + track ids, or .parquet (see the module docstring), atomically; returns the files."""
    buffer = io.BytesIO()
    if out.suffix == ".npy":
        np.save(buffer, embeddings)
        write_atomic(out, buffer.getvalue())
        write_atomic(ids_path(out), "".join(f"{track_id}\n" for track_id in track_ids).encode())
        return [out, ids_path(out)]
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1])
        pq.write_table(pa.table({"track_id": pa.array(track_ids, pa.string()), "embedding": vectors}), buffer)
        write_atomic(out, buffer.getvalue())
        return [out]
    raise ValueError(f"{out}: unknown output format; name the file .npy or .parquet")


def main(argv: list[str] | None = None) -> int:
    """Command line: embed, report skipped files on stderr, write the output; 1 if nothing was embedded."""
    args = tyro.cli(EmbedArgs, args=argv)
    if args.out.suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"{args.out}: unknown output format; name the file .npy or .parquet")
    files = list_inputs(args.inputs)
    backbone, _ = load_backbone(args.backbone)
    settings = ExtractionSettings(args.batch_size, args.device, args.bf16, cache_dir=None)
    result = embed_files(backbone, files, settings)
    for path, reason in result.failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not result.track_ids:
        print(f"no file could be embedded ({len(files)} given); nothing written", file=sys.stderr)
        return 1
    written = write_embeddings(args.out, result.track_ids, result.embeddings)
    print(
        f"embedded {len(result.track_ids)} tracks ({result.embeddings.shape[1]}-d), "
        f"skipped {len(result.failures)}: {', '.join(map(str, written))}"
    )
    return 0


def cli() -> int:
    """The console script `musicssl-embed` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
