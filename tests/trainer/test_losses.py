"""Each pretext loss against its published formula: hand-computed cases and naive per-element loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from musicssl.trainer.pretexts.barlow_twins import barlow_twins_loss
from musicssl.trainer.pretexts.byol import byol_loss
from musicssl.trainer.pretexts.clustering import clustering_loss
from musicssl.trainer.pretexts.contrastive import nt_xent_loss
from musicssl.trainer.pretexts.vicreg import vicreg_loss


def cosine(a: Tensor, b: Tensor) -> float:
    return float(a.detach() @ b.detach() / (a.norm() * b.norm()).detach())


def naive_nt_xent(z: Tensor, temperature: float) -> float:
    """SimCLR eq. 1 by loops over the 2N crops, crop k = (pair k // 2, view k % 2)."""
    crops = [z[k // 2, k % 2] for k in range(2 * z.shape[0])]
    total = 0.0
    for a, anchor in enumerate(crops):
        positive = a + 1 if a % 2 == 0 else a - 1
        numerator = math.exp(cosine(anchor, crops[positive]) / temperature)
        denominator = sum(math.exp(cosine(anchor, c) / temperature) for k, c in enumerate(crops) if k != a)
        total += -math.log(numerator / denominator)
    return total / len(crops)


def test_nt_xent_by_hand_two_orthogonal_pairs() -> None:
    e1, e2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    z = torch.stack([torch.stack([e1, e1]), torch.stack([e2, e2])])
    # each anchor: positive cos 1, two negatives cos 0 -> -log(e^10 / (e^10 + 2))
    assert nt_xent_loss(z, 0.1).item() == pytest.approx(math.log(1 + 2 * math.exp(-10)), rel=1e-5)


def test_nt_xent_matches_the_naive_formula() -> None:
    z = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert nt_xent_loss(z, 0.5).item() == pytest.approx(naive_nt_xent(z, 0.5), rel=1e-9)


def test_byol_is_zero_when_aligned_and_eight_when_opposite() -> None:
    targets = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1))
    predictions = 5 * targets.flip(1)  # each view predicts the other's target, up to scale
    assert byol_loss(predictions, targets).item() == pytest.approx(0.0, abs=1e-6)
    # opposite directions: each of the two terms is 2 - 2 * (-1) = 4, averaged over pairs (not summed)
    assert byol_loss(-predictions, targets).item() == pytest.approx(8.0, rel=1e-6)


def test_byol_matches_the_naive_formula_and_stops_gradient_to_targets() -> None:
    generator = torch.Generator().manual_seed(2)
    predictions = torch.randn(3, 2, 4, generator=generator, requires_grad=True)
    targets = torch.randn(3, 2, 4, generator=generator, requires_grad=True)
    expected = sum(
        (2 - 2 * cosine(predictions[i, 0], targets[i, 1])) + (2 - 2 * cosine(predictions[i, 1], targets[i, 0]))
        for i in range(3)
    )
    loss = byol_loss(predictions, targets)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)
    loss.backward()
    assert targets.grad is None and predictions.grad is not None


def test_clustering_loss_by_hand_and_against_loops() -> None:
    k = 4
    uniform_student = torch.zeros(2, 2, k)
    one_hot_teacher = F.one_hot(torch.tensor([[0, 1], [2, 3]]), k).float()
    assert clustering_loss(uniform_student, one_hot_teacher, 0.1).item() == pytest.approx(math.log(k))

    generator = torch.Generator().manual_seed(3)
    student = torch.randn(3, 2, k, generator=generator)
    teacher = torch.softmax(torch.randn(3, 2, k, generator=generator), dim=-1)
    expected = 0.0
    for i in range(3):
        for s_view, t_view in ((0, 1), (1, 0)):
            log_p = torch.log_softmax(student[i, s_view] / 0.1, dim=-1)
            expected += -float((teacher[i, t_view] * log_p).sum())
    assert clustering_loss(student, teacher, 0.1).item() == pytest.approx(expected / 6, rel=1e-5)


def naive_barlow_twins(z: Tensor, lambda_: float, eps: float) -> tuple[float, float]:
    """Zbontar et al. eq. 1-2 with C_ij = sum_b zA_bi zB_bj / N over batch-normalised features, by loops."""
    n, _, d = z.shape
    normalised = []
    for view in range(2):
        x = z[:, view]
        mean = [sum(float(x[b, j]) for b in range(n)) / n for j in range(d)]
        var = [sum((float(x[b, j]) - mean[j]) ** 2 for b in range(n)) / n for j in range(d)]
        normalised.append([[(float(x[b, j]) - mean[j]) / math.sqrt(var[j] + eps) for j in range(d)] for b in range(n)])
    a, b_ = normalised
    c = [[sum(a[b][i] * b_[b][j] for b in range(n)) / n for j in range(d)] for i in range(d)]
    on = sum((1 - c[i][i]) ** 2 for i in range(d))
    off = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return on, off


