"""Tests for trainer.optim: parameter groups, the lr scaling rule, and LARS against a hand computation."""

import math

import pytest
import torch
from torch import nn

from musicssl.trainer.heads import MLPHead
from musicssl.trainer.optim import LARS, build_optimizer, split_decay_groups


def _small_model() -> nn.Module:
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.Flatten(), nn.LayerNorm(8), MLPHead(8, [6, 2]))


def test_groups_exempt_biases_norms_and_frozen() -> None:
    model = _small_model()
    model[0].weight.requires_grad_(False)
    decay, exempt = split_decay_groups(model, weight_decay=0.1)
    decayed = {id(p) for p in decay["params"]}
    assert decayed == {id(model[4].layers[0].weight), id(model[4].layers[3].weight)}
    exempt_ids = {id(p) for p in exempt["params"]}
    expected_exempt = [model[0].bias, model[1].weight, model[1].bias, model[3].weight, model[3].bias]
    assert exempt_ids == {id(p) for p in [*expected_exempt, model[4].layers[1].weight, model[4].layers[1].bias]}
    assert (decay["weight_decay"], decay["lars_adaptation"]) == (0.1, True)
    assert (exempt["weight_decay"], exempt["lars_adaptation"]) == (0.0, False)


@pytest.mark.parametrize(("name", "kind"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("lars", LARS)])
def test_build_optimizer_scales_lr_by_batch(name: str, kind: type) -> None:
    optimizer = build_optimizer(_small_model(), name, base_lr=0.2, weight_decay=1e-6, batch_size=768)
    assert isinstance(optimizer, kind)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.6, 0.6])
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-6, 0.0]


def test_build_optimizer_passes_options_and_refuses_bad_input() -> None:
    optimizer = build_optimizer(_small_model(), "lars", 0.2, 1e-6, 256, eta=0.02, momentum=0.8)
    assert optimizer.param_groups[0]["eta"] == 0.02 and optimizer.param_groups[0]["momentum"] == 0.8
    with pytest.raises(ValueError, match=r"'sgd'.*'adam', 'adamw', 'lars'"):
        build_optimizer(_small_model(), "sgd", 0.1, 0.0, 256)
    with pytest.raises(ValueError, match="batch_size"):
        build_optimizer(_small_model(), "adamw", 0.1, 0.0, 0)


def _lars_step(weight: nn.Parameter, bias: nn.Parameter, optimizer: LARS) -> None:
    weight.grad = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    bias.grad = torch.tensor([0.25], dtype=torch.float64)
    optimizer.step()


def test_lars_matches_hand_computation() -> None:
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    bias = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    groups = [
        {"params": [weight], "weight_decay": 0.1},
        {"params": [bias], "weight_decay": 0.0, "lars_adaptation": False},
    ]
    optimizer = LARS(groups, lr=0.5, eta=0.001, momentum=0.9)

    # step 1: u = g + 0.1 p = (0.9, 1.2), |u| = 1.5, |p| = 5, trust = 0.001 * 5 / 1.5 = 1 / 300,
    # buffer = u / 300 = (0.003, 0.004), p = p - 0.5 * buffer; bias: buffer = 0.25, b = 1 - 0.125
    _lars_step(weight, bias, optimizer)
    torch.testing.assert_close(weight.detach(), torch.tensor([[2.9985, 3.998]], dtype=torch.float64))
    torch.testing.assert_close(bias.detach(), torch.tensor([0.875], dtype=torch.float64))

    # step 2: u = (0.6 + 0.29985, 0.8 + 0.3998), trust = 0.001 |p| / |u|, buffer = 0.9 * buffer + trust * u
    u = (0.89985, 1.1998)
    trust = 0.001 * math.hypot(2.9985, 3.998) / math.hypot(*u)
    expected = [p - 0.5 * (0.9 * m + trust * x) for p, m, x in zip((2.9985, 3.998), (0.003, 0.004), u, strict=True)]
    _lars_step(weight, bias, optimizer)
    torch.testing.assert_close(weight.detach()[0], torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(bias.detach(), torch.tensor([0.875 - 0.5 * (0.9 * 0.25 + 0.25)], dtype=torch.float64))


def test_lars_zero_parameter_uses_unit_trust() -> None:
    weight = nn.Parameter(torch.zeros(2, 2))
    optimizer = LARS([weight], lr=1.0, momentum=0.0)
    weight.grad = torch.ones(2, 2)
    optimizer.step()
    torch.testing.assert_close(weight.detach(), -torch.ones(2, 2))
