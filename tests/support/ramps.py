"""The ramp set that the crop and stream tests read: twelve ramp tracks of several lengths, three per shard, at a
rate where crops are a few hundred samples (the `ramp_set` fixture, which a test module assigns to a name of its
own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shard_factory import ramp_track, write_shard_set

RAMP_RATE = 100  # Hz: 4 s crops are 400 samples, gaps 400-1600
RAMP_LENGTHS = [1_000, 4_000, 2_500, 3_000, 1_800, 4_000, 2_200, 3_500, 900, 4_000, 2_000, 3_300]


@pytest.fixture(scope="module")
def ramp_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ramps")
    write_shard_set(directory, [ramp_track(t, n) for t, n in enumerate(RAMP_LENGTHS)], RAMP_RATE, tracks_per_shard=3)
    return directory
