"""`python -m downstream.embed --backbone SOURCE --data SHARDS --out FOLDER`: embeddings of a whole shard set.

Runs as one process or under any launcher that trains (torchrun, accelerate launch, srun): the rank and world size
come from the launcher's RANK / WORLD_SIZE (SLURM_PROCID / SLURM_NTASKS under srun), no process group is formed.
The track table (`tracks.parquet`) is cut into chunks of `--chunk-tracks` consecutive tracks; chunk c belongs to
rank c % world. Each rank reads its tracks' PCM straight from the shards by offset (pread, or range requests for
remote sets: no decoding), cuts them into non-overlapping backbone windows (a track shorter than a window is
zero-padded), embeds the windows in batches shared across tracks (bf16 autocast on GPUs by default) and writes
one parquet part per chunk, `FOLDER/part-RRRRR-CCCCC.parquet` (rank, chunk), written to a temporary name and
renamed: a part exists completely or not at all.

Restarting: a rerun (after a crash or kill -9) skips every chunk that already has a part, whatever rank wrote
it, so no track is missing or written twice. Chunk ids do not depend on the number of processes, so a rerun may
use another count. `FOLDER/_embedding.json` records the backbone, the set and the settings; a rerun with other
ones is refused.

Output (read the folder with `pyarrow.dataset.dataset(FOLDER)` or `pandas.read_parquet(FOLDER)`):
- default: one row per track, `track_id` (joins `track_id` of the set's tracks.parquet, hence its split and the
  manifest's tags) and `embedding` (fixed-size list of D float32), the window embeddings pooled by `--pooling`:
  `mean` (default, as `python -m downstream.embed_files`) or `max`;
- `--windows`: one row per window, `track_id`, `window` (its number in the track; it starts at window *
  input length / sample rate seconds) and `embedding`.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro
from torch import nn

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.entry import UserError, run_command
from musicssl.data_prep.pcm import pcm_to_float
from musicssl.data_prep.progress import progress_bar
from musicssl.downstream.extract_task import (
    DEFAULT_BATCH_SIZE,
    ExtractionSettings,
    embed_tracks,
    pool_windows,
    prepare_backbone,
    track_windows,
)
from musicssl.sharding.ranges import RangeRequest, RangeSource, range_source
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable, TrackTable, load_track_table
from musicssl.trainer.export import load_backbone

Pooling = Literal["mean", "max"]
SETTINGS_NAME = "_embedding.json"  # "_": pyarrow and pandas skip it when reading the folder
PART_PATTERN = re.compile(r"part-(\d{5})-(\d{5})\.parquet")
READ_RETRIES = 3
STALL_VARIABLE = "MUSICSSL_TEST_EMBED_STALL_AFTER_PARTS"  # tests: a rank stops working after this many parts


@dataclass(frozen=True)
class CatalogueArgs:
    """Embed every track of a shard set, in parallel over the launched processes, resumable after a kill."""

    backbone: str
    """backbone.safetensors, a pretrained folder, a checkpoint folder or a deezer .pt checkpoint (load_backbone)."""
    data: str
    """The shard set: a folder, URL or object-store location holding index.json and tracks.parquet."""
    out: Path
    """Output folder of the partitioned parquet dataset (created; a rerun continues it)."""
    windows: bool = False
    """One row per window instead of one pooled row per track."""
    pooling: Pooling = "mean"
    """How window embeddings are pooled per track (without --windows)."""
    chunk_tracks: int = 1024
    """Tracks per part; the unit of work and of restart."""
    batch_size: int = 4 * DEFAULT_BATCH_SIZE
    """Windows per forward pass."""
    device: str | None = None
    """Torch device; default cuda:LOCAL_RANK when CUDA is available, else cpu."""
    bf16: bool | None = None
    """bf16 autocast; default on for CUDA devices, off (not available) on the CPU."""
    progress: bool = True
    """Show a progress bar (tracks/s, audio-hours/s) per rank."""


@dataclass(frozen=True)
class Launch:
    rank: int = 0
    world: int = 1
    local_rank: int = 0


def launch_from_env(env: dict[str, str] | os._Environ[str] = os.environ) -> Launch:
    """Rank and world size from torchrun / accelerate (RANK, WORLD_SIZE) or srun (SLURM_PROCID, SLURM_NTASKS)."""
    if "WORLD_SIZE" in env:
        return Launch(int(env.get("RANK", "0")), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))
    if "SLURM_NTASKS" in env and "SLURM_PROCID" in env:
        return Launch(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", "0")))
    return Launch()


def chunk_rows(num_tracks: int, chunk_tracks: int) -> list[range]:
    """The fixed partition of the track table into chunks of `chunk_tracks` consecutive rows."""
    return [range(start, min(start + chunk_tracks, num_tracks)) for start in range(0, num_tracks, chunk_tracks)]


def committed_chunks(out: Path) -> set[int]:
    """Chunk ids that already have a part in `out`, written by any rank."""
    if not out.is_dir():
        return set()
    return {int(match.group(2)) for name in os.listdir(out) if (match := PART_PATTERN.fullmatch(name))}


def part_path(out: Path, rank: int, chunk: int) -> Path:
    return out / f"part-{rank:05d}-{chunk:05d}.parquet"


def read_track(source: RangeSource, url: str, offset: int, num_samples: int) -> np.ndarray:
    """A track's float32 waveform read by offset from its shard (the reading of `sharding.read.random_access`)."""
    pcm = np.empty(num_samples, dtype="<i2")
    request = RangeRequest(url, offset, memoryview(pcm).cast("B"))
    result: int | Exception = 0
    for _ in range(READ_RETRIES):
        (result,) = source.read([request])
        if result == pcm.nbytes:
            return pcm_to_float(pcm.astype(np.int16, copy=False))
    raise OSError(f"{url}: could not read {pcm.nbytes} bytes at {offset}: {result}; check the set with "
                  "`python -m sharding verify`")  # fmt: skip


