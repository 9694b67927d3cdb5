"""What one GPU-suite run measures: its sizes (FULL on a GPU, SMOKE on CPU), the section budgets, and
the `Run` every section gets."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks.gpu.measure import (
    Precision,
    write_generated_shards,
)
from musicssl.trainer.cli import parse_config
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.pretexts import PRETEXTS

SECTIONS = ("step", "memory", "samplecnn", "loader", "sync", "deepspeed", "embed")
RESULT_NAME = "gpu_suite.json"
TABLE_NAME = "gpu_suite.txt"
CARD_GIB = 12.0  # a TITAN X (Maxwell or Pascal): the paper's card class
FORMATS = ("contiguous", "channels_last")
PAPER_RATE, THESIS_RATE = 16_000, 22_050


@dataclass(frozen=True)
class Sizes:
    """Every size of one run: FULL is the real one on a GPU, SMOKE the CPU check that runs every code path."""

    paper_flags: tuple[str, ...]
    """train.py flags after `--preset paper` for every paper-preset measurement (FULL: none, the paper itself)."""
    precision: Precision
    """Of the step and samplecnn sections (FULL: bf16, what the Trainer picks on the GPU)."""
    pretexts: tuple[str, ...]
    compile_pretexts: tuple[str, ...]
    compile_formats: int
    """Memory formats compiled, the faster eager one first."""
    compile_backend: str
    memory_pretexts: tuple[str, ...]
    warmup_steps: int
    timed_steps: int
    memory_steps: int
    samplecnn: tuple[tuple[str, tuple[str, ...]], ...]
    """(thesis preset, extra train.py flags) per SampleCNN measurement."""
    loader_tracks: int
    loader_track_seconds: tuple[float, float]
    loader_shard_bytes: int
    loader_workers: tuple[int, ...]
    loader_steps: int
    small_tracks: int
    """The small shard sets of the sync and deepspeed sections."""
    small_track_seconds: tuple[float, float]
    skip_steps: int
    """Trainer steps left out of a run's figures (start-up, first batches)."""
    sync_steps: int
    deepspeed_flags: tuple[str, ...]
    deepspeed_steps: int
    deepspeed_launchers: tuple[str, ...]
    """Accelerate configs (configs/accelerate/NAME.yaml) to run the thesis VICReg preset with, in order."""
    embed_batch_sizes: tuple[int, ...] = (256,)
    """Windows per forward pass of the embed section (`python -m downstream.embed` on the small set)."""
    budgets_s: dict[str, float] = field(default_factory=dict)


FULL = Sizes(
    paper_flags=(),
    precision="bf16",
    pretexts=tuple(PRETEXTS),
    compile_pretexts=tuple(PRETEXTS),
    compile_formats=len(FORMATS),
    compile_backend="inductor",
    memory_pretexts=tuple(PRETEXTS),
    warmup_steps=3,
    timed_steps=10,
    memory_steps=2,
    samplecnn=(("thesis-vicreg", ()), ("thesis-clmr", ())),
    loader_tracks=200,
    loader_track_seconds=(180.0, 300.0),
    loader_shard_bytes=100_000_000,
    loader_workers=(4, 8, 16),
    loader_steps=200,
    small_tracks=16,
    small_track_seconds=(40.0, 60.0),
    skip_steps=20,
    sync_steps=12,
    deepspeed_flags=("--pairs.num-workers", "8"),
    deepspeed_steps=25,
    deepspeed_launchers=("deepspeed_zero2", "single_gpu"),
    embed_batch_sizes=(256, 1024),
    budgets_s={"step": 130, "memory": 30, "samplecnn": 35, "loader": 110, "sync": 20, "deepspeed": 60, "embed": 20},
)
TINY_PAIRS = ("--pairs.pair-shuffle", "8", "--pairs.track-shuffle", "2")
SMOKE = Sizes(
    paper_flags=(
        *("--resnet.width", "4", "--batch-size", "4", "--pairs.num-workers", "0", *TINY_PAIRS),
        *("--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1", "--pairs.max-gap-seconds", "2"),
    ),
    precision="fp32",  # bf16 convolutions are emulated, 10x slower, on most CPUs; the memory section runs both
    pretexts=tuple(PRETEXTS),
    compile_pretexts=("contrastive",),
    compile_formats=1,
    compile_backend="eager",  # Dynamo's tracing without Inductor's code generation: seconds, not minutes, on CPU
    memory_pretexts=("byol",),  # the one with most parts: projector, predictor, EMA teacher
    warmup_steps=1,
    timed_steps=1,
    memory_steps=1,
    samplecnn=(
        ("thesis-vicreg", ("--batch-size", "2", "--vicreg.projector-widths", "32", "32", "32")),
        ("thesis-clmr", ("--batch-size", "2")),
    ),
    loader_tracks=6,
    loader_track_seconds=(6.0, 9.0),
    loader_shard_bytes=400_000,
    loader_workers=(1,),
    loader_steps=3,
    small_tracks=3,
    small_track_seconds=(8.0, 9.0),
    skip_steps=1,
    sync_steps=3,
    deepspeed_flags=(
        *("--batch-size", "2", "--vicreg.projector-widths", "32", "32", "32", "--pairs.num-workers", "0"),
        *TINY_PAIRS,
    ),
    deepspeed_steps=3,
    deepspeed_launchers=("deepspeed_zero2", "single_gpu"),
    embed_batch_sizes=(8,),
    budgets_s=dict.fromkeys(SECTIONS, 3600.0),  # never binding: the smoke test must see every path, loaded or not
)


class Budget:
    """A section's time budget: whether a measurement expected to take `estimate` seconds may still start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, estimate: float = 0.0) -> bool:
        return self.elapsed() + estimate <= self.seconds


@dataclass
class Run:
    """What every section gets: the sizes, the device, a scratch folder, its budget, and how to log."""

    sizes: Sizes
    device: torch.device
    work: Path
    section: str = ""
    budget: Budget = field(default_factory=lambda: Budget(0.0))
    shard_sets: dict[str, str] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[{self.section} {self.budget.elapsed():5.0f} s] {message}", flush=True)

    def paper(self, *flags: str) -> TrainConfig:
        """The paper preset with the run's sizes and `flags`, as `train.py --preset paper ...` builds it."""
        return parse_config(["--preset", "paper", *self.sizes.paper_flags, *flags])[0]

    def trainer_flags(self, data: str, steps: int) -> list[str]:
        """Flags for a short Trainer run of `steps` steps on `data` in a fresh folder, MLflow off."""
        output = tempfile.mkdtemp(dir=self.work, prefix="run-")
        return [
            *("--data", data, "--epochs", "1", "--steps-per-epoch", str(steps), "--no-mlflow"),
            *("--output-dir", output, "--checkpoint.every-steps", str(10**9)),  # only the final checkpoint
        ]

    def small_shards(self, sample_rate: int) -> str:
        """A small shard set at `sample_rate`, made once per run."""
        name = f"small-{sample_rate}"
        if name not in self.shard_sets:
            directory = self.work / name
            sizes = self.sizes
            write_generated_shards(directory, sizes.small_tracks, sizes.small_track_seconds, sample_rate, 10**9)
            self.shard_sets[name] = str(directory)
        return self.shard_sets[name]
