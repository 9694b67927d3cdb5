"""The log-mel shard layout: stored frames equal the model's front end (within the encoding's rounding), crops are
read at the right frame offsets, conversion and data_prep write it resumably, and PCM-only readers refuse it."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from musicssl.data_prep.__main__ import main as prepare_main
from musicssl.data_prep.audio_files import write_audio
from musicssl.data_prep.track import PrepSettings
from musicssl.sharding.__main__ import main as shards_main
from musicssl.sharding.build import prepare_shards
from musicssl.sharding.convert import convert_set
from musicssl.sharding.format import ShardIndex, read_meta
from musicssl.sharding.layout import UINT8_DB_MIN, UINT8_DB_STEP, Layout
from musicssl.sharding.mel import MelSettings, power_db
from musicssl.sharding.read.chooser import open_pairs
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.stream import StreamReader
from musicssl.sharding.recover import read_samples
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.verify import verify_set
from musicssl.sharding.windows import iter_tracks
from tests.support.shard_factory import write_shard_set

RATE = 16000
SETTINGS = MelSettings(sample_rate=RATE)
CROP = RATE  # 1 s crops: 32 frames
PAIRS = PairsConfig(crop_samples=CROP, min_gap_seconds=1.0, max_gap_seconds=3.0, split=None, num_workers=0)


def music(seconds: float, seed: int) -> np.ndarray:
    """Int16 audio with structure in time and frequency (gliding partials and noise), well inside full scale."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f * t * (1 + t / 30)) for f in rng.uniform(100, 3000, size=3)) / 4
    wave = wave + 0.05 * rng.standard_normal(t.size)
    return (wave * 20000).astype(np.int16)


@pytest.fixture(scope="module")
def pcm_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pcm")
    write_shard_set(directory, [music(6 + 2 * i, i) for i in range(6)], RATE, tracks_per_shard=2)
    return directory


