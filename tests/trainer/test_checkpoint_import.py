"""Tests for trainer.checkpoint_import: deezer checkpoints round-trip with both prefixes; pickles are refused.

The fake checkpoints come from tests/support/deezer_checkpoint.py (deezer's key names and shapes).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.checkpoint_import import inspect_checkpoint, load_deezer_checkpoint
from tests.support.deezer_checkpoint import deezer_backbone_state, save_deezer_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")


class _RunsCodeWhenLoaded:
    """A pickle payload that creates a marker file if it is ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


@pytest.mark.filterwarnings("ignore:LogMelFrontend. f_max")
@pytest.mark.parametrize("prefix", ["module.backbone.", "student.module.backbone."])
def test_round_trip_with_both_prefixes(tmp_path: Path, prefix: str) -> None:
    backbone = deezer_backbone_state()
    path = save_deezer_checkpoint(tmp_path / "model.pt", prefix, backbone)
    state, info = load_deezer_checkpoint(path)
    assert info.prefix == prefix
    assert info.other_entries == ("epoch",)
    assert list(state) == list(backbone)
    for key, value in backbone.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)  # student, never the teacher copy
    model = build_backbone("resnet", **info.backbone_kwargs)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(model.embedding.attnpool.c_proj.weight, backbone["embedding.attnpool.c_proj.weight"])


def test_default_frontend_refuses_deezer_filterbank() -> None:
    with pytest.raises(RuntimeError, match="DEEZER_FRONTEND"):
        build_backbone("resnet").load_state_dict(deezer_backbone_state())


def test_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"module.backbone.x": _RunsCodeWhenLoaded(marker)}}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: refused.*weights_only=False"):
        load_deezer_checkpoint(path)
    assert not marker.exists()


def test_a_file_of_random_bytes_is_named_damaged_not_malicious(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r"noise\.pt: not a PyTorch checkpoint .*damaged or of another kind"):
        load_deezer_checkpoint(path)


def test_missing_backbone_key_is_named(tmp_path: Path) -> None:
    backbone = deezer_backbone_state()
    del backbone["embedding.layer4.2.conv3.weight"]
    path = save_deezer_checkpoint(tmp_path / "broken.pt", "module.backbone.", backbone)
    with pytest.raises(ValueError, match=r"(?s)broken\.pt.*embedding\.layer4\.2\.conv3\.weight"):
        load_deezer_checkpoint(path)


def test_checkpoint_without_backbone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {"encoder.weight": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match=r"other\.pt: no backbone found.*encoder\.weight"):
        load_deezer_checkpoint(path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="'model' state dict"):
        load_deezer_checkpoint(path)


def _deezer_filterbank(dtype: torch.dtype = torch.float32, **changes: object) -> torch.Tensor:
    """deezer's mel filterbank computed in ``dtype`` and stored as float32, with ``changes`` to its settings."""
    settings = {"f_min": 0.0, "f_max": 11025.0, "n_mels": 128, "norm": None} | changes
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        bank = torchaudio.functional.melscale_fbanks(513, sample_rate=16000, mel_scale="slaney", **settings)
    finally:
        torch.set_default_dtype(previous)
    return bank.float()


@pytest.mark.filterwarnings("ignore:LogMelFrontend. f_max")
@pytest.mark.parametrize(
    "filterbank",
    [
        pytest.param(lambda: _deezer_filterbank() + 3e-6 * (_deezer_filterbank() > 0), id="3e-6-offset"),
        pytest.param(lambda: _deezer_filterbank(torch.float64), id="computed-in-float64"),
    ],
)
def test_filterbank_rounding_differences_are_accepted(filterbank: object) -> None:
    state = deezer_backbone_state()
    state["spec.spec.mel_scale.fb"] = filterbank()
    assert not torch.equal(state["spec.spec.mel_scale.fb"], _deezer_filterbank())
    build_backbone("resnet", f_max=11025.0, mel_norm=None).load_state_dict(state, strict=True)


@pytest.mark.filterwarnings("ignore:LogMelFrontend. f_max")
@pytest.mark.parametrize(
    "changes", [{"f_max": 11000.0}, {"norm": "slaney"}, {"n_mels": 96}], ids=["f_max", "norm", "n_mels"]
)
def test_a_different_frontend_is_still_refused(changes: dict[str, object]) -> None:
    state = deezer_backbone_state()
    state["spec.spec.mel_scale.fb"] = _deezer_filterbank(**changes)
    with pytest.raises(RuntimeError, match="front end differs"):
        build_backbone("resnet", f_max=11025.0, mel_norm=None).load_state_dict(state, strict=True)


@pytest.mark.filterwarnings("ignore:LogMelFrontend. f_max")
def test_optimizer_and_gin_settings_are_read_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backbone = deezer_backbone_state()
    model = {"module.backbone." + key: value for key, value in backbone.items()}
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([weight], lr=2.5e-4, weight_decay=0.04)
    weight.grad = torch.ones(3)
    optimizer.step()
    gin_info = ["import ssl_framework.models", "get_learning_rate_scheduler.min_lr = 1e-07", "SR = 16000"]
    path = tmp_path / "contrastive.pt"
    torch.save(
        {
            "pretext": "contrastive",
            "model": model,
            "optimizer": optimizer.state_dict(),
            "epoch": 999,
            "gin_info": gin_info,
        },
        path,
    )
    _, info = load_deezer_checkpoint(path)
    assert info.gin_info == tuple(gin_info)
    assert len(info.optimizer_groups) == 1 and "params" not in info.optimizer_groups[0]
    assert info.optimizer_groups[0]["lr"] == 2.5e-4 and info.optimizer_groups[0]["weight_decay"] == 0.04
    assert info.scalars == {"pretext": "contrastive", "epoch": 999}
    inspect_checkpoint(path)
    printed = capsys.readouterr().out
    assert "lr=0.00025" in printed and "weight_decay=0.04" in printed
    assert "  get_learning_rate_scheduler.min_lr = 1e-07" in printed and "epoch: 999" in printed


@pytest.mark.filterwarnings("ignore:LogMelFrontend. f_max")
def test_checkpoint_without_settings_says_so(tmp_path: Path) -> None:
    path = save_deezer_checkpoint(tmp_path / "bare.pt", "module.backbone.", deezer_backbone_state())
    _, info = load_deezer_checkpoint(path)
    assert "optimizer: not saved" in info.report() and "gin configuration: not saved" in info.report()