def test_barlow_twins_matches_the_naive_formula() -> None:
    z = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    terms = barlow_twins_loss(z, 0.0051)
    on, off = naive_barlow_twins(z, 0.0051, 1e-5)
    assert terms["on_diagonal"].item() == pytest.approx(on, rel=1e-9)
    assert terms["off_diagonal"].item() == pytest.approx(off, rel=1e-9)
    assert terms["loss"].item() == pytest.approx(on + 0.0051 * off, rel=1e-9)


def test_barlow_twins_is_zero_for_identical_decorrelated_views() -> None:
    features = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # zero mean, unit var, C = I
    terms = barlow_twins_loss(torch.stack([features, features], dim=1), 0.0051, eps=0.0)
    assert terms["loss"].item() == pytest.approx(0.0, abs=1e-6)


def naive_vicreg(z: Tensor, eps: float) -> tuple[float, float, float]:
    """Bardes et al. (main_vicreg.py) by loops: MSE, mean std hinge / 2 per view, off-diagonal cov^2 / d."""
    n, _, d = z.shape
    invariance = sum(float(z[b, 0, j] - z[b, 1, j]) ** 2 for b in range(n) for j in range(d)) / (n * d)
    variance, covariance = 0.0, 0.0
    for view in range(2):
        x = z[:, view]
        mean = [sum(float(x[b, j]) for b in range(n)) / n for j in range(d)]
        cov = [
            [sum((float(x[b, i]) - mean[i]) * (float(x[b, j]) - mean[j]) for b in range(n)) / (n - 1) for j in range(d)]
            for i in range(d)
        ]
        variance += sum(max(0.0, 1 - math.sqrt(cov[j][j] + eps)) for j in range(d)) / d / 2
        covariance += sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return invariance, variance, covariance


def test_vicreg_matches_the_naive_formula() -> None:
    z = 0.3 * torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    terms = vicreg_loss(z, 25.0, 25.0, 1.0, 1e-4)
    invariance, variance, covariance = naive_vicreg(z, 1e-4)
    assert terms["invariance"].item() == pytest.approx(invariance, rel=1e-9)
    assert terms["variance"].item() == pytest.approx(variance, rel=1e-9)
    assert terms["covariance"].item() == pytest.approx(covariance, rel=1e-9)
    assert terms["loss"].item() == pytest.approx(25 * invariance + 25 * variance + covariance, rel=1e-9)


def test_vicreg_by_hand_for_a_collapsed_batch() -> None:
    z = torch.ones(3, 2, 4)  # every embedding equal: no invariance or covariance cost, full variance hinge
    terms = vicreg_loss(z, 25.0, 25.0, 1.0, 1e-4)
    assert terms["invariance"].item() == 0.0 and terms["covariance"].item() == 0.0
    assert terms["variance"].item() == pytest.approx(1 - math.sqrt(1e-4))
    assert terms["loss"].item() == pytest.approx(25 * 0.99)


def deezer_reference(z: Tensor) -> dict[str, float]:
    """deezer's FeatureStatsLoss and DiagonalLoss terms (ssl_framework/selfsupervised_losses.py) with
    BatchNorm1d(affine=False) modules in training mode, coefficients 1: the shape of their code, loop for loop."""
    a, b = z[:, 0], z[:, 1]
    batch, features = a.shape
    mask = torch.eye(features, dtype=torch.bool)
    bn = torch.nn.BatchNorm1d(features, affine=False).train()
    cov_a, cov_b = bn(a).T @ bn(a) / (batch - 1), bn(b).T @ bn(b) / (batch - 1)
    std_a, std_b = torch.sqrt(a.var(dim=0) + 1e-5), torch.sqrt(b.var(dim=0) + 1e-5)
    cc = bn(a).T @ bn(b) / (batch - 1)
    return {
        "invariance": float(torch.square(a - b).mean()),
        "variance": float(torch.cat([F.relu(1 - std_a), F.relu(1 - std_b)]).mean()),
        "covariance": float(torch.cat([cov_a[~mask].pow(2), cov_b[~mask].pow(2)]).mean()),
        "on_diagonal": float((1 - cc[mask]).pow(2).mean()),
        "off_diagonal": float(cc[~mask].pow(2).mean()),
    }


def test_deezer_variants_match_deezer_code() -> None:
    z = torch.randn(12, 2, 6, generator=torch.Generator().manual_seed(3)) * 2 + 0.5
    reference = deezer_reference(z)
    vicreg = vicreg_loss(z, 1.0, 1.0, 1.0, eps=1e-5, variant="deezer")
    barlow = barlow_twins_loss(z, off_diagonal_weight=1.0, variant="deezer")
    for name in ("invariance", "variance", "covariance"):
        assert float(vicreg[name]) == pytest.approx(reference[name], rel=1e-5)
    for name in ("on_diagonal", "off_diagonal"):
        assert float(barlow[name]) == pytest.approx(reference[name], rel=1e-5)
    assert float(vicreg["loss"]) == pytest.approx(sum(reference[n] for n in ("invariance", "variance", "covariance")))
    textbook = vicreg_loss(z, 1.0, 1.0, 1.0, eps=1e-5)
    assert float(textbook["covariance"]) != pytest.approx(reference["covariance"], rel=1e-2)  # a real difference
    with pytest.raises(ValueError, match="unknown variant"):
        barlow_twins_loss(z, 1.0, variant="sums")
