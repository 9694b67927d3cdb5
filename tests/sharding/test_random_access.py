"""sharding.read.random_access on ramp tracks (values reveal where a crop lies): exact bytes, coverage, resume,
damage, HTTP."""

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from musicssl.sharding.format import SHARD_PATTERN, TRACKS_NAME, ShardIndex, TrackMeta, encode_track
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.read.chooser import open_pairs
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import DataReadError, RandomAccessReader, RandomAccessUnavailable
from musicssl.sharding.read.reader import PairReader
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.tracks import build_track_table
from musicssl.sharding.windows import iter_tracks
from tests.support import ramps
from tests.support.ramps import RAMP_LENGTHS, RAMP_RATE
from tests.support.range_server import serve
from tests.support.shard_factory import ramp_position, ramp_track, write_shard, write_shard_set

RATE, LENGTHS = RAMP_RATE, RAMP_LENGTHS  # the ramp set's
ramp_set = ramps.ramp_set  # the fixture
CONFIG = PairsConfig(pairs_per_track=2, num_workers=0, reader="random_access")
BATCH = 4


def crops(loader: PairReader, epochs: int = 1) -> torch.Tensor:
    return torch.stack([batch for _ in range(epochs) for batch in loader])


def anchor_tracks(batches: torch.Tensor) -> list[int]:
    return [ramp_position(pair[0])[0] for batch in batches.numpy() for pair in batch]


def test_crops_are_the_decoded_samples_and_pairs_keep_their_gaps(ramp_set: Path) -> None:
    decoded = [np.rint(wave * 32768).astype(np.int16) for wave, _ in iter_tracks(ShardSet.open(ramp_set))]
    batches = crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, BATCH, 0, 1), epochs=2)
    assert batches.dtype == torch.int16 and batches.shape[1:] == (BATCH, 2, 400)
    for anchor, positive in batches.reshape(-1, 2, 400).numpy():
        (track, start), (other, other_start) = ramp_position(anchor), ramp_position(positive)
        assert other == track and 400 <= abs(other_start - start) <= 1_600
        assert np.array_equal(anchor, decoded[track][start : start + 400])
        assert np.array_equal(positive, decoded[track][other_start : other_start + 400])


def test_every_track_pair_item_once_per_epoch_over_two_ranks_and_two_workers(ramp_set: Path) -> None:
    config = replace(CONFIG, num_workers=2)
    per_rank = [RandomAccessReader(ShardSet.open(ramp_set), config, BATCH, rank, 2) for rank in (0, 1)]
    for epoch in range(2):
        batches = [crops(loader) for loader in per_rank]
        assert [len(b) for b in batches] == [len(LENGTHS) * 2 // (BATCH * 2)] * 2
        assert Counter(anchor_tracks(torch.cat(batches))) == dict.fromkeys(range(len(LENGTHS)), 2), epoch


def test_same_seed_same_batches_whatever_the_workers_and_another_seed_differs(ramp_set: Path) -> None:
    reference = crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, BATCH, 0, 1), epochs=2)
    for workers in (1, 2):
        again = crops(
            RandomAccessReader(ShardSet.open(ramp_set), replace(CONFIG, num_workers=workers), BATCH, 0, 1), epochs=2
        )
        assert torch.equal(again, reference)
    assert not torch.equal(
        crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, BATCH, 0, 1, seed=1), epochs=2), reference
    )


@pytest.mark.parametrize("world", [2, 4])
def test_a_steps_global_batch_is_the_same_on_any_number_of_ranks(ramp_set: Path, world: int) -> None:
    """The ranks' batches side by side are the one-rank batch, crops included: a run resumes on another count."""
    one_rank = crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, 2 * BATCH, 0, 1), epochs=2)
    per_rank = [
        crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, 2 * BATCH // world, rank, world), epochs=2)
        for rank in range(world)
    ]
    assert torch.equal(torch.cat(per_rank, dim=1), one_rank)


def test_resume_mid_epoch_equals_uninterrupted_and_reads_nothing_before(ramp_set: Path) -> None:
    whole = RandomAccessReader(
        ShardSet.open(ramp_set), replace(CONFIG, num_workers=2), BATCH, 0, 1, batches_per_epoch=5
    )
    stream = whole.iter_from(0, 0)
    uninterrupted = [next(stream) for _ in range(12)]
    resumed_loader = RandomAccessReader(
        ShardSet.open(ramp_set), replace(CONFIG, num_workers=2), BATCH, 0, 1, batches_per_epoch=5
    )
    resumed = resumed_loader.iter_from(1, 2)  # batch 7 of the run
    tail = [next(resumed) for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(tail, uninterrupted[7:], strict=True))
    assert resumed_loader.stats.pairs <= (5 + 2 * 2) * BATCH  # what was asked, plus what two workers prefetched


