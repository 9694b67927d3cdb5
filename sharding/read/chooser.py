"""Open the pair reader a set allows: random access where it can, else the sequential stream, saying why; and count
the tracks one pass over the set visits."""

from __future__ import annotations

import logging
import os

import torch

from musicssl.sharding.format import TRACKS_NAME
from musicssl.sharding.location import is_object_store
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader, RandomAccessUnavailable, pair_tracks
from musicssl.sharding.read.reader import PairReader
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import StaleTrackTable

logger = logging.getLogger(__name__)


def distributed_position() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def open_pairs(
    shards: ShardSet,
    config: PairsConfig,
    batch_size: int,
    rank: int | None = None,
    world_size: int | None = None,
    seed: int = 0,
    batches_per_epoch: int | None = None,
    reuse_buffers: bool = False,
) -> PairReader:
    """The reader of `config.reader` for the set `shards`; rank and world size default to the launcher's.

    `auto` reads by random access and falls back to the stream (with a warning naming the reason) where the set
    has no track table or its location cannot serve byte ranges; `random_access` raises instead.
    `reuse_buffers` (random access only): see `RandomAccessReader`; only for a consumer that drops each batch before
    asking for the next.
    """
    default_rank, default_world = distributed_position()
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    arguments = {"batch_size": batch_size, "rank": rank, "world_size": world_size, "seed": seed}
    arguments["batches_per_epoch"] = batches_per_epoch
    if config.reader != "stream":
        try:
            return RandomAccessReader(shards, config, **arguments, reuse_buffers=reuse_buffers)
        except RandomAccessUnavailable as err:
            if config.reader == "random_access":
                raise
            logger.warning("reading pairs as a sequential stream (whole tracks), not by random access: %s", err)
    if is_object_store(shards.location):
        raise ValueError(
            f"{shards.location}: the sequential stream cannot read an object store URL; fix random access "
            "(see the warning above) or name the set with a `pipe:` template, e.g. "
            "`pipe:aws s3 cp s3://bucket/set/{} -`"
        )
    return StreamReader(shards, config, **arguments)


def training_tracks(shards: ShardSet, config: PairsConfig) -> int:
    """How many tracks one pass over the set visits (those of `config.split` long enough for a pair), counted
    from the track table, which either reader can then stream or read; a set without one is an error."""
    try:
        table = shards.track_table()
    except StaleTrackTable as err:
        raise ValueError(
            f"an epoch of one pass needs the number of training tracks, which {TRACKS_NAME} holds: {err}; "
            "or give the epoch a fixed length (--steps-per-epoch N)"
        ) from err
    return len(pair_tracks(table, config, shards.sample_rate, shards.index.layout)[1])
