"""Tests for trainer.heads.MLPHead: layout, shapes, the no-BatchNorm variant and input checks."""

import pytest
import torch
from torch import nn

from musicssl.trainer.heads import MLPHead


def test_paper_projector_matches_deezer_head_layout() -> None:
    head = MLPHead(1024, [1024, 1024, 2048])
    kinds = [type(m) for m in head.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    linears = [m for m in head.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1024, 1024), (1024, 1024), (1024, 2048)]
    assert all(m.bias is None for m in linears)
    # deezer Head has exactly these parameters: 3 weights + 2 BN (weight, bias)
    assert sum(p.numel() for p in head.parameters()) == 1024 * 1024 * 2 + 1024 * 2048 + 4 * 1024


def test_output_shape_and_gradient() -> None:
    head = MLPHead(16, [32, 8])
    x = torch.randn(5, 16, requires_grad=True)
    y = head(x)
    assert y.shape == (5, 8)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_without_batch_norm_is_per_sample() -> None:
    torch.manual_seed(0)
    head = MLPHead(6, [10, 4], batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in head.modules())
    assert head.layers[0].bias is not None
    x = torch.randn(4, 6)
    # without BN each output row depends on its own input row only
    torch.testing.assert_close(head(x)[:2], head(x[:2]))


def test_single_width_is_one_linear() -> None:
    head = MLPHead(3, [7], final_bias=True)
    assert len(head.layers) == 1 and head.layers[0].bias is not None


@pytest.mark.parametrize("widths", [[], [0, 4]])
def test_bad_widths_are_refused(widths: list[int]) -> None:
    with pytest.raises(ValueError, match="widths"):
        MLPHead(4, widths)


def test_wrong_input_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        MLPHead(4, [8, 2])(torch.randn(3, 5))
