"""Test helper: tiny labelled shard sets (tags + splits) of tones, and a tiny backbone to embed them fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicssl.data_prep.pcm import float_to_pcm
from musicssl.sharding.format import SHARD_PATTERN, ShardIndex, TrackMeta, encode_track
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.trainer.export import BackboneRecipe
from tests.support.shard_factory import write_shard

RATE = 16000
TINY_RESNET = BackboneRecipe(
    "resnet",
    {"width": 8, "duration_s": 1.0, "embed_dim": 16, "layers": [1, 1, 1, 1], "heads": 2, "n_mels": 32},
)
TONE_HZ = {"low": 220.0, "high": 1760.0}


@dataclass(frozen=True)
class LabelledTrack:
    """One synthetic track: its length, tags and split."""

    seconds: float
    tags: list[str] = field(default_factory=list)
    split: str | None = "train"


def tone(seconds: float, tags: Sequence[str], seed: int) -> np.ndarray:
    """A sine whose pitch follows the `low`/`high` tag, pulsed when tagged `pulse`, with a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    hz = TONE_HZ["high" if "high" in tags else "low"]
    wave = 0.3 * np.sin(2 * np.pi * hz * t)
    if "pulse" in tags:
        wave *= 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 4.0 * t))
    return (wave + 0.01 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def write_labelled_set(directory: Path, tracks: Sequence[LabelledTrack], tracks_per_shard: int = 4) -> Path:
    """Write the tracks (tones matching their tags) as a shard set at 16 kHz; returns its folder."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = []
    for number, track in enumerate(tracks):
        pcm = float_to_pcm(tone(track.seconds, track.tags, number))
        meta = TrackMeta(
            track_id=f"t{number:03d}",
            source=f"synthetic/t{number:03d}.wav",
            duration_s=len(pcm) / RATE,
            sample_rate=RATE,
            num_samples=len(pcm),
            tags=list(track.tags),
            split=track.split,
        )
        samples.append(encode_track(f"t{number:03d}", PCM_LAYOUT.encode(pcm), meta, PCM_LAYOUT))
    index = ShardIndex(sample_rate=RATE, normalisation="none")
    for shard_number, first in enumerate(range(0, len(samples), tracks_per_shard)):
        path = directory / (SHARD_PATTERN % shard_number)
        index.shards.append(write_shard(path, samples[first : first + tracks_per_shard], RATE))
    index.save(directory)
    return directory


def balanced_tracks(per_split: dict[str, int], seconds: float = 2.0) -> list[LabelledTrack]:
    """Tracks cycling through low/high x pulse/steady in each split, so every split has both classes."""
    combos = [["low"], ["high", "pulse"], ["high"], ["low", "pulse"]]
    return [
        LabelledTrack(seconds, combos[i % len(combos)], split)
        for split, count in per_split.items()
        for i in range(count)
    ]


def tiny_backbone(seed: int = 0) -> tuple[nn.Module, BackboneRecipe]:
    """A seeded tiny ResNet (1 s windows at 16 kHz, 16-d) in eval mode, with its recipe."""
    torch.manual_seed(seed)
    return TINY_RESNET.build().eval(), TINY_RESNET
