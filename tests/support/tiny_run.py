"""The tiny training run that trainer, launcher and tracking tests share: its shard set (the `shards` fixture, which
a test module imports to use), its configuration and a pickle that would run code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from musicssl.trainer.backbones.resnet import ResNetConfig
from musicssl.trainer.config import CheckpointConfig, OptimConfig, TrainConfig, TrainPairsConfig
from tests.support.shard_factory import write_shard_set

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Eight 6-second tracks of a few partials each, so pairs of one track share structure."""
    rng = np.random.default_rng(0)
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    tracks = []
    for _ in range(8):
        freqs = rng.uniform(100, 2000, size=3)
        wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 3 + 0.05 * rng.standard_normal(t.size)
        tracks.append((wave * 20000).astype(np.int16))
    directory = tmp_path_factory.mktemp("shards")
    write_shard_set(directory, tracks, SAMPLE_RATE, tracks_per_shard=4)
    return str(directory)


def tiny_config(output_dir: Path, data: str, **overrides: object) -> TrainConfig:
    """A run of a few steps of a narrow ResNet on 1-second crops."""
    config = TrainConfig(
        pretext="contrastive",
        study="test",
        output_dir=str(output_dir),
        epochs=2,
        steps_per_epoch=3,
        batch_size=8,
        log_every=1,
        diagnostics_every=2,
        mlflow=False,
        data=data,
        pairs=TrainPairsConfig(
            crop_seconds=1.0,
            min_gap_seconds=1.0,
            max_gap_seconds=3.0,
            pairs_per_track=2,
            track_shuffle=4,
            pair_shuffle=16,
            num_workers=0,
        ),
        resnet=ResNetConfig(width=8),
        optim=OptimConfig(base_lr=1e-3, warmup_steps=1),
        checkpoint=CheckpointConfig(every_steps=2, keep_last=2),
    )
    return replace(config, **overrides)


class WritesAFile:
    """Unpickling this creates `path`: what a crafted pickle in a run folder could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.path), "w")
