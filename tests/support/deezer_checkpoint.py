"""Fake deezer checkpoints built from deezer's backbone key names and shapes, recorded once from
deezer/multi-view-ssl-benchmark's own code in tests/data/deezer_resnet_backbone_keys.json."""

import json
from pathlib import Path

import torch
import torchaudio

from tests.support.paths import DATA

KEYS_FILE = DATA / "deezer_resnet_backbone_keys.json"


def deezer_backbone_state() -> dict[str, torch.Tensor]:
    """Random backbone weights under deezer's names and shapes, with deezer's (fixed) front-end buffers."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in json.loads(KEYS_FILE.read_text()).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    state["spec.spec.spectrogram.window"] = torch.hann_window(1024)
    state["spec.spec.mel_scale.fb"] = torchaudio.functional.melscale_fbanks(
        513, 0.0, 11025.0, 128, 16000, norm=None, mel_scale="slaney"
    )
    return state


def save_deezer_checkpoint(path: Path, prefix: str, backbone: dict[str, torch.Tensor]) -> Path:
    """A deezer-style checkpoint at `path`: the backbone under `prefix`, a head, a teacher copy for a student
    prefix, and an epoch entry."""
    model = {prefix + key: value for key, value in backbone.items()}
    model["module.head.ops.0.weight"] = torch.zeros(4, 4)
    if prefix.startswith("student."):
        model.update({"teacher.module.backbone." + key: value + 1 for key, value in backbone.items()})
    torch.save({"model": model, "epoch": 999}, path)
    return path