@pytest.fixture(scope="module", params=["fp16", "uint8"])
def mel_set(request: pytest.FixtureRequest, pcm_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "set"
    convert_set(ShardSet.open(pcm_set), out, Layout.logmel(request.param, SETTINGS), progress=False)
    return out


def payloads(directory: Path) -> dict[str, tuple[bytes, dict]]:
    """Every track's stored payload and metadata by key."""
    index = ShardIndex.load_local(directory)
    out = {}
    for info in index.shards:
        for sample in read_samples(directory / info.name):
            out[sample["__key__"]] = (sample[index.layout.member], read_meta(sample))
    return out


def stored_db(directory: Path) -> dict[str, np.ndarray]:
    """Every track's stored log-mel as float dB, (frames, n_mels)."""
    layout = ShardIndex.load_local(directory).layout
    return {key: decoded_db(layout, layout.decode(raw)) for key, (raw, _) in payloads(directory).items()}


def decoded_db(layout: Layout, values: np.ndarray) -> np.ndarray:
    """Stored values as dB, as the trainer decodes them."""
    return layout.to_model_input(torch.from_numpy(values.copy()))[0].T.numpy().astype(np.float64)


def exact_db(pcm: np.ndarray) -> np.ndarray:
    """The front end's dB before the floor, in float64 arithmetic, (frames, n_mels)."""
    wave = torch.from_numpy(pcm.astype(np.float64) / 32768)[None]
    db = power_db(wave.double(), SETTINGS.window().double(), SETTINGS.filterbank().double(), SETTINGS.hop_length)
    return db[0, 0].T.numpy()


def tolerance(layout: Layout, exact: np.ndarray) -> np.ndarray:
    """The encoding's rounding bound (half a uint8 step; fp16's relative half-ulp) plus float32 arithmetic."""
    if layout.encoding == "logmel_u8":
        return np.full_like(exact, UINT8_DB_STEP / 2 + 1e-3)
    return np.abs(exact) * 2.0**-11 + 1e-3


def test_stored_mel_is_the_front_end_of_the_whole_track_within_the_encodings_rounding(
    pcm_set: Path, mel_set: Path
) -> None:
    layout = ShardIndex.load_local(mel_set).layout
    sources = {key: raw for key, (raw, _) in payloads(pcm_set).items()}
    for key, db in stored_db(mel_set).items():
        pcm = np.frombuffer(sources[key], dtype="<i2")
        exact = exact_db(pcm)
        assert db.shape == (len(pcm) // 512 + 1, 128)
        assert exact.max() < UINT8_DB_MIN + 255 * UINT8_DB_STEP  # in the uint8 range: no clipping in this test
        assert np.all(np.abs(db - exact) <= tolerance(layout, exact))


def test_a_crops_inner_frames_equal_the_front_end_on_its_pcm_crop(pcm_set: Path, mel_set: Path) -> None:
    """The PCM path pads each crop at its edges, the log-mel set holds the real neighbours: only the first and last
    frame of a crop differ."""
    layout = ShardIndex.load_local(mel_set).layout
    sources = {key: np.frombuffer(raw, dtype="<i2") for key, (raw, _) in payloads(pcm_set).items()}
    for key, db in stored_db(mel_set).items():
        for start in (0, 7, len(db) - 32):
            crop = exact_db(sources[key][start * 512 : start * 512 + CROP])
            inner = slice(1, 31)
            stored = db[start : start + 32]
            assert np.all(np.abs(stored[inner] - crop[inner]) <= tolerance(layout, crop[inner]))
            if start == 7:  # inside the track, both edge frames differ (the test can tell)
                assert min(np.abs(stored[0] - crop[0]).max(), np.abs(stored[31] - crop[31]).max()) > 0.5


def test_random_access_reads_pairs_of_frame_runs_at_their_offsets_with_the_gap_in_hops(mel_set: Path) -> None:
    shards = ShardSet.open(mel_set)
    layout = shards.index.layout
    tracks = [layout.decode(raw) for raw, _ in payloads(mel_set).values()]
    reader = open_pairs(shards, PAIRS, batch_size=6, rank=0, world_size=1, seed=3)
    batch = next(iter(reader))
    assert batch.shape == (6, 2, 32, 128)
    assert batch.dtype == {"logmel_f16": torch.float16, "logmel_u8": torch.uint8}[layout.encoding]
    for pair in batch.numpy():
        found = []
        for crop in pair:
            matches = [
                (number, start)
                for number, track in enumerate(tracks)
                for start in range(len(track) - 31)
                if np.array_equal(track[start : start + 32], crop)
            ]
            assert len(matches) == 1, "a crop must be one run of 32 stored frames"
            found.append(matches[0])
        (track_a, start_a), (track_b, start_b) = found
        assert track_a == track_b
        assert 32 <= abs(start_a - start_b) <= 93  # 1-3 s in whole hops of 512 samples
    assert reader.stats.bytes == 6 * 2 * 32 * layout.unit_bytes


def test_sets_are_verified_and_pcm_readers_refuse_them_with_a_reason(mel_set: Path) -> None:
    shards = ShardSet.open(mel_set)
    assert verify_set(shards)[1] == []
    with pytest.raises(ValueError, match="read by random access only"):
        StreamReader(shards, PAIRS, 4, 0, 1)
    with pytest.raises(ValueError, match=r"holds log-mel .* not PCM"):
        next(iter_tracks(shards))


def test_verify_names_a_flipped_mel_byte(pcm_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "mel"
    convert_set(ShardSet.open(pcm_set), out, Layout.logmel("uint8", SETTINGS), progress=False)
    shard = out / "shard-000001.tar"
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".mel"))
    data = bytearray(shard.read_bytes())
    data[member.offset_data + 100] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify_set(ShardSet.open(out))[1]
    assert any(p.member == f"{member.name}" and "log-mel bytes differ" in p.message for p in problems)


def test_an_interrupted_conversion_resumes_to_the_same_set(
    pcm_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout.logmel("uint8", SETTINGS)
    whole = tmp_path / "whole"
    convert_set(ShardSet.open(pcm_set), whole, layout, progress=False)
    calls = {"n": 0}
    encode = Layout.encode

    def failing_encode(self: Layout, pcm: np.ndarray) -> bytes:
        calls["n"] += 1
        if calls["n"] == 4:  # the second track of the second shard
            raise RuntimeError("killed")
        return encode(self, pcm)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(Layout, "encode", failing_encode)
    with pytest.raises(RuntimeError, match="killed"):
        convert_set(ShardSet.open(pcm_set), resumed, layout, progress=False)
    assert len(ShardIndex.load_local(resumed).shards) == 1
    assert not list(resumed.glob("*.partial"))
    monkeypatch.setattr(Layout, "encode", encode)
    converted = convert_set(ShardSet.open(pcm_set), resumed, layout, progress=False)
    assert converted.shards_now == 2
    assert payloads(resumed) == payloads(whole)
    assert [s.samples for s in ShardIndex.load_local(resumed).shards] == [2, 2, 2]


def test_conversion_refuses_a_folder_holding_another_set(pcm_set: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_shard_set(other, [music(9, 7)], RATE)
    convert_set(ShardSet.open(other), tmp_path / "mel", Layout.logmel("uint8", SETTINGS), progress=False)
    with pytest.raises(ValueError, match="not a conversion of the first shards"):
        convert_set(ShardSet.open(pcm_set), tmp_path / "mel", Layout.logmel("uint8", SETTINGS), progress=False)
    with pytest.raises(ValueError, match="layout logmel_u8"):
        convert_set(ShardSet.open(pcm_set), tmp_path / "mel", Layout.logmel("fp16", SETTINGS), progress=False)


def test_data_prep_writes_the_same_log_mel_as_converting_its_pcm_set(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    for number in range(3):
        write_audio(inputs / f"track{number}.wav", music(9, number).astype(np.float32) / 32768, RATE)
    layout = Layout.logmel("fp16", SETTINGS)
    prepare_shards(inputs, tmp_path / "pcm", PrepSettings(), workers=1, progress=False)
    prepare_shards(inputs, tmp_path / "mel", PrepSettings(), workers=1, progress=False, layout=layout)
    convert_set(ShardSet.open(tmp_path / "pcm"), tmp_path / "converted", layout, progress=False)
    prepared, converted = payloads(tmp_path / "mel"), payloads(tmp_path / "converted")
    assert sorted(prepared) == sorted(converted)
    for key, (raw, meta) in prepared.items():
        assert raw == converted[key][0]
        assert meta.layout == layout.to_json()
    assert verify_set(ShardSet.open(tmp_path / "mel"))[1] == []
    with pytest.raises(ValueError, match="layout logmel_f16"):
        prepare_shards(inputs, tmp_path / "mel", PrepSettings(), workers=1, progress=False)


def test_both_command_lines_write_the_layout_they_are_asked_for(pcm_set: Path, tmp_path: Path) -> None:
    write_audio(tmp_path / "in" / "track.wav", music(9, 0).astype(np.float32) / 32768, RATE)
    prepared = tmp_path / "prepared"
    argv = [str(tmp_path / "in"), "--out", str(prepared), "--layout", "logmel", "--mel-encoding", "fp16"]
    assert prepare_main([*argv, "--workers", "1", "--no-progress"]) == 0
    assert ShardIndex.load_local(prepared).encoding == "logmel_f16"
    assert shards_main(["convert", str(pcm_set), "--out", str(tmp_path / "converted"), "--no-progress"]) == 0
    index = ShardIndex.load_local(tmp_path / "converted")
    assert (index.encoding, index.mel, index.format_version) == ("logmel_u8", SETTINGS.to_json(), 2)
    lower = ["convert", str(pcm_set), "--out", str(tmp_path / "lower"), "--mel-f-max", "4000", "--no-progress"]
    assert shards_main(lower) == 0
    assert ShardIndex.load_local(tmp_path / "lower").mel == MelSettings(RATE, f_max=4000).to_json()


def test_a_conversion_killed_mid_shard_resumes_to_the_same_set(pcm_set: Path, tmp_path: Path) -> None:
    layout = Layout.logmel("uint8", SETTINGS)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    convert_set(ShardSet.open(pcm_set), whole, layout, progress=False)
    stall_at_fourth_track = f"""
import sys, time
from musicssl.sharding.layout import Layout
encode, calls = Layout.encode, []
def stalling(self, pcm):
    calls.append(1)
    if len(calls) == 4:  # the second track of the second shard: its first is in the .partial already
        print("stalled", flush=True)
        time.sleep(600)
    return encode(self, pcm)
Layout.encode = stalling
from musicssl.sharding.__main__ import main
sys.exit(main(["convert", {str(pcm_set)!r}, "--out", {str(killed)!r}, "--no-progress"]))
"""
    process = subprocess.Popen([sys.executable, "-c", stall_at_fourth_track], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"stalled"
    finally:
        process.kill()
        process.wait()
    assert len(ShardIndex.load_local(killed).shards) == 1 and list(killed.glob("*.partial"))
    assert convert_set(ShardSet.open(pcm_set), killed, layout, progress=False).shards_now == 2
    assert payloads(killed) == payloads(whole) and not list(killed.glob("*.partial"))
