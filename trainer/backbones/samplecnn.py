"""The thesis' backbone: SampleCNN (Lee et al. 2017, as in CLMR) on 3^10 = 59,049 raw samples at 22.05 kHz.

A stride-3 convolution, nine (conv 3 + BN + ReLU + max-pool 3) blocks and a last conv reduce 59,049
samples to a single step; its channels are the representation. Channels follow CLMR's ``SampleCNN``:
128, 128, 128, 256 x 6, 512, then the last conv with ``embed_dim`` channels (512 in CLMR, 32-512 in the
thesis' representation-size sweeps). CLMR's classifier ``fc`` is dropped, as CLMR does for pre-training.
At 512 the model has 2,368,512 parameters (the thesis quotes 2.46 M, presumably counting a head).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from musicssl.trainer.backbones.base import Backbone

HIDDEN_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)
"""Output channels of the nine pooled blocks (CLMR's ``hidden`` list)."""


def _conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    """Conv1d(kernel 3, same padding) + BatchNorm + ReLU, followed by a 3x max-pool when ``pool``."""
    layers: list[nn.Module] = [
        nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool1d(3))
    return nn.Sequential(*layers)


@dataclass
class SampleCNNConfig:
    """The thesis' waveform SampleCNN (22.05 kHz; its input is 59,049 samples, whatever the crop length)."""

    embed_dim: int = 512
    """Representation size (32-512 in the thesis sweeps)."""


class SampleCNN(Backbone):
    """Waveform (N, 59049) at 22,050 Hz -> (N, embed_dim) representation."""

    name = "samplecnn"
    Config = SampleCNNConfig

    def __init__(self, embed_dim: int = 512, sample_rate: int = 22050) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"SampleCNN: embed_dim must be positive, got {embed_dim}")
        self.embed_dim = embed_dim
        self.sample_rate = sample_rate
        self.num_samples = 3 ** (len(HIDDEN_CHANNELS) + 1)
        stem = nn.Sequential(nn.Conv1d(1, 128, kernel_size=3, stride=3), nn.BatchNorm1d(128), nn.ReLU(inplace=True))
        blocks = [stem]
        channels = 128
        for out_channels in HIDDEN_CHANNELS:
            blocks.append(_conv_block(channels, out_channels, pool=True))
            channels = out_channels
        blocks.append(_conv_block(channels, embed_dim, pool=False))
        self.layers = nn.Sequential(*blocks)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Embed a (N, 59049) waveform batch."""
        if waveform.dim() != 2 or waveform.shape[1] != self.num_samples:
            raise ValueError(
                f"SampleCNN expects waveforms of shape (N, {self.num_samples}) at {self.sample_rate} Hz, "
                f"got {tuple(waveform.shape)}; crop or pad the input to {self.num_samples} samples"
            )
        return self.layers(waveform.unsqueeze(1)).flatten(1)
