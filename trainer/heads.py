"""Projector and predictor heads: MLPs of (Linear + BatchNorm + ReLU) blocks followed by a last Linear.

Layout and the deezer mapping: ``MLPHead(in_dim, widths)`` builds one hidden block per entry of
``widths[:-1]`` and a final ``Linear(widths[-2], widths[-1])``, exactly like deezer's
``Head(feature_dim=in_dim, layers_feature_dim=widths)`` (ssl_framework/models/__init__.py), so the
lists can be copied across unchanged. Their default ``head_feature_dim=[1024, 1024, 2048]`` on the
1024-d ResNet embedding is ``MLPHead(1024, [1024, 1024, 2048])``: two 1024-wide Linear+BN+ReLU blocks
and a final 1024 -> 2048 Linear. The paper's text ("two blocks, 1024 then 2048") counts the output
layer as the second block; the published code, which produced the checkpoints, has the extra block,
so presets reproducing the paper should use the code's list. Other presets:
thesis VICReg ``MLPHead(512, [8192, 8192, 8192])``, CLMR ``MLPHead(512, [512, 128], batch_norm=False,
hidden_bias=False)`` (Spijkervet/SimCLR simclr/simclr.py: Linear-ReLU-Linear, no BatchNorm, no biases),
deezer BYOL predictor ``MLPHead(2048, [256, 2048])``.

As in deezer, VICReg and SimCLR the final Linear has no bias by default; hidden Linears have no bias
when BatchNorm follows (its shift replaces the bias) and, unless ``hidden_bias`` says otherwise, a bias
when ``batch_norm=False``.
"""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """Stack of Linear(+BatchNorm)+ReLU blocks then a final Linear, used as projector or predictor."""

    def __init__(
        self,
        in_dim: int,
        widths: list[int],
        batch_norm: bool = True,
        final_bias: bool = False,
        hidden_bias: bool | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"MLPHead: in_dim must be a positive int, got {in_dim}")
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(
                f"MLPHead: widths must be a non-empty list of positive ints (e.g. [1024, 2048]), got {widths}"
            )
        self.in_dim = in_dim
        self.out_dim = int(widths[-1])
        if hidden_bias is None:
            hidden_bias = not batch_norm
        layers: list[nn.Module] = []
        previous = in_dim
        for width in widths[:-1]:
            layers.append(nn.Linear(previous, width, bias=hidden_bias))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU(inplace=True))
            previous = width
        layers.append(nn.Linear(previous, self.out_dim, bias=final_bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_dim) features to (N, out_dim)."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPHead expects input of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        return self.layers(x)
