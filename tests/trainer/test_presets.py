"""The study presets hold the values of their sources (thesis, CLMR's code, facebookresearch/vicreg, deezer)."""

from pathlib import Path

import pytest
import torch
from torch import nn

from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.cli import parse_config
from musicssl.trainer.config import OptimConfig, TrainConfig, TrainPairsConfig
from musicssl.trainer.epochs import resolve_epochs
from musicssl.trainer.optim import build_optimizer, learning_rate_schedule, set_weight_decay, weight_decay_schedule
from musicssl.trainer.pretexts import build_pretext


def _layers(head: nn.Module) -> list[tuple[str, int, int, bool]]:
    """(kind, in, out, has bias) of each Linear, ("BatchNorm1d"/"ReLU", 0, 0, False) of the others."""
    return [
        (type(m).__name__, m.in_features, m.out_features, m.bias is not None)
        if isinstance(m, nn.Linear)
        else (type(m).__name__, 0, 0, False)
        for m in head.layers
    ]


FMA_MEDIUM_TRACKS = 25_000  # thesis 3.4: the FMA the thesis pre-trains on


def thesis_preset(name: str) -> TrainConfig:
    """A thesis preset with its epoch of one pass resolved for FMA medium."""
    config, _ = parse_config(["--preset", name])
    return resolve_epochs(config, lambda: FMA_MEDIUM_TRACKS, print)


@pytest.mark.parametrize("name", ["thesis-vicreg", "thesis-clmr"])
def test_thesis_epochs_are_passes_over_the_tracks_with_checkpoints_where_the_thesis_probes(name: str) -> None:
    config, _ = parse_config(["--preset", name])
    assert config.steps_per_epoch == "pass" and config.checkpoint.keep_epochs == (300, 1000, 3000, 5000, 8000)
    with pytest.raises(ValueError, match="counted from the data"):
        config.total_steps  # noqa: B018 - the property is what raises
    resolved = thesis_preset(name)
    steps = FMA_MEDIUM_TRACKS // config.batch_size  # 32 at 768, 97 at 256: not 512
    assert resolved.steps_per_epoch == steps and resolved.total_steps == 1000 * steps
    assert resolved.optim.warmup_steps == {"thesis-vicreg": 10, "thesis-clmr": 0}[name] * steps


def test_thesis_clmr_is_clmr_code() -> None:
    config = thesis_preset("thesis-clmr")
    assert (config.pretext, config.batch_size, config.contrastive.temperature) == ("contrastive", 256, 0.5)
    assert (config.optim.optimizer, config.optim.base_lr, config.optim.weight_decay) == ("adam", 3e-4, 0.0)
    pretext = build_pretext("contrastive", build_backbone("samplecnn", embed_dim=512), config.contrastive)
    assert _layers(pretext.student.projector) == [
        ("Linear", 512, 512, False),
        ("ReLU", 0, 0, False),
        ("Linear", 512, 128, False),
    ]
    schedule = learning_rate_schedule(config.optim, 3e-4, config.total_steps)
    assert {schedule(step) for step in (0, 1, config.total_steps // 2, config.total_steps)} == {3e-4}


def test_thesis_vicreg_ends_at_a_thousandth_of_the_peak() -> None:
    config = thesis_preset("thesis-vicreg")
    assert config.vicreg.projector_widths == (8192, 8192, 8192) and config.batch_size == 768
    peak = 768 / 256 * 0.2
    schedule = learning_rate_schedule(config.optim, peak, config.total_steps)
    assert schedule(0) == 0.0 and schedule(10 * 32) == pytest.approx(peak)  # 10 epochs of 32
    assert schedule(config.total_steps) == pytest.approx(peak * 0.001)


def test_absolute_final_lr_overrides_the_ratio() -> None:
    schedule = learning_rate_schedule(OptimConfig(final_lr=1e-7, final_lr_ratio=0.5), 1e-3, 100)
    assert schedule(100) == pytest.approx(1e-7)


def test_weight_decay_schedule_moves_only_the_decayed_group() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    optim = OptimConfig(optimizer="adamw", weight_decay=0.04, weight_decay_end=0.4)
    optimizer = build_optimizer(model, "adamw", 1e-4, optim.weight_decay, batch_size=256)
    schedule = weight_decay_schedule(optim, total_steps=10)
    assert schedule is not None and weight_decay_schedule(OptimConfig(weight_decay=0.1), 10) is None
    assert schedule(0) == pytest.approx(0.04) and schedule(10) == pytest.approx(0.4)
    assert schedule(5) == pytest.approx(0.22)  # half-way on the cosine
    set_weight_decay(optimizer, schedule(5))
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, pytest.approx(0.22)]
    assert optimizer.param_groups[0]["params"][0] is model[0].weight  # the weight matrix is the decayed one
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.22)


class _Embedding1024(nn.Module):
    """A stand-in backbone with the paper's 1024-d embedding (only the heads are under test)."""

    embed_dim = 1024

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _block(width_in: int, width_out: int) -> list[tuple[str, int, int, bool]]:
    """deezer Head's hidden block: Linear(bias=False) + BatchNorm1d + ReLU."""
    return [("Linear", width_in, width_out, False), ("BatchNorm1d", 0, 0, False), ("ReLU", 0, 0, False)]


