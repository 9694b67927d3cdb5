"""How the GPU suite (benchmarks/gpu_suite.py) measures: one optimiser step in plain PyTorch on fixed random
pairs, and a whole `Trainer` run on shards with its data wait, GPU utilisation (nvidia-smi) and host
synchronisations per step."""

from __future__ import annotations

import contextlib
import gc
import itertools
import shutil
import statistics
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from benchmarks.step_timing import median_step_seconds, training_parts
from benchmarks.trainer_overhead import StepClock
from musicssl.sharding.format import TrackMeta
from musicssl.sharding.writer import ShardSetWriter
from musicssl.trainer.augment import make_views
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.loop import Trainer
from musicssl.trainer.pretexts import Pretext
from musicssl.trainer.run_parts import view_chain

Precision = Literal["bf16", "fp16", "fp32"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
GIB = 2**30
SYNC_WARNING = "synchronizing CUDA operation"
"""What torch.cuda.set_sync_debug_mode("warn") says at every host synchronisation."""
ROOT = Path(__file__).resolve().parents[2]


def release_memory(compiled: bool = False) -> None:
    """Free what a finished measurement left: Python garbage, cached device memory, Dynamo's compiled code."""
    if compiled:
        torch._dynamo.reset()  # else every new backbone adds a cache entry until Dynamo's limit falls back to eager
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only), so a host clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device, reserved: bool = False) -> float | None:
    """Peak memory the caching allocator handed out (or held, `reserved`) since the last reset; None off CUDA."""
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_reserved(device) if reserved else torch.cuda.max_memory_allocated(device)
    return peak / GIB


