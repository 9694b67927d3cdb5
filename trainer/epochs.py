"""How long an epoch is: a fixed number of optimiser steps (the paper: 512) or one pass over the training tracks.

The thesis counts epochs in passes over its pre-training tracks ("1,000 epochs took approximately 24 hours" on
FMA), so its epoch curves are only comparable when an epoch is a pass. `steps_per_epoch = "pass"` is resolved once
at start, from the track table of the data, and every setting written in epochs (warm-up, kept checkpoints, the
schedules' length) is then counted in steps of that length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from musicssl.trainer.config import TrainConfig


def steps_per_pass(tracks: int, pairs_per_track: int, batch_size: int) -> int:
    """Whole global batches in one epoch of `pairs_per_track` pairs per track (at least one)."""
    return max(1, tracks * pairs_per_track // batch_size)


def resolve_epochs(config: TrainConfig, count_tracks: Callable[[], int], say: Callable[[str], None]) -> TrainConfig:
    """The config with `steps_per_epoch` in steps and the warm-up in steps; `count_tracks` (the training tracks
    of the data) is only called for an epoch of one pass, and `say` reports the epoch's length."""
    steps = config.steps_per_epoch
    if steps == "pass":
        tracks = count_tracks()
        steps = steps_per_pass(tracks, config.pairs.pairs_per_track, config.batch_size)
        say(
            f"an epoch is one pass over {tracks} training tracks x {config.pairs.pairs_per_track} pair(s): {steps} "
            f"steps of {config.batch_size} pairs; {config.epochs} epochs = {config.epochs * steps} steps"
        )
    optim = config.optim
    if optim.warmup_epochs is not None:
        optim = dataclasses.replace(optim, warmup_steps=optim.warmup_epochs * steps)
    return dataclasses.replace(config, steps_per_epoch=steps, optim=optim)