@pytest.mark.parametrize("pretext", ["contrastive", "byol", "barlow_twins", "vicreg"])
def test_paper_projector_is_deezer_head_1024_1024_2048(pretext: str) -> None:
    config, _ = parse_config(["--preset", "paper", "--pretext", pretext])
    student = build_pretext(pretext, _Embedding1024(), config.pretext_config).student
    assert _layers(student.projector) == [*_block(1024, 1024), *_block(1024, 1024), ("Linear", 1024, 2048, False)]


def test_paper_clustering_head_is_deezer_head_without_normalised_bottleneck() -> None:
    config, _ = parse_config(["--preset", "paper", "--pretext", "clustering"])
    pretext = build_pretext("clustering", _Embedding1024(), config.clustering)
    head = pretext.student.projector
    expected = [*_block(1024, 1024), *_block(1024, 1024), *_block(1024, 256), ("Linear", 256, 4096, False)]
    assert _layers(head) == expected
    textbook = build_pretext("clustering", _Embedding1024(), {"projector_widths": (1024, 256)}).student.projector
    scores = textbook(torch.randn(4, 1024))
    assert scores.abs().max() <= 1.0 + 1e-6  # DINO's cosine scores stay selectable


def test_paper_losses_and_schedules_follow_deezer_defaults() -> None:
    config, _ = parse_config(["--preset", "paper"])
    assert (config.vicreg.variant, config.vicreg.invariance_weight, config.vicreg.eps) == ("deezer", 1.0, 1e-5)
    assert (config.barlow_twins.variant, config.barlow_twins.off_diagonal_weight) == ("deezer", 1.0)
    optim = config.optim
    assert (optim.weight_decay, optim.weight_decay_end, optim.final_lr, optim.warmup_steps) == (0.04, 0.4, 1e-7, 0)
    assert learning_rate_schedule(optim, 1e-4, config.total_steps)(config.total_steps) == 1e-7
    thesis, _ = parse_config(["--preset", "thesis-vicreg"])
    assert thesis.vicreg.variant == "textbook" and thesis.optim.weight_decay_end is None


def test_a_preset_recipe_applies_to_its_pretext_only_and_flags_still_win(tmp_path: Path) -> None:
    preset = tmp_path / "short.toml"
    preset.write_text("batch_size = 32\n[optim]\nbase_lr = 1e-3\n[recipes.byol.optim]\nbase_lr = 5e-4\n")
    byol, _ = parse_config(["--preset", str(preset), "--pretext", "byol"])
    assert (byol.batch_size, byol.optim.base_lr) == (32, 5e-4)
    contrastive, _ = parse_config(["--preset", str(preset), "--pretext", "contrastive"])
    assert contrastive.optim.base_lr == 1e-3
    flagged, _ = parse_config(["--preset", str(preset), "--pretext", "byol", "--optim.base-lr", "2e-3"])
    assert flagged.optim.base_lr == 2e-3
    demo = {p: parse_config(["--preset", "demo", "--pretext", p])[0] for p in ("contrastive", "byol", "clustering")}
    assert demo["byol"].byol.momentum_start == 0.99 and demo["contrastive"].byol.momentum_start == 0.996
    assert demo["clustering"].clustering.teacher_normalization == "sinkhorn"
    assert demo["contrastive"].clustering.teacher_normalization == "centering"
    preset.write_text("[recipes.simclr.optim]\nbase_lr = 1e-3\n")
    with pytest.raises(KeyError, match="unknown pretexts \\['simclr'\\]"):
        parse_config(["--preset", str(preset)])


def test_a_preset_value_outside_a_fields_choices_is_refused_with_its_place(tmp_path: Path) -> None:
    preset = tmp_path / "typo.toml"
    preset.write_text('backbone = "resnett"\n')
    with pytest.raises(ValueError, match=r"preset .*typo.toml: backbone must be one of \('resnet', 'samplecnn'\)"):
        parse_config(["--preset", str(preset)])
    preset.write_text('[recipes.vicreg.vicreg]\nvariant = "bogus"\n')
    parse_config(["--preset", str(preset), "--pretext", "byol"])  # another pretext's recipe is not applied
    with pytest.raises(ValueError, match=r"recipe vicreg\.vicreg: variant must be one of .*got 'bogus'"):
        parse_config(["--preset", str(preset), "--pretext", "vicreg"])


def test_paper_schedule_lengths_are_deezers_in_steps() -> None:
    config, _ = parse_config(["--preset", "paper", "--pretext", "clustering"])
    assert config.clustering.teacher_temperature_warmup_fraction * config.total_steps == 5120  # 10 epochs
    assert config.clustering.momentum_ramp_fraction == config.byol.momentum_ramp_fraction == 1.0  # the whole run


def test_help_lists_no_setting_that_the_backbone_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    """The crop length and the augmentation's rate come from the backbone at build time: no flag for them."""
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    text = capsys.readouterr().out
    assert "--pairs.min-gap-seconds" in text and "--augment.polarity-p" in text
    assert "crop-samples" not in text and "--augment.sample-rate" not in text


def test_gaps_given_with_views_that_ignore_them_are_refused() -> None:
    with pytest.raises(ValueError, match=r"do not apply to --pairs\.views augmented_crop"):
        TrainPairsConfig(views="augmented_crop", min_gap_seconds=1.0)
    assert TrainPairsConfig(views="augmented_crop").max_gap_seconds == 16.0  # the defaults stand, unused
    assert TrainPairsConfig(views="augmented_temporal", min_gap_seconds=1.0).min_gap_seconds == 1.0
