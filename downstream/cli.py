"""`python evaluate.py --backbone SOURCE --data SHARDS`: probe a frozen backbone on a labelled shard set.

Extracts the embeddings (cached, see `downstream.extract_task`), trains the probes of a protocol (the paper's
linear probe on track means, or the thesis' chunk-level one) on the full training split or on the limited-data
subsets, bootstraps the test metrics, logs every probe as an MLflow run (`downstream.tracking`) and prints a
table of ROC-AUC / PR-AUC mean +- std over the bootstrap, tag-wise and clip-wise.
`--random-init` evaluates the same architecture with seeded random weights: the baseline a pre-training must
beat. `--data demo` names the built-in demo corpus; only the entry point (`evaluate.py`) knows how to build it
and passes that in (`main(demo_shards=...)`): this module never picks data itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import tyro
from torch import nn

from musicssl.downstream.bootstrap import BootstrapConfig
from musicssl.downstream.evaluation import EvaluationResult, evaluate_task
from musicssl.downstream.extract_task import (
    DEFAULT_BATCH_SIZE,
    ExtractionSettings,
    default_cache_dir,
    default_device,
    extract_task,
    read_vocabulary,
    weights_hash,
)
from musicssl.downstream.limited_data import LimitedDataConfig
from musicssl.downstream.metrics import PRECISION_AT_K, PRECISION_K
from musicssl.downstream.probes import Aggregation, ProbeConfig, probe_config
from musicssl.downstream.tracking import (
    DEFAULT_EXPERIMENT,
    RANDOM_PRETEXT,
    EvaluationContext,
    log_evaluation,
    parse_params,
)
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.demo_data import DEMO_DATA
from musicssl.trainer.export import PRETEXT_KEY, RUN_ID_KEY, BackboneRecipe, export_provenance, load_backbone
from musicssl.trainer.pretexts import PRETEXTS
from musicssl.trainer.tracking import check_tracking_server, tracking_uri

DemoShards = Callable[[int], str]
"""Builds the demo shard set at a sample rate and returns its location (`trainer.demo_data.ensure_demo_shards`)."""
UNKNOWN_PRETEXT = "unknown"
TABLE_METRICS = (
    ("roc_auc_tagwise", "ROC-AUC tag"),
    ("pr_auc_tagwise", "PR-AUC tag"),
    ("roc_auc_clipwise", "ROC-AUC clip"),
    ("pr_auc_clipwise", "PR-AUC clip"),
    (PRECISION_AT_K, f"P@{PRECISION_K} tag"),
)


@dataclass(frozen=True)
class EvaluateArgs:
    """Probe a frozen backbone on a labelled shard set; log every probe to MLflow and print a summary."""

    backbone: str
    """backbone.safetensors exported by train.py, a pretrained folder (config.json + model.safetensors, from
    `python -m downstream.pretrained`), a checkpoint folder runs/.../checkpoints/step-*, or a deezer .pt checkpoint."""
    data: str
    """Labelled shard set (tags and train/valid/test splits) from `python -m data_prep`; `demo`: the built-in
    demo corpus at the backbone's sample rate, built under ./demo_data on first use."""
    task: str | None = None
    """Task name in MLflow; default: the shard set's folder name."""
    tags: Path | None = None
    """Tag vocabulary file (one tag a line, target order), e.g. tags.txt of a dataset adapter; default: the
    sorted union of the set's tags."""
    protocol: Literal["paper", "thesis", "marble"] = "paper"
    """paper: linear probe on track means, 25 x 128 steps; thesis: chunk-level probe, plateau schedule and
    early stopping; marble: MARBLE's constrained MLP (512, dropout 0.2), learning rate chosen on validation."""
    aggregate: Aggregation | None = None
    """Override the protocol's aggregation: track (train on track means) or chunk (train on windows,
    average window predictions per track)."""
    hidden_dim: int | None = None
    """Hidden width of a 2-layer MLP probe; default: the protocol's (linear for paper and thesis, 512 for marble)."""
    epochs: int | None = None
    """Override the protocol's maximum number of probe epochs."""
    steps: int | None = None
    """Override the probe steps per epoch (default: 128 for paper, one pass for thesis)."""
    limited_data: bool = False
    """Also train on 1, 5, 10, 20 and 100 % of the training tracks, 4 draws each (one run per probe)."""
    bootstrap_resamples: int = 50
    """Number of bootstrap resamples of the test set."""
    bootstrap_fraction: float = 0.5
    """Fraction of the test tracks in each resample."""
    random_init: bool = False
    """Evaluate the backbone's architecture with random weights (seeded by --seed) instead of its weights."""
    seed: int = 0
    """Seed of the random weights, the probes, the bootstrap and the limited-data draws."""
    pretext: str | None = None
    """Pretext name logged with the runs; default: the one backbone.safetensors records (else read from the
    path, runs/<study>/<pretext>/...), 'random' with --random-init."""
    experiment: str = DEFAULT_EXPERIMENT
    """MLflow experiment receiving the runs (tracking URI: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Windows per forward pass during extraction."""
    device: str = field(default_factory=default_device)
    """Torch device for extraction and probes; default cuda when available."""
    bf16: bool = False
    """bf16 autocast during extraction (CUDA only)."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    """Embedding cache folder; the same backbone, data, window and vocabulary are never extracted twice."""
    param: tuple[str, ...] = ()
    """Extra run params NAME=VALUE that sweeps and published figures need, e.g. pretrain_data=fma
    pretrain_epochs=300 batch_size=768 projector=vicreg (configs/references.toml names the settings)."""


def pretext_of(source: str, provenance: dict[str, str]) -> str:
    """The pretext an export records in its metadata; for other sources and older exports, the path's guess."""
    return provenance.get(PRETEXT_KEY) or infer_pretext(source)


