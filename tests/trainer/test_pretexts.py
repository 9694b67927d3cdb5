"""Tests for trainer.pretexts: registry, the Pretext contract, EMA teachers, DINO state, and that losses fall.

The tiny backbone and configs, which tests/trainer/test_distributed.py uses too, are in tests/support/tiny_pretexts.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from musicssl.trainer.config import TrainConfig
from musicssl.trainer.pretexts import PRETEXTS, build_pretext
from musicssl.trainer.pretexts.clustering import sinkhorn_knopp
from musicssl.trainer.pretexts.ema import ema_update
from tests.support.tiny_pretexts import COMMON, SAMPLES, TinyBackbone, synthetic_pairs, tiny_pretext


def test_registry_holds_the_five_pretexts_with_paper_defaults() -> None:
    assert set(PRETEXTS) == {"contrastive", "byol", "clustering", "barlow_twins", "vicreg"}
    assert all(cls.name == name for name, cls in PRETEXTS.items())
    contrastive = PRETEXTS["contrastive"].Config()
    assert contrastive.temperature == 0.1 and contrastive.projector_widths == (1024, 2048)
    byol = PRETEXTS["byol"].Config()
    assert (byol.predictor_widths, byol.momentum_start, byol.momentum_end) == ((256, 2048), 0.996, 1.0)
    clustering = PRETEXTS["clustering"].Config()
    assert (clustering.num_prototypes, clustering.center_momentum) == (4096, 0.9)
    assert PRETEXTS["barlow_twins"].Config().off_diagonal_weight == 0.0051
    vicreg = PRETEXTS["vicreg"].Config()
    assert (vicreg.invariance_weight, vicreg.variance_weight, vicreg.covariance_weight) == (25, 25, 1)
    assert vicreg.eps == 1e-4


def test_build_pretext_names_what_is_wrong() -> None:
    with pytest.raises(KeyError, match=r"unknown pretext 'simclr'.*contrastive"):
        build_pretext("simclr", TinyBackbone())
    with pytest.raises(KeyError, match=r"unknown settings \['temprature'\]"):
        build_pretext("contrastive", TinyBackbone(), {"temprature": 0.2})
    with pytest.raises(TypeError, match="ContrastiveConfig"):
        PRETEXTS["contrastive"](TinyBackbone(), PRETEXTS["vicreg"].Config())
    with pytest.raises(ValueError, match=r"predictor_widths .* must end with .* 16"):
        build_pretext("byol", TinyBackbone(), {**COMMON, "predictor_widths": (8, 4)})


@pytest.mark.parametrize("name", sorted(PRETEXTS))
def test_compute_loss_follows_the_contract(name: str) -> None:
    pretext = tiny_pretext(name)
    views = synthetic_pairs(6, torch.Generator().manual_seed(1))
    out = pretext.compute_loss(views)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and out.loss.requires_grad
    assert out.terms and all(v.dim() == 0 and not v.requires_grad for v in out.terms.values())
    expected = torch.stack([pretext.student.backbone(views[:, 0]), pretext.student.backbone(views[:, 1])], 1)
    assert not out.embeddings.requires_grad
    torch.testing.assert_close(out.embeddings, expected.detach())
    out.loss.backward()
    assert all(p.grad is not None for p in pretext.student.parameters())


def test_train_config_has_a_section_per_registered_pretext() -> None:
    config = TrainConfig()
    assert all(isinstance(getattr(config, name), cls.Config) for name, cls in PRETEXTS.items())
    assert type(TrainConfig(pretext="vicreg").pretext_config) is PRETEXTS["vicreg"].Config


def test_compute_loss_rejects_views_that_are_not_pairs() -> None:
    with pytest.raises(ValueError, match=r"views must be \(B, 2, T\).*\(4, 3, 64\)"):
        tiny_pretext("vicreg").compute_loss(torch.zeros(4, 3, SAMPLES))


@pytest.mark.parametrize("name", ["byol", "clustering"])
def test_ema_teacher_is_fp32_frozen_checkpointed_and_outside_the_student(name: str) -> None:
    pretext = tiny_pretext(name)
    student_parameters = {id(p) for p in pretext.student.parameters()}
    assert all(id(p) not in student_parameters for p in pretext.teacher.parameters())
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in pretext.teacher.parameters())
    keys = pretext.state_dict().keys()
    assert any(k.startswith("teacher.backbone.") for k in keys)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pretext.compute_loss(synthetic_pairs(4, torch.Generator().manual_seed(0)))
    assert out.loss.dtype == torch.float32


def test_byol_teacher_mirrors_backbone_and_projector_only() -> None:
    pretext = tiny_pretext("byol")
    teacher_names = {name for name, _ in pretext.teacher.named_parameters()}
    student_names = {name for name, _ in pretext.student.named_parameters()}
    assert teacher_names == {n for n in student_names if not n.startswith("predictor.")}


@pytest.mark.parametrize("name", ["byol", "clustering"])
def test_after_optimizer_step_moves_teacher_by_the_cosine_momentum(name: str) -> None:
    pretext = tiny_pretext(name, momentum_start=0.5)
    with torch.no_grad():
        for p in pretext.student.parameters():
            p.add_(1.0)
    before = {n: p.clone() for n, p in pretext.teacher.named_parameters()}
    student = dict(pretext.student.named_parameters())
    pretext.after_optimizer_step(0, 10)  # momentum 0.5 at step 0
    for n, p in pretext.teacher.named_parameters():
        torch.testing.assert_close(p, 0.5 * before[n] + 0.5 * student[n])
    after_first = {n: p.clone() for n, p in pretext.teacher.named_parameters()}
    pretext.after_optimizer_step(10, 10)  # momentum 1 at the end: no change
    for n, p in pretext.teacher.named_parameters():
        torch.testing.assert_close(p, after_first[n])


def test_ema_update_averages_parameters_and_copies_buffers() -> None:
    teacher, student = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        student.weight.fill_(3.0)
        student.running_mean.fill_(7.0)
    ema_update(teacher, student, momentum=0.75)
    torch.testing.assert_close(teacher.weight, torch.full((3,), 0.75 * 1.0 + 0.25 * 3.0))
    torch.testing.assert_close(teacher.running_mean, torch.full((3,), 7.0))


def test_clustering_center_follows_the_teacher_mean_in_training_only() -> None:
    pretext = tiny_pretext("clustering")
    views = synthetic_pairs(5, torch.Generator().manual_seed(2))
    teacher_scores = pretext.teacher_outputs(views)
    pretext.compute_loss(views)
    torch.testing.assert_close(pretext.center, 0.1 * teacher_scores.mean(dim=(0, 1)))
    center = pretext.center.clone()
    pretext.eval()
    pretext.compute_loss(views)
    torch.testing.assert_close(pretext.center, center)
    assert {"center", "teacher_temperature"} <= set(pretext.state_dict())


def test_clustering_teacher_temperature_warms_up_by_step() -> None:
    pretext = tiny_pretext("clustering", teacher_temperature_start=0.02, teacher_temperature=0.06)
    out = pretext.compute_loss(synthetic_pairs(4, torch.Generator().manual_seed(0)))
    assert out.terms["teacher_temperature"].item() == pytest.approx(0.02)
    pretext.after_optimizer_step(0, 100)  # warm-up over 4 steps: step 1 is a quarter of the way
    assert pretext.teacher_temperature.item() == pytest.approx(0.03)
    pretext.after_optimizer_step(3, 100)
    assert pretext.teacher_temperature.item() == pytest.approx(0.06)


@pytest.mark.parametrize("total_steps", [600, 512_000])
def test_schedule_lengths_follow_the_run_length(total_steps: int) -> None:
    """The paper's lengths as fractions of the run: a short run leaves the start temperature after 1 % of it and
    its teacher follows the cosine of its own length, not the paper's 512,000 steps."""
    clustering = PRETEXTS["clustering"](TinyBackbone(), PRETEXTS["clustering"].Config(num_prototypes=16))
    warmup = total_steps // 100  # 5120 steps in the paper's run, 6 in a 600-step one
    assert clustering.temperature_at(warmup // 2, total_steps) == pytest.approx(0.03)
    assert clustering.temperature_at(warmup, total_steps) == clustering.temperature_at(total_steps // 2, total_steps)
    assert clustering.temperature_at(total_steps // 2, total_steps) == pytest.approx(0.04)
    byol = tiny_pretext("byol", momentum_start=0.996)
    assert byol.momentum_at(total_steps // 2, total_steps) == pytest.approx(0.998)
    assert byol.momentum_at(total_steps, total_steps) == pytest.approx(1.0)
    early = tiny_pretext("byol", momentum_start=0.996, momentum_ramp_fraction=0.5)
    assert early.momentum_at(total_steps // 2, total_steps) == pytest.approx(1.0)
    stretched = tiny_pretext("byol", momentum_start=0.996, momentum_ramp_fraction=2.0)
    assert stretched.momentum_at(total_steps, total_steps) == pytest.approx(0.998)  # the teacher still moves


def test_clustering_reports_prototype_usage_and_flags_collapse() -> None:
    pretext = tiny_pretext("clustering")
    assert pretext.extra_metrics() == {}
    views = 3 * torch.randn(8, 2, SAMPLES, generator=torch.Generator().manual_seed(3))
    expected_counts = torch.bincount(pretext.teacher_outputs(views).argmax(dim=-1).flatten(), minlength=16)
    pretext.compute_loss(views)  # the center is still 0, so assignments are the teacher's argmax
    assert torch.equal(torch.bincount(pretext.assignments.flatten(), minlength=16), expected_counts)
    share = expected_counts[expected_counts > 0].double() / 16  # 8 pairs x 2 views
    metrics = pretext.extra_metrics()
    assert metrics["prototypes_in_use"] == float((expected_counts > 0).sum()) > 1
    assert metrics["prototype_usage_entropy"] == pytest.approx(float(-(share * share.log()).sum()))
    pretext.compute_loss(torch.zeros(8, 2, SAMPLES))  # identical inputs: one prototype takes everything
    assert pretext.extra_metrics() == {"prototypes_in_use": 1.0, "prototype_usage_entropy": 0.0}


def test_sinkhorn_spreads_a_batch_that_prefers_one_prototype_and_keeps_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = 0.1 * torch.randn(32, 8, generator=generator)
    scores[:, 0] += 0.5  # every row's softmax peaks on prototype 0
    assert torch.softmax(scores / 0.04, dim=-1).argmax(dim=-1).unique().tolist() == [0]
    targets = sinkhorn_knopp(scores, 0.04, iterations=3)
    torch.testing.assert_close(targets.sum(dim=-1), torch.ones(32))
    assert targets.argmax(dim=-1).unique().numel() >= 6  # of 8
    converged = sinkhorn_knopp(scores, 0.04, iterations=200).sum(dim=0)
    torch.testing.assert_close(converged, torch.full((8,), 32 / 8), rtol=1e-3, atol=0)  # equal shares
    shifted = scores + torch.arange(32.0).unsqueeze(1)  # a per-row constant changes nothing
    torch.testing.assert_close(sinkhorn_knopp(shifted, 0.04, iterations=3), targets)


def test_clustering_sinkhorn_teacher_replaces_the_centre() -> None:
    pretext = tiny_pretext("clustering", teacher_normalization="sinkhorn", sinkhorn_iterations=2)
    views = synthetic_pairs(5, torch.Generator().manual_seed(2))
    teacher_scores = pretext.teacher_outputs(views)
    targets = pretext.teacher_targets(teacher_scores)
    expected = sinkhorn_knopp(teacher_scores.flatten(0, 1), 0.02, iterations=2).view(5, 2, 16)
    torch.testing.assert_close(targets, expected)
    pretext.compute_loss(views)
    assert torch.equal(pretext.center, torch.zeros(16))  # the centre is DINO's, unused here
    torch.testing.assert_close(pretext.assignments, expected.argmax(dim=-1))
    with pytest.raises(ValueError, match=r"teacher_normalization must be one of \('centering', 'sinkhorn'\)"):
        tiny_pretext("clustering", teacher_normalization="sinkorn")
    with pytest.raises(ValueError, match="sinkhorn_iterations must be >= 1"):
        tiny_pretext("clustering", teacher_normalization="sinkhorn", sinkhorn_iterations=0)


@pytest.mark.parametrize("name", sorted(PRETEXTS))
def test_loss_goes_down_when_a_tiny_backbone_trains(name: str) -> None:
    pretext = tiny_pretext(name, seed=0, projector_batch_norm=True)  # BatchNorm as in the paper's projector
    optimizer = torch.optim.Adam(pretext.student.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(30):
        out = pretext.compute_loss(synthetic_pairs(16, generator))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        pretext.after_optimizer_step(step, 30)
        losses.append(out.loss.item())
    first, last = sum(losses[:5]), sum(losses[-5:])
    assert last < first - 0.2 * abs(first), losses  # down by a fifth of its size (losses may be negative)