def test_split_selects_tracks_and_tracks_without_one_count_as_training(tmp_path: Path) -> None:
    splits = ["train", "test", None, "valid", "train", "test"]
    samples = []
    for number, split in enumerate(splits):
        pcm = ramp_track(number, 2_000)
        meta = TrackMeta(f"t{number}", f"t{number}.wav", 20.0, RATE, len(pcm), split=split)
        samples.append(encode_track(f"t{number}", PCM_LAYOUT.encode(pcm), meta, PCM_LAYOUT))
    shard = write_shard(tmp_path / (SHARD_PATTERN % 0), samples, RATE)
    ShardIndex(sample_rate=RATE, normalisation="none", shards=[shard]).save(tmp_path)
    build_track_table(tmp_path)
    for split, expected in (("train", {0, 2, 4}), ("test", {1, 2, 5}), (None, set(range(6)))):
        loader = RandomAccessReader(ShardSet.open(tmp_path), replace(CONFIG, split=split, pairs_per_track=4), 2, 0, 1)
        assert set(anchor_tracks(crops(loader, epochs=3))) == expected, split


def damage(directory: Path, track: int, offset: int) -> None:
    """Overwrite one track's byte offset in the track table, keeping the table otherwise valid."""
    path = directory / TRACKS_NAME
    table = pq.read_table(path)
    offsets = table.column("payload_offset").to_numpy().copy()
    offsets[track] = offset
    table = table.set_column(1, "payload_offset", pa.array(offsets))
    pq.write_table(table, path)


def test_a_truncated_shard_and_a_corrupted_offset_cost_only_their_tracks(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [ramp_track(t, 3_000) for t in range(9)], RATE, tracks_per_shard=3)
    shard = tmp_path / index.shards[2].name
    shard.write_bytes(shard.read_bytes()[: 6_000 + 3 * 512])  # tracks 7 and 8 lie past the cut
    damage(tmp_path, track=1, offset=10**9)
    damage(tmp_path, track=4, offset=513)
    loader = RandomAccessReader(
        ShardSet.open(tmp_path), replace(CONFIG, max_failed_share=1.0, pairs_per_track=4), 3, 0, 1
    )
    batches = crops(loader, epochs=2)
    assert len(batches) == 2 * 9 * 4 // 3  # the batch count does not change
    assert set(anchor_tracks(batches)) == {0, 2, 3, 5, 6}
    assert loader.stats.corrupt_skipped >= 4 * 4 and loader.stats.pairs == len(batches) * 3
    meta = json.loads(pq.read_schema(tmp_path / TRACKS_NAME).metadata[b"musicssl.shards"])
    assert len(meta) == 3  # still a valid table: the damage is in the offsets and the shard, not the format


def test_too_many_failed_reads_stop_with_the_shards_and_the_verify_command(tmp_path: Path) -> None:
    index = write_shard_set(tmp_path, [ramp_track(t, 3_000) for t in range(6)], RATE, tracks_per_shard=3)
    shard = tmp_path / index.shards[1].name
    shard.write_bytes(shard.read_bytes()[:1_000])
    config = replace(CONFIG, failure_window=20, max_failed_share=0.05)
    with pytest.raises(DataReadError, match=r"shard-000001\.tar.*python -m sharding verify"):
        crops(RandomAccessReader(ShardSet.open(tmp_path), config, 3, 0, 1, batches_per_epoch=50))


def test_http_ranges_give_the_same_batches_as_local_files(ramp_set: Path) -> None:
    local = crops(RandomAccessReader(ShardSet.open(ramp_set), CONFIG, BATCH, 0, 1))
    with serve(ramp_set) as server:
        for workers in (0, 2):
            remote = RandomAccessReader(ShardSet.open(server.url), replace(CONFIG, num_workers=workers), BATCH, 0, 1)
            assert torch.equal(crops(remote), local)
        assert server.requests >= 2 * len(local) * BATCH


def test_without_ranges_or_a_track_table_auto_falls_back_to_the_stream(
    ramp_set: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auto = replace(CONFIG, reader="auto")
    with serve(ramp_set, ranges=False) as server, caplog.at_level(logging.WARNING):
        assert isinstance(open_pairs(ShardSet.open(server.url), auto, BATCH, 0, 1), StreamReader)
        with pytest.raises(RandomAccessUnavailable, match="no Range support"):
            open_pairs(ShardSet.open(server.url), CONFIG, BATCH, 0, 1)
    assert "sequential stream" in caplog.text and "no Range support" in caplog.text
    write_shard_set(tmp_path, [ramp_track(t, 3_000) for t in range(3)], RATE)
    (tmp_path / TRACKS_NAME).unlink()
    assert isinstance(open_pairs(ShardSet.open(tmp_path), auto, BATCH, 0, 1), StreamReader)
    assert isinstance(open_pairs(ShardSet.open(f"pipe:cat {tmp_path}/{{}}"), auto, BATCH, 0, 1), StreamReader)
    with pytest.raises(RandomAccessUnavailable, match=f"python -m sharding index {tmp_path}"):
        open_pairs(ShardSet.open(tmp_path), CONFIG, BATCH, 0, 1)


@pytest.mark.parametrize("workers", [0, 2])
def test_reused_buffers_hold_the_same_batches_for_a_consumer_that_drops_each(ramp_set: Path, workers: int) -> None:
    config = replace(CONFIG, num_workers=workers)
    fresh = crops(RandomAccessReader(ShardSet.open(ramp_set), config, BATCH, 0, 1, batches_per_epoch=9), epochs=2)
    reused = RandomAccessReader(ShardSet.open(ramp_set), config, BATCH, 0, 1, batches_per_epoch=9, reuse_buffers=True)
    copies = torch.stack([batch.clone() for _ in range(2) for batch in reused])
    assert torch.equal(copies, fresh)
    assert reused.dataset.ring == (4 if workers else 2)
