"""The GPU suite's `embed` section: `downstream.embed`'s core on one device (bf16 on a GPU) over a generated set."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu.sizes import PAPER_RATE, Run
from musicssl.downstream.embed import CatalogueJob, embed_catalogue
from musicssl.downstream.extract_task import ExtractionSettings
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import load_track_table
from musicssl.trainer.export import BackboneRecipe


def embed_section(run: Run) -> dict[str, Any]:
    """Tracks/s and audio-hours/s of one process embedding the small set with the paper ResNet, per batch size,
    after a warm-up pass (cuDNN autotuning, allocator) that is not counted."""
    location = run.small_shards(PAPER_RATE)
    shards = ShardSet.open(location)
    table = load_track_table(location, shards.index, with_track_ids=True)
    kwargs = {"width": 4, "duration_s": 1.0} if run.device.type != "cuda" else {}  # the smoke run: tiny and short
    torch.manual_seed(0)
    backbone = BackboneRecipe("resnet", kwargs).build().eval()
    bf16 = run.device.type == "cuda"
    rows, skipped = [], []
    for batch_size in run.sizes.embed_batch_sizes:
        if not run.budget.allows():
            skipped.append(f"batch {batch_size}: budget spent")
            continue
        settings = ExtractionSettings(batch_size, str(run.device), bf16, cache_dir=None, progress=False)
        for _pass in ("warm-up", "timed"):
            out = Path(tempfile.mkdtemp(dir=run.work, prefix="embed-"))
            stats = embed_catalogue(backbone, CatalogueJob(shards, table, out, chunk_tracks=64), settings)
        rows.append({
            "batch_size": batch_size, "bf16": bf16, "tracks": stats.tracks, "audio_hours": stats.audio_s / 3600,
            "tracks_per_s": stats.tracks_per_s, "audio_hours_per_s": stats.audio_hours_per_s,
        })  # fmt: skip
        run.log(f"batch {batch_size}: {stats.tracks_per_s:.1f} tracks/s, {stats.audio_hours_per_s:.3f} audio-h/s")
    return {"rows": rows, "skipped": skipped}