def cuda_context_gib(device: torch.device) -> float | None:
    """Device memory in use beyond what PyTorch's allocator holds (CUDA context, libraries); None off CUDA."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return (total - free - torch.cuda.memory_reserved(device)) / GIB


def compile_backbones(pretext: Pretext, backend: str) -> int:
    """torch.compile, in place, every copy of the backbone in `pretext` (student and EMA teacher); how many.

    The backbone is the step's compute and the same graph for every pretext, so compiled code is reused across
    pretexts from Inductor's cache; the heads stay eager (matrix products that cuBLAS runs either way).
    """
    kind = type(pretext.student.backbone)
    copies = [module for module in pretext.modules() if isinstance(module, kind)]
    for module in copies:
        module.compile(backend=backend)
    return len(copies)


class TrainingStep:
    """One optimiser step of `config` on fixed random pairs, in plain PyTorch: the Trainer's step without the
    loader or Accelerate (views, autocast forward and loss, backward, optimiser, EMA teacher), fp16 with a
    GradScaler, fp32 without autocast, optionally channels_last and with compiled backbones."""

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        precision: Precision = "bf16",
        channels_last: bool = False,
        compile_backend: str | None = None,
    ) -> None:
        self.config, self.device = config, device
        self.pretext, self.optimizer = training_parts(config, device)
        if channels_last:
            self.pretext.to(memory_format=torch.channels_last)
        self.compiled = compile_backbones(self.pretext, compile_backend) if compile_backend else 0
        self.dtype = DTYPES[precision]
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        backbone = self.pretext.student.backbone
        self.chain = view_chain(config, backbone)
        self.generator = torch.Generator(device).manual_seed(config.seed)
        shape = (config.batch_size, 2, backbone.num_samples)
        self.pairs = 0.1 * torch.randn(shape, device=device, generator=self.generator)
        self.steps = 0

    def views(self) -> torch.Tensor:
        """The two views of every pair: the pairs as they are, or augmented by the chain on the device."""
        return make_views(self.pairs, self.config.pairs.views, self.chain, self.generator)

    def __call__(self) -> None:
        """Run one step."""
        views = self.views()
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            loss = self.pretext.compute_loss(views).loss
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.pretext.after_optimizer_step(self.steps, self.config.total_steps)
        self.steps += 1


def time_training_step(step: TrainingStep, warmup: int, repeats: int) -> dict[str, Any]:
    """First step's time (compilation, allocation), then median s/step after `warmup` steps, pairs/s, peak GiB."""
    device = step.device
    reset_peak_memory(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    first = time.perf_counter() - start
    seconds = median_step_seconds(step, repeats, device, warmup=max(0, warmup - 1))
    return {
        "first_step_s": first,
        "seconds_per_step": seconds,
        "pairs_per_s": step.config.batch_size / seconds,
        "peak_memory_gib": peak_memory_gib(device),
    }


def write_generated_shards(
    directory: Path, tracks: int, seconds: tuple[float, float], sample_rate: int, shard_bytes: int, seed: int = 0
) -> dict[str, Any]:
    """A shard set of generated tracks (quiet noise, lengths uniform in `seconds`) made by the real shard writer.

    The loader's speed depends on bytes and track lengths, not on the music, so noise is enough and fast to make.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(*seconds, size=tracks)
    start = time.perf_counter()
    with ShardSetWriter.open(directory, sample_rate, "none", shard_size=shard_bytes) as writer:
        for number, length in enumerate(lengths):
            key = f"track{number:06d}"
            pcm = rng.integers(-3000, 3000, size=round(length * sample_rate), dtype=np.int16)
            meta = TrackMeta(key, f"generated/{key}", len(pcm) / sample_rate, sample_rate, len(pcm))
            writer.add(key, pcm, meta, None)
    shards = writer.index.shards
    return {
        "tracks": tracks,
        "sample_rate": sample_rate,
        "hours": float(lengths.sum() / 3600),
        "shards": len(shards),
        "gib": sum(s.bytes for s in shards) / GIB,
        "write_s": time.perf_counter() - start,
    }


class TimedBatches:
    """The Trainer's batch iterator, adding up the host time spent waiting in `next`: the step's data wait."""

    def __init__(self, batches: Iterator[torch.Tensor]) -> None:
        self.batches = batches
        self.waited = 0.0

    def __iter__(self) -> TimedBatches:
        return self

    def __next__(self) -> torch.Tensor:
        start = time.perf_counter()
        batch = next(self.batches)
        self.waited += time.perf_counter() - start
        return batch


class RunClock(StepClock):
    """A never-due StepHook that stamps each step's end with the data wait and the warnings caught so far."""

    def __init__(self, batches: TimedBatches, caught: Sequence[warnings.WarningMessage]) -> None:
        super().__init__()
        self.batches, self.caught = batches, caught
        self.waited: list[float] = []
        self.warnings_seen: list[int] = []

    def tick(self) -> None:
        super().tick()
        self.waited.append(self.batches.waited)
        self.warnings_seen.append(len(self.caught))


class GpuSampler:
    """GPU utilisation read by `nvidia-smi` every `interval_ms` in a background process, with host timestamps."""

    def __init__(self, interval_ms: int = 200) -> None:
        self.interval_ms = interval_ms
        self.samples: list[tuple[float, float]] = []
        self.unavailable: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi") is None:
            self.unavailable = "nvidia-smi is not on the PATH"
            return self
        command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        self.process = subprocess.Popen(
            [*command, "-lms", str(self.interval_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append((time.perf_counter(), float(line.split(",")[0])))

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=10)

    def summary(self, start: float, end: float) -> dict[str, Any]:
        """Mean utilisation over the samples taken between two host times, or why there are none."""
        if self.unavailable is not None:
            return {"skipped": self.unavailable}
        inside = [value for stamp, value in self.samples if start <= stamp <= end]
        mean = statistics.fmean(inside) if inside else None
        return {"mean_percent": mean, "samples": len(inside), "interval_ms": self.interval_ms}


@contextlib.contextmanager
def sync_debug(enabled: bool) -> Iterator[None]:
    """Inside: torch.cuda.set_sync_debug_mode("warn"), a warning at every host synchronisation; off after."""
    if not enabled:
        yield
        return
    torch.cuda.set_sync_debug_mode("warn")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def sync_summary(caught: Sequence[warnings.WarningMessage], warnings_seen: Sequence[int]) -> dict[str, Any]:
    """Host synchronisations of each step and the source lines that made them (from the caught warnings)."""
    is_sync = [SYNC_WARNING in str(item.message) for item in caught]
    bounds = [0, *warnings_seen]
    per_step = [sum(is_sync[low:high]) for low, high in itertools.pairwise(bounds)]
    where = Counter(
        f"{location(item.filename)}:{item.lineno}" for item, sync in zip(caught, is_sync, strict=True) if sync
    )
    return {"per_step": per_step, "median_per_step": statistics.median(per_step), "where": dict(where.most_common(8))}


def location(filename: str) -> str:
    """A file name relative to the repository when it is inside it."""
    path = Path(filename)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else filename


def measure_run(config: TrainConfig, skip: int, count_syncs: bool = False) -> dict[str, Any]:
    """Run `Trainer(config)` to its end and measure its steps after the first `skip` (>= 1: start-up): pairs/s end
    to end, the share of that time spent waiting for data, GPU utilisation, peak memory; host syncs per step if
    asked (CUDA only)."""
    trainer = Trainer(config)
    device = trainer.accelerator.device
    batches = TimedBatches(trainer.batches)
    trainer.batches = batches
    reset_peak_memory(device)
    with warnings.catch_warnings(record=True) as caught, GpuSampler() as gpu, sync_debug(count_syncs):
        warnings.simplefilter("always")
        clock = RunClock(batches, caught)
        trainer.hooks.append(clock)
        trainer.run()
    stamps = clock.stamps
    if not 1 <= skip < len(stamps):
        raise ValueError(f"{len(stamps)} steps ran: skip must be at least 1 and leave steps to time, got {skip}")
    start, end, timed = stamps[skip - 1], stamps[-1], len(stamps) - skip
    result = {
        "steps": len(stamps),
        "timed_steps": timed,
        "device": str(device),
        "precision": trainer.accelerator.mixed_precision,
        "seconds_per_step": (end - start) / timed,
        "pairs_per_s": config.batch_size * timed / (end - start),
        "data_wait_fraction": (clock.waited[-1] - clock.waited[skip - 1]) / (end - start),
        "gpu_utilisation": gpu.summary(start, end),
        "peak_memory_gib": peak_memory_gib(device),
    }
    if count_syncs:
        result["syncs"] = sync_summary(caught, clock.warnings_seen)
    return result