def parquet_bytes(track_ids: Sequence[str], embeddings: np.ndarray, windows: np.ndarray | None) -> bytes:
    """A part's parquet file: track_id, [window,] embedding (fixed-size list of float32)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = embeddings.shape[1]
    columns: dict = {"track_id": pa.array(track_ids, pa.string())}
    if windows is not None:
        columns["window"] = pa.array(windows, pa.int32())
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), pa.float32()), dim)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


@dataclass
class Throughput:
    """Tracks and seconds of audio embedded by this rank, and how long it took."""

    tracks: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of this process over the same span (all its threads)
    parts: int = 0

    @property
    def tracks_per_s(self) -> float:
        return self.tracks / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def audio_hours_per_s(self) -> float:
        return self.audio_s / 3600 / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def audio_hours_per_cpu_hour(self) -> float:
        return self.audio_s / self.cpu_s if self.cpu_s else 0.0


@dataclass
class CatalogueJob:
    """What one rank embeds and where it writes."""

    shards: ShardSet
    table: TrackTable
    out: Path
    chunk_tracks: int
    windows: bool = False
    pooling: Pooling = "mean"
    launch: Launch = field(default_factory=Launch)

    def my_chunks(self) -> list[tuple[int, range]]:
        """This rank's chunks without a part yet."""
        done = committed_chunks(self.out)
        chunks = chunk_rows(len(self.table), self.chunk_tracks)
        return [
            (c, rows) for c, rows in enumerate(chunks) if c % self.launch.world == self.launch.rank and c not in done
        ]


