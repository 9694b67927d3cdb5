"""The chain keeps CLMR's order and probabilities, draws per crop, keeps shapes/dtypes and is reproducible."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from musicssl.trainer.augment import AugmentationChain, AugmentConfig, Stage, build_stages
from musicssl.trainer.augment.chain import apply_stage

CROP = 16384
SMALL = AugmentConfig(crop_samples=CROP)
NOTHING = replace(SMALL, polarity_p=0, noise_p=0, gain_p=0, filter_p=0, delay_p=0, pitch_p=0, reverb_p=0)


def test_stages_follow_clmr_order_and_thesis_probabilities() -> None:
    stages = build_stages(AugmentConfig())
    assert [stage.name for stage in stages] == [
        "crop", "polarity", "noise", "gain", "filter", "delay", "pitch", "reverb"
    ]  # fmt: skip
    assert [stage.probability for stage in stages] == [1.0, 0.8, 0.01, 0.3, 0.8, 0.3, 0.6, 0.6]


@pytest.mark.parametrize("probability", [0.01, 0.3, 0.6, 0.8])
def test_application_probability_holds_within_binomial_tolerance(probability: float) -> None:
    draws = 20_000
    mark = Stage("mark", probability, lambda waveforms, generator: waveforms + 1)
    applied = apply_stage(mark, torch.zeros(draws, 1), torch.Generator().manual_seed(3))[:, 0]
    tolerance = 5 * math.sqrt(draws * probability * (1 - probability))
    assert abs(float(applied.sum()) - draws * probability) < tolerance
    assert set(applied.unique().tolist()) == {0.0, 1.0}


def test_chain_flips_each_crop_independently_at_the_configured_rate() -> None:
    chain = AugmentationChain(replace(NOTHING, crop_samples=4, polarity_p=0.8), seed=0)
    output = chain(torch.ones(5000, 4))
    flipped = output[:, 0] < 0
    assert torch.all(output.abs() == 1)
    assert abs(float(flipped.float().mean()) - 0.8) < 5 * math.sqrt(0.8 * 0.2 / 5000)


def test_chain_keeps_dtype_and_crops_to_the_configured_length() -> None:
    waveforms = torch.randn(6, CROP + 1000, generator=torch.Generator().manual_seed(0))
    output = AugmentationChain(SMALL, seed=0)(waveforms)
    assert output.shape == (6, CROP)
    assert output.dtype == torch.float32
    assert torch.isfinite(output).all()


def test_chain_with_every_effect_on_changes_every_crop() -> None:
    always = replace(SMALL, polarity_p=1, noise_p=1, gain_p=1, filter_p=1, delay_p=1, pitch_p=1, reverb_p=1)
    waveforms = torch.randn(3, CROP, generator=torch.Generator().manual_seed(0))
    output = AugmentationChain(always, seed=0)(waveforms)
    assert output.shape == waveforms.shape
    assert torch.all((output - waveforms).abs().amax(dim=1) > 0.1)


def test_chain_with_every_probability_zero_is_the_identity() -> None:
    waveforms = torch.randn(3, CROP)
    assert torch.equal(AugmentationChain(NOTHING, seed=0)(waveforms), waveforms)


def test_same_seed_gives_same_output_and_other_seed_differs() -> None:
    waveforms = torch.randn(8, CROP + 500, generator=torch.Generator().manual_seed(0))
    first = AugmentationChain(SMALL, seed=7)(waveforms)
    again = AugmentationChain(SMALL, seed=7)(waveforms)
    other = AugmentationChain(SMALL, seed=8)(waveforms)
    passed = AugmentationChain(SMALL)(waveforms, torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    assert torch.equal(first, passed)
    assert not torch.equal(first, other)


def test_chain_rejects_batched_pairs_with_a_hint() -> None:
    with pytest.raises(ValueError, match="reshape"):
        AugmentationChain(SMALL, seed=0)(torch.zeros(2, 2, CROP))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pitch_p", 1.5),
        ("gain_db", (0.0, -6.0)),
        ("lowpass_cutoff_hz", (2200.0, 20000.0)),
        ("delay_ms", (900.0,)),
        ("pitch_n_fft", 2 * CROP),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"AugmentConfig.{field}="):
        replace(SMALL, **{field: value})
