"""What a run is built from its config: the backbone's recipe, the optimiser, the augmentation chain, the
reader's settings, the rank's resumable stream of micro-batches and the checkpoints kept (the loop wires them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

from musicssl.sharding.layout import Layout
from musicssl.sharding.read.chooser import open_pairs
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.augment import AugmentationChain, ViewMode, pair_gaps
from musicssl.trainer.backbones import BACKBONES
from musicssl.trainer.checkpoints import CheckpointPolicy
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.export import BackboneRecipe
from musicssl.trainer.optim import build_optimizer


def micro_batch_size(config: TrainConfig, processes: int) -> int:
    """Pairs each process sees per forward; the global batch must split evenly."""
    parts = processes * config.grad_accum
    if config.batch_size % parts:
        raise ValueError(
            f"--batch-size {config.batch_size} does not split over {processes} processes x "
            f"{config.grad_accum} accumulation steps; use a multiple of {parts}"
        )
    return config.batch_size // parts


def optimizer_for(config: TrainConfig, student: torch.nn.Module) -> torch.optim.Optimizer:
    """The configured optimiser over the student, its learning rate scaled to the global batch."""
    optim = config.optim
    return build_optimizer(
        student, optim.optimizer, base_lr=optim.base_lr, weight_decay=optim.weight_decay, batch_size=config.batch_size
    )


def backbone_recipe(config: TrainConfig) -> BackboneRecipe:
    """How to build the configured backbone, from its settings section and the crop length."""
    kwargs = BACKBONES[config.backbone].recipe_kwargs(config.backbone_config, config.pairs.crop_seconds)
    return BackboneRecipe(config.backbone, kwargs)


def view_chain(config: TrainConfig, backbone: torch.nn.Module) -> AugmentationChain | None:
    """The augmentation chain the configured views need, at the backbone's rate and input length (None: temporal)."""
    if config.pairs.views == "temporal":
        return None
    augment = dataclasses.replace(config.augment, sample_rate=backbone.sample_rate, crop_samples=backbone.num_samples)
    return AugmentationChain(augment)


def training_layout(shards: ShardSet, backbone: torch.nn.Module, views: ViewMode) -> Layout:
    """The set's layout, refused where this run cannot train on it: a log-mel set needs temporal views (the
    augmentations work on waveforms) and a backbone whose front end computes that very mel."""
    layout = shards.index.layout
    if layout.mel is None:
        return layout
    frontend = backbone.mel_frontend
    if frontend is None:
        raise ValueError(
            f"{shards.location}: holds log-mel ({layout.encoding}), and the {type(backbone).__name__} backbone takes "
            "waveforms only; train it on a PCM set"
        )
    if views is not ViewMode.TEMPORAL:
        raise ValueError(
            f"{shards.location}: holds log-mel ({layout.encoding}), and --pairs.views {views.value} augments "
            "waveforms; use --pairs.views temporal, or a PCM set for waveform augmentations"
        )
    if frontend.settings != layout.mel:
        raise ValueError(
            f"{shards.location}: log-mel computed with {layout.mel.describe()}, the backbone's front end has "
            f"{frontend.settings.describe()}; convert the PCM set again with the backbone's settings (`python -m "
            f"sharding convert ... --mel-f-max {frontend.settings.f_max:g}`), or train on PCM"
        )
    return layout


def reader_pairs(config: TrainConfig, crop_samples: int) -> PairsConfig:
    """The reader's settings (`sharding.read.config.PairsConfig`): the user's, with the backbone's crop length and the
    gaps the configured views use."""
    chosen = {field.name: getattr(config.pairs, field.name) for field in dataclasses.fields(PairsConfig)}
    gaps = pair_gaps(config.pairs.views, config.pairs.min_gap_seconds, config.pairs.max_gap_seconds)
    return PairsConfig(
        **chosen | {"crop_samples": crop_samples, "min_gap_seconds": gaps[0], "max_gap_seconds": gaps[1]}
    )


class ResumablePairs:
    """Micro-batches of pairs of one rank, from any data position (epoch, micro-batch) on, across epochs."""

    def __init__(
        self, shards: ShardSet, pairs: PairsConfig, config: TrainConfig, micro_batch: int, rank: int, world: int
    ) -> None:
        """`pairs`: the reader's settings (`reader_pairs`); `config` gives the epoch's length and the seed."""
        self.batches_per_epoch = config.steps_per_epoch * config.grad_accum
        self.reader = open_pairs(  # the loop converts each batch at once, so the reader may reuse their memory
            shards, pairs, micro_batch, rank, world, config.seed, self.batches_per_epoch, reuse_buffers=True
        )

    def position_at(self, step: int, grad_accum: int) -> list[int]:
        """The data position (epoch, micro-batch) optimiser step `step` starts reading at."""
        return list(divmod(step * grad_accum, self.batches_per_epoch))

    def from_position(self, position: list[int]) -> Iterator[torch.Tensor]:
        """Micro-batches from `position` on; the random-access reader starts there without reading the rest."""
        return self.reader.iter_from(*position)


def checkpoint_policy(config: TrainConfig) -> CheckpointPolicy:
    """Which checkpoints a run keeps: the last few, and those of the steps and epochs asked for."""
    checkpoint = config.checkpoint
    epoch_steps = {epoch * config.steps_per_epoch for epoch in checkpoint.keep_epochs}
    return CheckpointPolicy(keep_last=checkpoint.keep_last, keep_steps=frozenset(checkpoint.keep_steps) | epoch_steps)
