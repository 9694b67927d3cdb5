"""Overhead of the training loop (`trainer.loop.train`) over a bare PyTorch loop on the same model and data.

Both loops build the same backbone, pretext and optimiser from one `TrainConfig` and draw the same batches
(`trainer.run_parts.ResumablePairs`, i.e. `sharding.read.chooser.open_pairs` with the same `TrainPairsConfig`) from a
small synthetic shard set. The bare loop is forward, backward, optimiser step: no Accelerate, checkpoints, logging or
progress bar. The trainer runs with checkpoints far apart (only the final one) and MLflow off, or on (sqlite
in a temporary folder, default `log_every`). Both loops stamp the clock after every step (the trainer
through a `StepHook`); steady-state s/step is (t[N] - t[k]) / (N - k), which leaves out start-up, the first
`k` steps and the final checkpoint but keeps periodic work such as logging every `log_every` steps. Variants
are interleaved in every repeat (A B C ... A B C ...) so the machine's load falls on all of them alike;
overhead is the median over repeats of trainer s/step / bare s/step with the same number of loader workers.
Both loops run in fp32 on the device Accelerate picks (the GPU when there is one); `diagnostics_every`
(100) is beyond the measured steps, so collapse diagnostics are not in the figures.

    .venv/bin/python -m benchmarks.trainer_overhead          # table
    .venv/bin/python -m benchmarks.trainer_overhead --json   # machine-readable
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import tyro

from benchmarks.harness import emit_report, print_table
from benchmarks.step_timing import training_parts
from musicssl.sharding.layout import PCM_LAYOUT
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.backbones.resnet import ResNetConfig
from musicssl.trainer.config import CheckpointConfig, PretextName, TrainConfig, TrainPairsConfig
from musicssl.trainer.loop import train
from musicssl.trainer.run_parts import ResumablePairs, reader_pairs
from tests.support.shard_factory import write_shard_set

RATE = 16_000


@dataclass
class Args:
    """Benchmark settings."""

    pretext: PretextName = "contrastive"
    width: int = 16  # ResNet width (16 = the paper)
    crop_seconds: float = 2.0
    batch_size: int = 16
    warmup_steps: int = 5  # k: steps left out of the steady state
    steps: int = 50  # N
    repeats: int = 5
    tracks: int = 16  # synthetic tracks of `track_seconds` each
    track_seconds: float = 30.0
    json: bool = False


@dataclass
class Variant:
    """One way of running the same training steps."""

    name: str
    trainer: bool
    mlflow: bool
    num_workers: int


@dataclass
class Result:
    """Steady-state seconds per step of one variant over the repeats, and its overhead over the bare loop."""

    variant: str
    seconds_per_step: list[float]
    median: float
    spread: float  # max - min over repeats
    overhead: float | None  # median over repeats of (s/step / bare s/step) - 1, same loader workers
    overhead_range: tuple[float, float] | None


@dataclass
class Report:
    """Settings, machine and results of one benchmark run."""

    settings: Args
    threads: int
    cpu_count: int | None
    load_average: tuple[float, float, float]
    results: list[Result]


VARIANTS = (
    Variant("bare loop, 0 workers", trainer=False, mlflow=False, num_workers=0),
    Variant("train(), MLflow off, 0 workers", trainer=True, mlflow=False, num_workers=0),
    Variant("train(), MLflow sqlite, 0 workers", trainer=True, mlflow=True, num_workers=0),
    Variant("bare loop, 1 worker", trainer=False, mlflow=False, num_workers=1),
    Variant("train(), MLflow off, 1 worker", trainer=True, mlflow=False, num_workers=1),
)


def make_shards(directory: Path, tracks: int, seconds: float) -> str:
    """A shard set of a few partials plus noise per track (content does not change the step time)."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * RATE)) / RATE
    waves = []
    for _ in range(tracks):
        wave = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 2000, size=3)) / 3
        waves.append(((wave + 0.05 * rng.standard_normal(t.size)) * 20000).astype(np.int16))
    write_shard_set(directory, waves, RATE, tracks_per_shard=4)
    return str(directory)


def base_config(args: Args, data: str) -> TrainConfig:
    """The run both loops do; `epochs` x `steps_per_epoch` is set per measurement."""
    return TrainConfig(
        pretext=args.pretext,
        study="trainer-overhead",
        batch_size=args.batch_size,
        precision="no",
        data=data,
        pairs=TrainPairsConfig(
            crop_seconds=args.crop_seconds,
            min_gap_seconds=args.crop_seconds,
            max_gap_seconds=4 * args.crop_seconds,
            track_shuffle=16,
            pair_shuffle=256,
        ),
        resnet=ResNetConfig(width=args.width),
        checkpoint=CheckpointConfig(every_steps=10**9),
    )


