"""A small shard set written by the real writer (six tracks over three shards, with tags, splits and content
hashes) and where a member's bytes lie in its tar: what the verify and damage tests break."""

import tarfile
from pathlib import Path

import numpy as np

from musicssl.data_prep.pcm import PCM_SHA1_KEY, pcm_sha1
from musicssl.sharding.format import ShardIndex, TrackMeta
from musicssl.sharding.writer import ShardSetWriter

RATE = 1000


def build_set(directory: Path) -> ShardIndex:
    """Six tracks over three shards, with tags, splits and content hashes."""
    with ShardSetWriter.open(directory, RATE, "peak", shard_size=10_000) as writer:
        for i in range(6):
            pcm = (np.arange(2000 + 500 * i) % 200 - 100).astype(np.int16) * (i + 1)
            meta = TrackMeta(
                f"t{i}",
                f"/in/t{i}.mp3",
                len(pcm) / RATE,
                RATE,
                len(pcm),
                tags=["rock"] + (["fast"] if i % 2 else []),
                split="train" if i < 4 else "test",
                extra={PCM_SHA1_KEY: pcm_sha1(pcm)},
            )
            writer.add(f"t{i}", pcm, meta, payload=None)
    return ShardIndex.load_local(directory)


def member_offset(shard: Path, name: str) -> int:
    with tarfile.open(shard) as tar:
        return tar.getmember(name).offset_data
