"""Every hyperparameter of a pre-training run, as dataclasses that tyro turns into `train.py` flags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Annotated, Any, Literal

import tyro

from musicssl.sharding.read.config import PairsConfig as ReadPairsConfig
from musicssl.trainer.augment import AugmentConfig, ViewMode
from musicssl.trainer.backbones import BACKBONES
from musicssl.trainer.collapse import CollapseConfig
from musicssl.trainer.pretexts import PRETEXTS


def settings_sections(name: str, registry: Mapping[str, Any]) -> type:
    """A dataclass with one settings section per registered class, named after it and holding its `Config`
    (`--vicreg.eps` and `[vicreg]` in a preset, `--resnet.width` and `[resnet]`): a new pretext's or backbone's
    settings need no line here."""
    fields = [(key, cls.Config, field(default_factory=cls.Config)) for key, cls in registry.items()]
    return make_dataclass(name, fields, namespace={"__module__": __name__})


PretextName = Literal[tuple(PRETEXTS)]  # the registries' names, as tyro choices
BackboneName = Literal[tuple(BACKBONES)]
PretextSections = settings_sections("PretextSections", PRETEXTS)
BackboneSections = settings_sections("BackboneSections", BACKBONES)


@dataclass(frozen=True)
class TrainPairsConfig(ReadPairsConfig):
    """How anchor/positive pairs are cut and read (`sharding.read.config.PairsConfig`), and how they become views. The
    crop length is the backbone's, set when the reader is built, so it is no flag here."""

    crop_samples: tyro.conf.Suppress[int | None] = None
    min_gap_seconds: float = 4.0
    """Smallest start-to-start distance between anchor and positive, either side (temporal and augmented_temporal
    views; augmented_crop draws two independent crops)."""
    max_gap_seconds: float = 16.0
    """Largest start-to-start distance between anchor and positive (temporal and augmented_temporal views)."""

    views: Annotated[ViewMode, tyro.conf.EnumChoicesFromValues] = ViewMode.TEMPORAL
    """temporal: the pairs as they are (paper); augmented_crop: two independent crops of the track, each
    augmented, the gap settings ignored (CLMR, thesis 3.3.1); augmented_temporal: each crop of the pair augmented."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "views", ViewMode.parse(self.views))  # presets and callers may name it by value
        gaps = ("min_gap_seconds", "max_gap_seconds")
        if self.views is ViewMode.AUGMENTED_CROP and any(
            getattr(self, name) != self.__dataclass_fields__[name].default for name in gaps
        ):
            raise ValueError(
                "--pairs.min-gap-seconds and --pairs.max-gap-seconds do not apply to --pairs.views augmented_crop "
                "(two independent crops, any distance apart): leave them out, or use temporal or augmented_temporal "
                "views"
            )


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    optimizer: Literal["adamw", "adam", "lars"] = "adam"
    base_lr: float = 1e-4
    """Learning rate at batch 256; the applied rate is batch_size / 256 x base_lr."""
    weight_decay: float = 0.0
    """Weight decay of weight matrices and kernels (biases and norms are exempt); the start value when
    ``weight_decay_end`` is set."""
    weight_decay_end: float | None = None
    """Weight decay at the end of a cosine schedule from ``weight_decay`` (deezer: 0.04 -> 0.4); None: constant."""
    warmup_steps: int = 0
    warmup_epochs: int | None = None
    """Warm-up in epochs (facebookresearch/vicreg: 10); when set, it replaces ``warmup_steps`` once the epoch's
    length is known (`trainer.epochs.resolve_epochs`)."""
    final_lr_ratio: float = 0.0
    """Learning rate at the end of the cosine decay, as a fraction of the peak (1.0: a constant rate)."""
    final_lr: float | None = None
    """Learning rate at the end of the cosine decay in absolute terms (deezer's floor 1e-7); None: use
    ``final_lr_ratio``."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value (None: no clipping)."""


def require_at_least(minimum: int, **values: object) -> None:
    """Refuse a count below `minimum` (flag name -> value), naming the flag: a 0 would divide by zero later."""
    for name, value in values.items():
        if isinstance(value, int) and value < minimum:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {value} is below {minimum}: give {flag} {minimum} or more")


@dataclass
class CheckpointConfig:
    """When checkpoints are written and kept."""

    every_steps: int = 1000
    keep_last: int = 3
    keep_steps: tuple[int, ...] = ()
    """Steps whose checkpoints are never deleted (e.g. to probe convergence)."""
    keep_epochs: tuple[int, ...] = ()
    """Epochs whose end-of-epoch checkpoints are never deleted."""

    def __post_init__(self) -> None:
        require_at_least(1, **{"checkpoint.every_steps": self.every_steps})
        require_at_least(0, **{"checkpoint.keep_last": self.keep_last})


@dataclass
class MonitorConfig:
    """A cheap probe during pre-training (kNN tagging on a small labelled shard set), logged to MLflow."""

    data: str | None = None
    """Labelled shard set (tracks with tags and train/valid/test splits); None: no monitoring."""
    every_steps: int = 1000


@dataclass
class TrainConfig(BackboneSections, PretextSections):
    """A pre-training run: `train.py --preset paper --pretext vicreg` then any flag to override the preset."""

    pretext: PretextName = "contrastive"
    backbone: BackboneName = "resnet"
    """The network whose embeddings are the product; its settings are its section (`--resnet.width`, `[resnet]`)."""
    data: str | None = None
    """Shard set: a folder, an http(s) base URL or a `{}` template (`pipe:` commands too); `demo`: the built-in
    demo corpus, built under ./demo_data on first use (the demo preset sets it). Required."""
    study: str = "demo"
    """MLflow experiment the run belongs to (one per study)."""
    run_name: str | None = None
    """MLflow run name; default: `<pretext>-<backbone>`."""
    output_dir: str = "runs/{study}/{pretext}"
    """Checkpoints and exports go here; `{study}` and `{pretext}` are filled in."""
    epochs: int = 1000
    steps_per_epoch: int | Literal["pass"] = 512
    """Optimiser steps per epoch (the paper: 512); "pass": one pass over the training tracks (the thesis), counted
    at start: training tracks x pairs_per_track // batch_size."""
    batch_size: int = 256
    """Pairs per optimiser step over all processes (global batch)."""
    grad_accum: int = 1
    """Micro-batches per optimiser step, each of batch_size / (processes x grad_accum) pairs per process."""
    precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """auto: bf16 on GPUs that have it, fp16 with loss scaling on older GPUs, fp32 on CPU."""
    seed: int = 0
    log_every: int = 10
    diagnostics_every: int = 100
    max_nonfinite: int = 20
    """Stop with an error after this many consecutive non-finite losses (each one is skipped)."""
    stop_on_collapse: bool = False
    """Stop when the collapse alarm fires (checkpoint saved, no export, exit code 3); default: warn, train on."""
    collapse: CollapseConfig = field(default_factory=CollapseConfig)
    mlflow: bool = True
    pairs: TrainPairsConfig = field(default_factory=TrainPairsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        counts = {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch, "batch_size": self.batch_size}
        counts |= {"grad_accum": self.grad_accum, "log_every": self.log_every, "max_nonfinite": self.max_nonfinite}
        require_at_least(1, diagnostics_every=self.diagnostics_every, **counts)

    @property
    def total_steps(self) -> int:
        if self.steps_per_epoch == "pass":
            raise ValueError("steps_per_epoch 'pass' is counted from the data first: trainer.epochs.resolve_epochs")
        return self.epochs * self.steps_per_epoch

    @property
    def pretext_config(self) -> object:
        return getattr(self, self.pretext)

    @property
    def backbone_config(self) -> object:
        return getattr(self, self.backbone)

    def resolved_output_dir(self) -> str:
        return self.output_dir.format(study=self.study, pretext=self.pretext)