def embed_catalogue(backbone: nn.Module, job: CatalogueJob, settings: ExtractionSettings) -> Throughput:
    """Embed this rank's pending chunks, committing one part per chunk; returns this rank's throughput."""
    job.shards.require_sample_rate(backbone.sample_rate)
    backbone = prepare_backbone(backbone, settings)
    pending = job.my_chunks()
    table, urls = job.table, job.shards.urls
    assert table.track_ids is not None
    source = range_source(urls[0], 16) if urls else None
    if source is None:
        raise UserError(f"{job.shards.location}: its shards cannot be read by offset (a pipe: URL); copy the set")
    stall_after = int(os.environ.get(STALL_VARIABLE, "0"))
    stats = Throughput()
    start, cpu_start = time.perf_counter(), time.process_time()
    total = sum(len(rows) for _, rows in pending)
    rate = backbone.sample_rate
    description = "embedding" if job.launch.world == 1 else f"rank {job.launch.rank} embedding"
    with progress_bar(total=total, desc=description, unit="track", disable=not settings.progress) as bar:
        for chunk, rows in pending:

            def windows_of(rows: range = rows) -> Iterator[np.ndarray]:
                for row in rows:
                    wave = read_track(
                        source, urls[table.shard[row]], int(table.payload_offset[row]), int(table.num_samples[row])
                    )
                    yield track_windows(wave, backbone.num_samples)

            per_track = embed_tracks(backbone, windows_of(), settings.batch_size, settings.bf16)
            ids: list[str] = []
            vectors: list[np.ndarray] = []
            numbers: list[np.ndarray] = []
            for row, embeddings in zip(rows, per_track, strict=True):
                track_id = str(table.track_ids[row])
                if job.windows:
                    ids.extend([track_id] * len(embeddings))
                    numbers.append(np.arange(len(embeddings), dtype=np.int32))
                    vectors.append(embeddings)
                else:
                    ids.append(track_id)
                    vectors.append(pool_windows(embeddings, job.pooling)[None])
                stats.tracks += 1
                stats.audio_s += float(table.num_samples[row]) / rate
                bar.update(1)
                elapsed = max(time.perf_counter() - start, 1e-9)
                bar.set_postfix_str(f"{stats.tracks / elapsed:.1f} tracks/s, "
                                    f"{stats.audio_s / 3600 / elapsed:.3f} audio-h/s", refresh=False)  # fmt: skip
            data = parquet_bytes(
                ids, np.concatenate(vectors).astype(np.float32), np.concatenate(numbers) if job.windows else None
            )
            write_atomic(part_path(job.out, job.launch.rank, chunk), data)
            stats.parts += 1
            if stall_after and stats.parts >= stall_after:
                while True:  # a test kills the run here, with a part committed and others pending
                    time.sleep(1)
    stats.elapsed_s, stats.cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    return stats


def check_settings(out: Path, settings: dict) -> None:
    """Record the run's settings in `out`, or refuse a rerun whose settings differ from the recorded ones."""
    path = out / SETTINGS_NAME
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded != settings:
            changed = sorted(key for key in settings.keys() | recorded.keys() if recorded.get(key) != settings.get(key))
            was = {key: recorded.get(key) for key in changed}
            raise UserError(
                f"{out} holds embeddings made with other settings ({', '.join(changed)} differ, were {was}); "
                "use another --out or the same settings"
            )
        return
    write_atomic(path, (json.dumps(settings, indent=1, sort_keys=True) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    """Command line: this rank's share of the set, then a one-line summary."""
    args = tyro.cli(CatalogueArgs, args=argv)
    if args.chunk_tracks < 1:
        raise UserError(f"--chunk-tracks must be >= 1, got {args.chunk_tracks}")
    launch = launch_from_env()
    device = args.device or (f"cuda:{launch.local_rank}" if torch.cuda.is_available() else "cpu")
    bf16 = torch.device(device).type == "cuda" if args.bf16 is None else args.bf16
    settings = ExtractionSettings(args.batch_size, device, bf16, cache_dir=None, progress=args.progress)
    try:
        shards = ShardSet.open(args.data)
        table = load_track_table(args.data, shards.index, with_track_ids=True)
    except (FileNotFoundError, StaleTrackTable) as err:
        raise UserError(str(err)) from err
    backbone, _ = load_backbone(args.backbone)
    args.out.mkdir(parents=True, exist_ok=True)
    recorded = {
        key: value
        for key, value in asdict(args).items()
        if key in ("backbone", "data", "windows", "pooling", "chunk_tracks")
    }
    check_settings(args.out, {**recorded, "tracks": len(table), "bf16": bf16})
    job = CatalogueJob(shards, table, args.out, args.chunk_tracks, args.windows, args.pooling, launch)
    stats = embed_catalogue(backbone, job, settings)
    print(f"rank {launch.rank}/{launch.world}: {stats.tracks} tracks in {stats.parts} parts, "
          f"{stats.tracks_per_s:.2f} tracks/s, {stats.audio_hours_per_s:.4f} audio-hours/s, "
          f"{stats.audio_hours_per_cpu_hour:.0f} audio-hours per CPU-hour ({torch.get_num_threads()} threads) "
          f"-> {args.out}")  # fmt: skip
    return 0


def cli() -> int:
    """The console script `musicssl-catalogue` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
