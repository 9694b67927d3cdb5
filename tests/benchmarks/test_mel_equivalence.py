"""benchmarks/mel_equivalence.py's crop comparison, on generated tracks and an untrained tiny backbone: it runs, and
its inner-frame differences stay within each encoding's rounding while the edge frames show the padding."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.mel_equivalence import Args, compare_crops
from musicssl.sharding.layout import MEL_ENCODINGS, Layout
from musicssl.trainer.backbones import build_backbone


def test_crops_compare_within_the_encodings_rounding() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("resnet", width=8, duration_s=1.0).eval()
    rng = np.random.default_rng(0)
    t = np.arange(5 * 16000) / 16000
    pcm = {f"t{i}": (np.sin(2 * np.pi * (300 + 100 * i) * t) * 8000 + rng.normal(0, 300, t.size)).astype(np.int16)
           for i in range(3)}  # fmt: skip
    mel = {}
    for encoding, name in MEL_ENCODINGS.items():
        layout = Layout(name, backbone.mel_frontend.settings)
        mel[encoding] = {key: layout.decode(layout.encode(track)) for key, track in pcm.items()}
    differences, cosine = compare_crops(backbone, pcm, mel, Args(crops=8))
    by_encoding = {d.encoding: d for d in differences}
    assert by_encoding["uint8"].inner_max <= 0.25 + 1e-3 and by_encoding["fp16"].inner_max < 0.1
    assert by_encoding["uint8"].edge_mean > 1.0  # crops inside a track: its edge frames see other audio
    assert cosine.shape == (8,) and cosine.min() > 0.99
