"""Training from a log-mel shard set: the backbone takes the stored mel and skips its front end, the exported model
still embeds waveforms, and runs the set cannot serve are refused naming why."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from musicssl.sharding.convert import convert_set
from musicssl.sharding.layout import Layout
from musicssl.sharding.mel import MelSettings, power_db
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.augment import ViewMode
from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.backbones.resnet import ResNetConfig
from musicssl.trainer.export import load_backbone
from musicssl.trainer.loop import Trainer, train
from musicssl.trainer.run_parts import training_layout
from tests.support import tiny_run
from tests.support.tiny_run import SAMPLE_RATE, tiny_config

shards = tiny_run.shards  # the tiny runs' PCM set


@pytest.fixture(scope="module")
def mel_shards(shards: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("mel") / "set"
    convert_set(ShardSet.open(shards), out, Layout.logmel("uint8", MelSettings(SAMPLE_RATE)), progress=False)
    return str(out)


def test_the_backbone_embeds_front_end_output_exactly_as_it_embeds_the_waveform() -> None:
    backbone = build_backbone("resnet", width=8, duration_s=1.0).eval()
    waveform = torch.randn(3, SAMPLE_RATE) * 0.3
    frontend = backbone.mel_frontend
    db = power_db(waveform, frontend.spec.spectrogram.window, frontend.spec.mel_scale.fb, frontend.hop_length)
    with torch.no_grad():
        torch.testing.assert_close(backbone(db), backbone(waveform), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="log-mel of 32 frames"):
        backbone(db[..., :31])


def test_a_run_on_a_log_mel_set_trains_resumes_and_exports_a_waveform_model(tmp_path: Path, mel_shards: str) -> None:
    config = tiny_config(tmp_path / "run", mel_shards)
    whole = train(config)
    assert whole.step == 6 and all(math.isfinite(x) for x in whole.losses)
    first = train(tiny_config(tmp_path / "split", mel_shards), stop_after_steps=4)
    second = train(tiny_config(tmp_path / "split", mel_shards))
    np.testing.assert_allclose(first.losses + second.losses, whole.losses, rtol=0, atol=1e-6)
    backbone, _ = load_backbone(whole.backbone_path)
    assert backbone(torch.zeros(2, SAMPLE_RATE)).shape == (2, backbone.embed_dim)


def test_pairs_read_from_the_log_mel_set_cost_an_eighth_of_the_pcm_bytes(
    tmp_path: Path, shards: str, mel_shards: str
) -> None:
    read = {}
    for name, data in (("pcm", shards), ("mel", mel_shards)):
        trainer = Trainer(tiny_config(tmp_path / name, data))
        trainer.run(stop_after_steps=1)
        read[name] = trainer.pairs.reader.stats.bytes / trainer.pairs.reader.stats.pairs
    assert read["pcm"] == 2 * 2 * SAMPLE_RATE  # two 1 s crops of int16
    assert read["mel"] == 2 * 32 * 128  # two crops of 32 frames x 128 bands, one byte each


def test_runs_a_log_mel_set_cannot_serve_are_refused_naming_why(mel_shards: str) -> None:
    shards = ShardSet.open(mel_shards)
    resnet = build_backbone("resnet", width=8, duration_s=1.0)
    assert training_layout(shards, resnet, ViewMode.TEMPORAL).is_mel
    with pytest.raises(ValueError, match=r"--pairs\.views augmented_temporal augments waveforms"):
        training_layout(shards, resnet, ViewMode.AUGMENTED_TEMPORAL)
    with pytest.raises(ValueError, match="SampleCNN backbone takes waveforms only"):
        training_layout(shards, build_backbone("samplecnn", embed_dim=32), ViewMode.TEMPORAL)
    deezer = build_backbone("resnet", width=8, duration_s=1.0, f_max=ResNetConfig().f_max / 2)
    with pytest.raises(ValueError, match=r"computed with .*f_max=8000.0.*front end has .*f_max=4000.0.*f-max 4000"):
        training_layout(shards, deezer, ViewMode.TEMPORAL)
