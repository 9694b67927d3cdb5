"""Tests for the backbones and the log-mel front end: registry and contract, sizes, shapes, deezer names, f_max and
bf16 autocast."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from musicssl.trainer.backbones import BACKBONES, build_backbone
from musicssl.trainer.backbones.resnet import AttentionPool2d
from musicssl.trainer.cli import parse_config
from musicssl.trainer.export import BackboneRecipe
from musicssl.trainer.frontend import DEEZER_FRONTEND, LogMelFrontend
from musicssl.trainer.run_parts import backbone_recipe
from tests.support.paths import DATA

KEYS_FILE = DATA / "deezer_resnet_backbone_keys.json"


def _num_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_holds_the_two_backbones_with_their_defaults() -> None:
    assert set(BACKBONES) == {"resnet", "samplecnn"}
    assert all(cls.name == name for name, cls in BACKBONES.items())
    resnet = BACKBONES["resnet"].Config()
    assert (resnet.f_max, resnet.width, resnet.layers) == (8000.0, 16, (3, 4, 6, 3))
    assert BACKBONES["samplecnn"].Config().embed_dim == 512


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_keeps_the_contract_as_train_py_builds_it(name: str) -> None:
    """Chosen by flag with its section's defaults and 1 s crops: int attributes, (N, embed_dim) out, the recipe
    an export records rebuilds it."""
    config, _ = parse_config(["--backbone", name, "--pairs.crop-seconds", "1"])
    recipe = backbone_recipe(config)
    model = BackboneRecipe.from_json(recipe.to_json()).build().eval()
    assert type(model) is BACKBONES[name] and recipe.name == name
    assert all(isinstance(getattr(model, key), int) for key in ("embed_dim", "sample_rate", "num_samples"))
    with torch.no_grad():
        assert model(torch.randn(2, model.num_samples)).shape == (2, model.embed_dim)


def test_section_flags_reach_the_recipe() -> None:
    resnet, _ = parse_config(
        ["--resnet.width", "8", "--resnet.layers", "1", "1", "1", "1", "--pairs.crop-seconds", "2"]
    )
    assert backbone_recipe(resnet).kwargs == {"f_max": 8000.0, "width": 8, "layers": (1, 1, 1, 1), "duration_s": 2.0}
    samplecnn, _ = parse_config(["--backbone", "samplecnn", "--samplecnn.embed-dim", "32"])
    assert backbone_recipe(samplecnn) == BackboneRecipe("samplecnn", {"embed_dim": 32})


def test_resnet_size_shape_and_contract() -> None:
    model = build_backbone("resnet")
    assert (model.embed_dim, model.sample_rate, model.num_samples) == (1024, 16000, 64000)
    assert _num_parameters(model) == 2_800_392
    assert _num_parameters(model) == pytest.approx(2.8e6, rel=0.03)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 64000)).shape == (2, 1024)


def test_resnet_names_and_shapes_are_deezers() -> None:
    expected = json.loads(KEYS_FILE.read_text())
    ours = {key: list(value.shape) for key, value in build_backbone("resnet").state_dict().items()}
    assert ours == expected
    assert expected["embedding.attnpool.positional_embedding"] == [13, 512]  # 4 x 3 grid + mean token


def test_attention_pool_matches_full_multi_head_attention() -> None:
    """Querying only the mean token gives the first output of CLIP/deezer's full attention."""
    torch.manual_seed(0)
    pool = AttentionPool2d(num_tokens=7, channels=16, num_heads=4, out_dim=12)
    x = torch.randn(3, 16, 2, 3)
    tokens = x.flatten(2).permute(2, 0, 1)
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens]) + pool.positional_embedding[:, None]
    reference, _ = F.multi_head_attention_forward(
        tokens, tokens, tokens, 16, 4,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        need_weights=False,
    )  # fmt: skip
    torch.testing.assert_close(pool(x), reference[0])


@pytest.mark.parametrize(("embed_dim", "parameters"), [(512, 2_368_512), (32, 2_368_512 - 480 * (512 * 3 + 3))])
def test_samplecnn_size_and_shape(embed_dim: int, parameters: int) -> None:
    model = build_backbone("samplecnn", embed_dim=embed_dim)
    assert (model.embed_dim, model.sample_rate, model.num_samples) == (embed_dim, 22050, 59049)
    assert _num_parameters(model) == parameters
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 59049)).shape == (2, embed_dim)


@pytest.mark.parametrize("name", ["resnet", "samplecnn"])
def test_wrong_window_length_is_refused(name: str) -> None:
    model = build_backbone(name)
    with pytest.raises(ValueError, match=f"\\(N, {model.num_samples}\\)"):
        model(torch.randn(1, 1000))


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'vit'.*'resnet', 'samplecnn'"):
        build_backbone("vit")


def test_frontend_shape_and_per_example_db_floor() -> None:
    frontend = LogMelFrontend()
    quiet = 1e-3 * torch.randn(1, 64000)
    loud = torch.randn(1, 64000)
    together = frontend(torch.cat([quiet, loud]))
    assert together.shape == (2, 1, 128, 126) and together.dtype == torch.float32
    torch.testing.assert_close(together[:1], frontend(quiet))  # the loud example does not raise its floor
    assert together[0].max() - together[0].min() <= 100.0 + 1e-3


def test_frontend_f_max() -> None:
    hz_per_bin = 16000 / 1024

    def highest_used_hz(frontend: LogMelFrontend) -> float:
        used_bins = frontend.spec.mel_scale.fb.sum(dim=1).nonzero()
        return float(used_bins.max()) * hz_per_bin

    assert LogMelFrontend().f_max == 8000.0
    assert 7800 < highest_used_hz(LogMelFrontend()) < 8000
    assert 3900 < highest_used_hz(LogMelFrontend(f_max=4000)) <= 4000
    with pytest.warns(UserWarning, match="above the Nyquist"):
        deezer = LogMelFrontend(**DEEZER_FRONTEND)
    empty_bands = int((deezer.spec.mel_scale.fb.sum(dim=0) == 0).sum())
    assert 0 < empty_bands < 20  # mel points above 8 kHz have no FFT bins
    with pytest.raises(ValueError, match="f_min < f_max"):
        LogMelFrontend(f_min=5000, f_max=4000)


def test_frontend_of_a_sine_peaks_in_the_band_centred_on_it() -> None:
    frontend = LogMelFrontend()
    t = torch.arange(64000) / 16000
    mel = frontend(torch.sin(2 * math.pi * 1000 * t)[None])[0, 0]
    peak_band = int(mel.mean(dim=1).argmax())
    band_centre_hz = float(frontend.spec.mel_scale.fb[:, peak_band].argmax()) * 16000 / 1024
    assert abs(band_centre_hz - 1000) < 60


def test_bf16_autocast_keeps_mel_in_fp32_and_runs_the_resnet() -> None:
    torch.manual_seed(0)
    model = build_backbone("resnet").eval()
    waveform = torch.randn(2, 64000)
    with torch.no_grad():
        reference_mel = model.spec(waveform)
        reference = model(waveform)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mel = model.spec(waveform.bfloat16())
            embedding = model(waveform)
    assert mel.dtype == torch.float32
    torch.testing.assert_close(mel, model.spec(waveform.bfloat16().float()))
    assert reference_mel.dtype == torch.float32
    assert torch.isfinite(embedding).all()
    cosine = F.cosine_similarity(embedding.float(), reference, dim=1)
    assert (cosine > 0.95).all()