def infer_pretext(source: str) -> str:
    """The pretext named by a path component (runs/<study>/<pretext>/...) or the file name, else 'unknown'."""
    path = Path(source)
    for part in reversed(path.parts):
        if part in PRETEXTS:
            return part
    return next((name for name in PRETEXTS if name in path.stem.lower()), UNKNOWN_PRETEXT)


def random_backbone(recipe: BackboneRecipe, seed: int) -> nn.Module:
    """The recipe's architecture with weights drawn from `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return recipe.build().eval()


def task_name(data: str) -> str:
    """The last component of a shard set's folder or URL."""
    return Path(data.rstrip("/")).name or "task"


def build_probe_config(args: EvaluateArgs) -> ProbeConfig:
    """The protocol's probe with the command line's overrides."""
    overrides: dict[str, object] = {"seed": args.seed, "device": args.device}
    if args.hidden_dim is not None:
        overrides["hidden_dim"] = args.hidden_dim
    if args.aggregate is not None:
        overrides["aggregation"] = args.aggregate
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    if args.steps is not None:
        overrides["steps_per_epoch"] = args.steps
    return probe_config(args.protocol, **overrides)


def format_table(results: Sequence[EvaluationResult]) -> str:
    """One line per probe: task, training fraction and draw, then each metric's bootstrap mean +- std."""
    header = ["task", "fraction", "draw", "train", *(label for _, label in TABLE_METRICS)]
    rows = [header]
    for result in results:
        means, stds = result.bootstrap.mean(), result.bootstrap.std()
        scores = [f"{means[name]:.2f} +- {stds[name]:.2f}" for name, _ in TABLE_METRICS]
        rows.append([result.task, f"{result.fraction:g}", str(result.draw), str(result.num_train_tracks), *scores])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def evaluate(args: EvaluateArgs, demo_shards: DemoShards | None = None) -> list[EvaluationResult]:
    """Extract (or reuse) the embeddings, train and score every probe, log each run; return the results.
    `demo_shards` builds the demo corpus at a sample rate for `--data demo` (given by the entry point).
    A tracking server that does not answer is an error before anything is extracted."""
    check_tracking_server(tracking_uri())
    backbone, recipe = load_backbone(args.backbone)
    if args.random_init:
        backbone = random_backbone(recipe, args.seed)
    data = args.data
    if data == DEMO_DATA:
        if demo_shards is None:
            raise ValueError("--data demo: the demo corpus is built by evaluate.py; pass a shard set here")
        data = demo_shards(backbone.sample_rate)
    name = args.task or task_name(os.fspath(data))
    vocabulary = read_vocabulary(args.tags) if args.tags is not None else None
    settings = ExtractionSettings(args.batch_size, args.device, args.bf16, args.cache_dir)
    task = extract_task(backbone, recipe, ShardSet.open(data), name, vocabulary, settings)
    provenance = {} if args.random_init else export_provenance(args.backbone)
    pretext = args.pretext or (RANDOM_PRETEXT if args.random_init else pretext_of(args.backbone, provenance))
    context = EvaluationContext(
        checkpoint=args.backbone,
        pretext=pretext,
        protocol=args.protocol,
        extra_params={
            "data": os.fspath(data),
            "backbone": recipe.name,
            "embed_dim": backbone.embed_dim,
            "random_init": args.random_init,
            "weights_sha256": weights_hash(backbone, recipe),
            "num_tags": len(task.tag_names),
            **({"pretrain_run_id": provenance[RUN_ID_KEY]} if RUN_ID_KEY in provenance else {}),
            **parse_params(args.param, "--param"),
        },
    )
    bootstrap = BootstrapConfig(args.bootstrap_fraction, args.bootstrap_resamples, args.seed)
    limited = LimitedDataConfig(seed=args.seed) if args.limited_data else None
    results = []
    for result in evaluate_task(task, build_probe_config(args), bootstrap, limited):
        log_evaluation(result, context, args.experiment)
        results.append(result)
    return results


def main(argv: list[str] | None = None, demo_shards: DemoShards | None = None) -> int:
    """Command line: evaluate, then print the summary table and where the runs went."""
    args = tyro.cli(EvaluateArgs, args=sys.argv[1:] if argv is None else argv)
    results = evaluate(args, demo_shards)
    print(format_table(results))
    print(f"{len(results)} evaluation runs logged to experiment {args.experiment!r} at {tracking_uri()}")
    return 0
