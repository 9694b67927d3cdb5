"""The paper's backbone: log-mel front end + CLIP-style modified ResNet with attention pooling.

Module and parameter names and shapes follow deezer/multi-view-ssl-benchmark (``Backbone`` with ``spec``
and ``embedding``; ``ModifiedResNet`` after CLIP), so the published checkpoints load strictly. Defaults
(mono 4 s at 16 kHz, width 16, layers (3, 4, 6, 3), 8 heads, 1024-d output) give 2,800,392 parameters;
the log-mel input is 128 x 126, reduced 32-fold to a 4 x 3 grid, so the attention pool's positional
embedding has 4 * 3 + 1 = 13 rows of 512 (= 32 * width) channels.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from musicssl.trainer.backbones.base import Backbone
from musicssl.trainer.frontend import LogMelFrontend


@dataclass
class ResNetConfig:
    """The paper's log-mel ResNet (16 kHz; its input is the run's crop, `--pairs.crop-seconds`)."""

    f_max: float = 8000.0
    """Mel upper frequency in Hz (11025 reproduces the published models)."""
    width: int = 16
    """Width (16 = the paper)."""
    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    """Bottleneck blocks per stage ((3, 4, 6, 3) = the paper)."""


class Bottleneck(nn.Module):
    """Residual 1x1-3x3-1x1 block, anti-aliased: strides are average pools before the last and skip convs."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride > 1 or in_channels != out_channels:
            # keys "0" and "1" give deezer's parameter names downsample.0.* and downsample.1.*
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("pool", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                        ("0", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
                        ("1", nn.BatchNorm2d(out_channels)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to (N, C, H, W) features."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Multi-head attention pooling: the mean token (plus positional embedding) queries all grid tokens."""

    def __init__(self, num_tokens: int, channels: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"AttentionPool2d: {channels} channels do not split into {num_heads} heads")
        self.positional_embedding = nn.Parameter(torch.randn(num_tokens, channels) / channels**0.5)
        self.k_proj = nn.Linear(channels, channels)
        self.q_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.c_proj = nn.Linear(channels, out_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool (N, C, H, W) features to (N, out_dim)."""
        tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        batch, _, channels = tokens.shape
        head_dim = channels // self.num_heads

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, -1, self.num_heads, head_dim).transpose(1, 2)

        # only the mean token's output is kept, so it is the only query computed
        query = split_heads(self.q_proj(tokens[:, :1]))
        pooled = F.scaled_dot_product_attention(
            query, split_heads(self.k_proj(tokens)), split_heads(self.v_proj(tokens))
        )
        return self.c_proj(pooled.transpose(1, 2).reshape(batch, channels))


def _grid_size(length: int) -> int:
    """Spatial size after the stem's stride-2 conv (ceil) and the four 2x average pools (floor)."""
    size = (length + 1) // 2
    for _ in range(4):
        size //= 2
    return size


class ModifiedResNet(nn.Module):
    """CLIP's modified ResNet on a log-mel (N, 1, mels, frames): 3-conv stem, bottlenecks, attention pool."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        embed_dim: int = 1024,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        heads: int = 8,
        width: int = 16,
    ) -> None:
        super().__init__()
        grid = _grid_size(n_mels) * _grid_size(n_frames)
        if grid < 1:
            raise ValueError(f"ModifiedResNet: input {n_mels} x {n_frames} is too small for 32x downsampling")
        self.conv1 = nn.Conv2d(1, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        channels = width
        stages = []
        for index, blocks in enumerate(layers):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            stage = [Bottleneck(channels, planes, stride)]
            channels = planes * Bottleneck.expansion
            stage += [Bottleneck(channels, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.attnpool = AttentionPool2d(grid + 1, channels, heads, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a (N, 1, n_mels, frames) spectrogram batch to (N, embed_dim)."""
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = self.relu(bn(conv(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class PaperResNet(Backbone):
    """Waveform (N, num_samples) at 16 kHz -> log-mel -> modified ResNet -> (N, embed_dim) embedding; or log-mel
    dB (N, 1, n_mels, frames) from a log-mel shard set -> floor -> modified ResNet."""

    name = "resnet"
    Config = ResNetConfig

    def __init__(
        self,
        embed_dim: int = 1024,
        sample_rate: int = 16000,
        duration_s: float = 4.0,
        width: int = 16,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        heads: int = 8,
        **frontend: Any,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.sample_rate = sample_rate
        self.num_samples = round(duration_s * sample_rate)
        self.spec = LogMelFrontend(sample_rate=sample_rate, **frontend)
        self.embedding = ModifiedResNet(
            n_mels=self.spec.n_mels,
            n_frames=self.spec.num_frames(self.num_samples),
            embed_dim=embed_dim,
            layers=layers,
            heads=heads,
            width=width,
        )

    @classmethod
    def recipe_kwargs(cls, config: ResNetConfig, crop_seconds: float) -> dict[str, Any]:
        """The Config's fields, and the crop length as the input length."""
        return {**super().recipe_kwargs(config, crop_seconds), "duration_s": crop_seconds}

    @property
    def mel_frontend(self) -> LogMelFrontend:
        return self.spec

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Embed a (N, num_samples) waveform batch, or a (N, 1, n_mels, frames) batch of mel power in dB."""
        if waveform.dim() == 4:
            frames = self.spec.num_frames(self.num_samples)
            if waveform.shape[-1] != frames:
                raise ValueError(
                    f"PaperResNet expects log-mel of {frames} frames ({self.num_samples / self.sample_rate:g} s), "
                    f"got shape {tuple(waveform.shape)}"
                )
            return self.embedding(self.spec.forward_db(waveform))
        if waveform.dim() != 2 or waveform.shape[1] != self.num_samples:
            raise ValueError(
                f"PaperResNet expects waveforms of shape (N, {self.num_samples}) "
                f"({self.num_samples / self.sample_rate:g} s at {self.sample_rate} Hz), "
                f"got {tuple(waveform.shape)}; crop or pad the input, or build with another duration_s"
            )
        return self.embedding(self.spec(waveform))