class StepClock:
    """A `StepHook` that only records when each step ended; it never runs, so it adds no work."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    def due(self, step: int) -> bool:
        self.tick()
        return False

    def __call__(self, step: int, backbone: torch.nn.Module) -> dict[str, float]:
        raise AssertionError("StepClock is never due")


def bare_loop(config: TrainConfig, clock: StepClock) -> None:
    """The same steps as `train(config)` in plain PyTorch: forward, backward, optimiser step."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # Accelerate's choice
    pretext, optimizer = training_parts(config, device)
    assert config.data is not None
    pairs = reader_pairs(config, pretext.student.backbone.num_samples)
    batches = ResumablePairs(ShardSet.open(config.data), pairs, config, config.batch_size, 0, 1)
    pretext.student.train()
    for step, views in zip(range(config.total_steps), batches.from_position([0, 0]), strict=False):
        pairs = PCM_LAYOUT.to_model_input(views.to(device, non_blocking=True))
        pretext.compute_loss(pairs, pretext.student).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pretext.after_optimizer_step(step, config.total_steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        clock.tick()


def seconds_per_step(variant: Variant, config: TrainConfig, args: Args, scratch: Path) -> float:
    """Steady-state seconds per step of one run of `args.steps` steps (one epoch)."""
    config = replace(
        config,
        epochs=1,
        steps_per_epoch=args.steps,
        mlflow=variant.mlflow,
        output_dir=tempfile.mkdtemp(dir=scratch, prefix="run-"),
        pairs=replace(config.pairs, num_workers=variant.num_workers),
    )
    clock = StepClock()
    if variant.trainer:
        train(config, hook_factories=[lambda backbone: clock])
    else:
        bare_loop(config, clock)
    stamps = clock.stamps
    return (stamps[-1] - stamps[args.warmup_steps - 1]) / (len(stamps) - args.warmup_steps)


def measure(args: Args) -> Report:
    """Every variant's s/step per repeat, the variants interleaved."""
    if not 0 < args.warmup_steps < args.steps:
        raise ValueError("need 0 < --warmup-steps < --steps")
    per_step: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="trainer_overhead_") as tmp:
        scratch = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
        config = base_config(args, make_shards(scratch / "shards", args.tracks, args.track_seconds))
        for _ in range(args.repeats):
            for variant in VARIANTS:
                per_step[variant.name].append(seconds_per_step(variant, config, args, scratch))
    results = []
    for variant in VARIANTS:
        seconds = per_step[variant.name]
        bare = next(v for v in VARIANTS if not v.trainer and v.num_workers == variant.num_workers)
        ratios = [s / b - 1 for s, b in zip(seconds, per_step[bare.name], strict=True)]
        results.append(
            Result(
                variant=variant.name,
                seconds_per_step=seconds,
                median=statistics.median(seconds),
                spread=max(seconds) - min(seconds),
                overhead=statistics.median(ratios) if variant.trainer else None,
                overhead_range=(min(ratios), max(ratios)) if variant.trainer else None,
            )
        )
    return Report(args, torch.get_num_threads(), os.cpu_count(), os.getloadavg(), results)


def print_report(report: Report) -> None:
    """The results as a fixed-width table."""
    args = report.settings
    print(
        f"{args.pretext}, ResNet width {args.width}, {args.crop_seconds:g} s crops, batch {args.batch_size}; "
        f"s/step = (t[{args.steps}] - t[{args.warmup_steps}]) / {args.steps - args.warmup_steps}, "
        f"{args.repeats} repeats, {report.threads} threads, load average {report.load_average[0]:.1f}"
    )
    rows = []
    for row in report.results:
        overhead, span = "", ""
        if row.overhead is not None and row.overhead_range is not None:
            low, high = row.overhead_range
            overhead, span = f"{row.overhead:+.1%}", f"{low:+.1%}..{high:+.1%}"
        rows.append((row.variant, row.median, row.spread, overhead, span))
    header = ("variant", "s/step median", "spread", "overhead", "range")
    print_table(header, rows, ("36", "13.4f", "8.4f", ">9", ">17"), header_specs=("36", ">13", ">8", ">9", ">17"))


def main() -> None:
    """Parse the command line, measure and print a table or JSON."""
    args = tyro.cli(Args)
    emit_report(measure(args), args.json, print_report)


if __name__ == "__main__":
    main()
