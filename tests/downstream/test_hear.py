"""The HEAR 2021 API over an exported tiny backbone (1 s windows at 16 kHz, 16-d)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musicssl.downstream import hear
from musicssl.downstream.extract_task import embed_windows, track_windows
from tests.support.deezer_checkpoint import deezer_backbone_state, save_deezer_checkpoint

SR = 16000


@pytest.fixture(scope="module")
def model(backbone_file: Path) -> hear.HearModel:
    return hear.load_model(str(backbone_file), hop_ms=250.0, batch_size=3).to("cpu")


def noise(n_sounds: int, seconds: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n_sounds, int(seconds * SR)), generator=generator) * 2 - 1


def test_load_model_has_the_hear_attributes(backbone_file: Path) -> None:
    model = hear.load_model(str(backbone_file))
    assert isinstance(model, torch.nn.Module)
    assert (model.sample_rate, model.scene_embedding_size, model.timestamp_embedding_size) == (SR, 16, 16)
    assert all(isinstance(value, int) for value in (model.sample_rate, model.scene_embedding_size))
    assert isinstance(model.timestamp_embedding_size, int)
    assert model.hop_ms == 50.0 and not model.training


def test_load_model_without_a_file_names_what_to_pass() -> None:
    with pytest.raises(ValueError, match=r"backbone\.safetensors exported by train\.py"):
        hear.load_model()


def test_timestamp_embeddings_shapes_dtypes_and_centres(model: hear.HearModel) -> None:
    audio = noise(2, 1.1)
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    n_stamps = int(1.1 * SR) // model.hop + 1  # 0, 250, 500, 750, 1000 ms
    assert embeddings.shape == (2, n_stamps, 16) and timestamps.shape == (2, n_stamps)
    assert embeddings.dtype == torch.float32 and timestamps.dtype == torch.float32
    assert timestamps[0].tolist() == [0.0, 250.0, 500.0, 750.0, 1000.0]
    assert torch.equal(timestamps[0], timestamps[1]) and bool((timestamps.diff() > 0).all())
    # the embedding at t is the backbone's on the window centred on t (zero-padded outside the sound)
    half = model.window // 2
    for index, stamp_ms in ((0, 0.0), (2, 500.0), (4, 1000.0)):
        centre = round(stamp_ms * SR / 1000)
        padded = np.pad(audio[1].numpy(), (half, model.window - half))
        window = padded[centre : centre + model.window][None]
        expected = embed_windows(model.backbone, window, 1)[0]
        np.testing.assert_allclose(embeddings[1, index].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_scene_embeddings_are_the_mean_of_non_overlapping_windows(model: hear.HearModel) -> None:
    audio = noise(3, 2.5, seed=1)
    scenes = hear.get_scene_embeddings(audio, model)
    assert scenes.shape == (3, 16) and scenes.dtype == torch.float32
    expected = embed_windows(model.backbone, track_windows(audio[2].numpy(), model.window), 8).mean(axis=0)
    np.testing.assert_allclose(scenes[2].numpy(), expected, rtol=1e-4, atol=1e-5)
    short = hear.get_scene_embeddings(noise(2, 0.3), model)  # shorter than a window: zero-padded
    assert short.shape == (2, 16) and bool(torch.isfinite(short).all())


def test_batch_independence_and_determinism(model: hear.HearModel) -> None:
    audio = noise(4, 1.3, seed=2)
    together, _ = hear.get_timestamp_embeddings(audio, model)
    alone, _ = hear.get_timestamp_embeddings(audio[2:3], model)
    torch.testing.assert_close(together[2:3], alone, rtol=1e-4, atol=1e-5)
    again, _ = hear.get_timestamp_embeddings(audio, model)
    assert torch.equal(together, again)
    scenes = hear.get_scene_embeddings(audio, model)
    torch.testing.assert_close(scenes[1:2], hear.get_scene_embeddings(audio[1:2], model), rtol=1e-4, atol=1e-5)
    assert torch.equal(scenes, hear.get_scene_embeddings(audio, model))


def test_rejects_audio_that_is_not_a_batch(model: hear.HearModel) -> None:
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(SR), model)


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values", "ignore:LogMelFrontend. f_max")
def test_a_deezer_checkpoint_is_a_hear_model(tmp_path: Path) -> None:
    path = save_deezer_checkpoint(tmp_path / "model.pt", "module.backbone.", deezer_backbone_state())
    model = hear.load_model(str(path)).to("cpu")
    assert (model.sample_rate, model.window, model.hop, model.hop_ms) == (SR, 4 * SR, 800, 50.0)
    scenes = hear.get_scene_embeddings(noise(1, 4.0), model)
    assert scenes.shape == (1, model.scene_embedding_size) and bool(torch.isfinite(scenes).all())
