"""Tests for trainer.diagnostics: a collapsed batch is flagged, a healthy one is not, RankMe by hand."""

from __future__ import annotations

import math

import pytest
import torch

from musicssl.trainer.diagnostics import collapse_metrics, effective_rank


def test_constant_embedding_is_flagged_as_collapsed() -> None:
    constant = torch.full((16, 8), 0.7)
    metrics = collapse_metrics(constant, constant.clone())
    assert metrics["embedding_std_mean"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["embedding_std_min"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["effective_rank"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["positive_cosine"] == pytest.approx(1.0) and metrics["negative_cosine"] == pytest.approx(1.0)


def test_isotropic_embeddings_look_healthy() -> None:
    generator = torch.Generator().manual_seed(0)
    first, noise = torch.randn(256, 8, generator=generator), torch.randn(256, 8, generator=generator)
    metrics = collapse_metrics(first, first + 0.1 * noise)
    assert metrics["effective_rank"] > 7.0
    assert metrics["embedding_std_mean"] == pytest.approx(1 / math.sqrt(8), rel=0.1)
    assert metrics["embedding_std_min"] > 0.25
    assert metrics["positive_cosine"] > 0.95 and abs(metrics["negative_cosine"]) < 0.05


def test_effective_rank_by_hand() -> None:
    # singular values 3 and 1: p = (0.75, 0.25), RankMe = exp(-(0.75 ln 0.75 + 0.25 ln 0.25))
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0])), eps=0.0) == pytest.approx(expected, rel=1e-6)


def test_collapse_metrics_rejects_mismatched_views() -> None:
    with pytest.raises(ValueError, match=r"equal \(B, D\).*\(4, 3\) and \(4, 2\)"):
        collapse_metrics(torch.zeros(4, 3), torch.zeros(4, 2))
