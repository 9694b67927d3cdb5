"""Every GPU figure of docs/benchmarks.md in one run on one GPU (< 8 minutes on an H200): a table and JSON.

    python -m benchmarks.gpu_suite --out results/                     # the real run (CUDA)
    python -m benchmarks.gpu_suite --out results/ --only step,memory  # a subset of the sections
    python -m benchmarks.gpu_suite --smoke --out /tmp/smoke           # tiny sizes, CPU, under a minute

Sections, in this order:
  step       paper ResNet training step (width 16, 4 s, 256 pairs, paper projector), each pretext in bf16:
             contiguous / channels_last, eager / torch.compile (compile time apart), median after a warm-up
  memory     peak memory of that step per pretext in bf16 and in fp16 with loss scaling; fits a 12 GiB card?
  samplecnn  thesis presets: VICReg at 768 pairs (8192-8192-8192), CLMR at 256, the augmentation chain on the
             device and its share of the step
  loader     the Trainer (`train.py --preset paper`) on shards of generated 3-5 minute tracks written here, with
             4, 8 and 16 loader workers, each reader: pairs/s end to end, data-wait share, GPU utilisation
  sync       host synchronisations per step of the Trainer under torch.cuda.set_sync_debug_mode("warn")
  deepspeed  the thesis VICReg preset through `accelerate launch` with DeepSpeed ZeRO-2 (if it imports), then
             with the plain one-GPU config
Each section fails soft (its error goes into the JSON and the next one runs), starts no new measurement once
its time budget (`--budget NAME=SECONDS`) is spent and lists what it skipped; the JSON is rewritten after each.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu_measure import (
    GIB,
    Precision,
    TrainingStep,
    cuda_context_gib,
    measure_run,
    peak_memory_gib,
    reset_peak_memory,
    synchronize,
    time_training_step,
    write_generated_shards,
)
from benchmarks.harness import aligned_lines
from benchmarks.step_timing import median_step_seconds
from trainer.cli import parse_config
from trainer.config import TrainConfig
from trainer.pretexts import PRETEXTS
from trainer.tracking import git_commit

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("step", "memory", "samplecnn", "loader", "sync", "deepspeed")
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
    budgets_s={"step": 130, "memory": 30, "samplecnn": 35, "loader": 110, "sync": 20, "deepspeed": 60},
)
TINY_PAIRS = ("--pairs.pair-shuffle", "8", "--pairs.track-shuffle", "2")
SMOKE = Sizes(
    paper_flags=(
        *("--model.width", "4", "--batch-size", "4", "--pairs.num-workers", "0", *TINY_PAIRS),
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


def release_memory(compiled: bool = False) -> None:
    """Free what a finished measurement left: Python garbage, cached device memory, Dynamo's compiled code."""
    if compiled:
        torch._dynamo.reset()  # else every new backbone adds a cache entry until Dynamo's limit falls back to eager
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def dynamo_counts() -> tuple[int, int]:
    """Graphs Dynamo compiled and graph breaks it met in this process so far (is a compiled row really compiled,
    and in how many pieces)."""
    counters = torch._dynamo.utils.counters
    return int(counters["stats"]["unique_graphs"]), sum(counters["graph_break"].values())


def step_section(run: Run) -> dict[str, Any]:
    """Paper ResNet step for each pretext x memory format, eager then compiled (the faster format first)."""
    sizes, base = run.sizes, run.paper()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    cost: dict[bool, float] = {}

    def measure(pretext: str, memory_format: str, compiled: bool) -> None:
        setting = {"pretext": pretext, "memory_format": memory_format, "compiled": compiled}
        if not run.budget.allows(cost.get(compiled, 0.0)):
            skipped.append({**setting, "reason": "time budget spent"})
            return
        start, (graphs, breaks) = time.perf_counter(), dynamo_counts()
        step = TrainingStep(
            dataclasses.replace(base, pretext=pretext),
            run.device,
            sizes.precision,
            channels_last=memory_format == "channels_last",
            compile_backend=sizes.compile_backend if compiled else None,
        )
        row = {**setting, **time_training_step(step, sizes.warmup_steps, sizes.timed_steps)}
        if compiled:
            row["compile_s"] = row["first_step_s"] - row["seconds_per_step"]
            graphs_now, breaks_now = dynamo_counts()
            row |= {"graphs_compiled": graphs_now - graphs, "graph_breaks": breaks_now - breaks}
        del step
        release_memory(compiled)
        rows.append(row)
        cost[compiled] = time.perf_counter() - start
        run.log(f"{pretext} {memory_format} compiled={compiled}: {row['pairs_per_s']:.0f} pairs/s")

    for memory_format in FORMATS:
        for pretext in sizes.pretexts:
            measure(pretext, memory_format, compiled=False)
    for memory_format in formats_by_speed(rows)[: sizes.compile_formats]:
        for pretext in sizes.compile_pretexts:
            measure(pretext, memory_format, compiled=True)
    return {
        "precision": sizes.precision,
        "pairs": base.batch_size,
        "compile_backend": sizes.compile_backend,
        "rows": rows,
        "skipped": skipped,
        "best": best_settings(rows),
    }


def formats_by_speed(rows: list[dict[str, Any]]) -> list[str]:
    """Memory formats, the one with the higher summed eager pairs/s first."""
    speed = {fmt: sum(r["pairs_per_s"] for r in rows if r["memory_format"] == fmt) for fmt in FORMATS}
    return sorted(FORMATS, key=lambda fmt: -speed[fmt])


def best_settings(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pretext, the fastest setting measured and its speed-up over today's default (contiguous, eager)."""
    best = {}
    for pretext in dict.fromkeys(r["pretext"] for r in rows):
        own = [r for r in rows if r["pretext"] == pretext]
        fastest = max(own, key=lambda r: r["pairs_per_s"])
        default = next(r for r in own if r["memory_format"] == "contiguous" and not r["compiled"])
        best[pretext] = {
            "memory_format": fastest["memory_format"],
            "compiled": fastest["compiled"],
            "pairs_per_s": fastest["pairs_per_s"],
            "speedup_over_default": fastest["pairs_per_s"] / default["pairs_per_s"],
        }
    return best


def memory_section(run: Run) -> dict[str, Any]:
    """Peak memory of the paper step per pretext in bf16 and in fp16 with loss scaling (a TITAN X has no bf16)."""
    base, rows, skipped = run.paper(), [], []
    for pretext in run.sizes.memory_pretexts:
        for precision in ("bf16", "fp16"):
            if not run.budget.allows():
                skipped.append({"pretext": pretext, "precision": precision, "reason": "time budget spent"})
                continue
            step = TrainingStep(dataclasses.replace(base, pretext=pretext), run.device, precision)
            reset_peak_memory(run.device)
            start = time.perf_counter()
            for _ in range(run.sizes.memory_steps):
                step()
            synchronize(run.device)
            rows.append(
                {
                    "pretext": pretext,
                    "precision": precision,
                    "seconds_per_step": (time.perf_counter() - start) / run.sizes.memory_steps,
                    "peak_allocated_gib": peak_memory_gib(run.device),
                    "peak_reserved_gib": peak_memory_gib(run.device, reserved=True),
                    "loss_scale": None if step.scaler is None else step.scaler.get_scale(),
                }
            )
            del step
            release_memory()
            run.log(f"{pretext} {precision}: peak {rows[-1]['peak_allocated_gib']} GiB")
    context = cuda_context_gib(run.device)
    for row in rows:
        peak = row["peak_allocated_gib"]
        row[f"fits_{CARD_GIB:g}_gib"] = None if peak is None or context is None else peak + context <= CARD_GIB
    return {
        "pairs": base.batch_size,
        "card_gib": CARD_GIB,
        "cuda_context_gib": context,
        "note": None if context is not None else "peak memory is read from the CUDA allocator: none on this device",
        "rows": rows,
        "skipped": skipped,
    }


def samplecnn_section(run: Run) -> dict[str, Any]:
    """Thesis presets on SampleCNN with the augmentation chain on the device: pairs/s, chain share, peak memory."""
    rows, skipped = [], []
    for preset, flags in run.sizes.samplecnn:
        if not run.budget.allows():
            skipped.append({"preset": preset, "reason": "time budget spent"})
            continue
        # synthetic pairs have no tracks to count an epoch of one pass over: a fixed one (it only places schedules)
        config = parse_config(["--preset", preset, "--steps-per-epoch", "1", *flags])[0]
        step = TrainingStep(config, run.device, run.sizes.precision)
        timing = time_training_step(step, run.sizes.warmup_steps, run.sizes.timed_steps)
        augment_s = median_step_seconds(step.views, run.sizes.timed_steps, run.device)
        rows.append(
            {
                "preset": preset,
                "pretext": config.pretext,
                "pairs": config.batch_size,
                "projector": list(config.pretext_config.projector_widths),
                "views": config.pairs.views,
                **timing,
                "augment_s": augment_s,
                "augment_share": augment_s / timing["seconds_per_step"],
            }
        )
        del step
        release_memory()
        run.log(f"{preset}: {rows[-1]['pairs_per_s']:.1f} pairs/s, chain {rows[-1]['augment_share']:.1%} of a step")
    return {"precision": run.sizes.precision, "rows": rows, "skipped": skipped}


READERS = ("stream", "random_access")  # both pair readers, side by side


def loader_section(run: Run) -> dict[str, Any]:
    """The Trainer on generated shards with each worker count and reader: does the loader keep the GPU busy?"""
    sizes = run.sizes
    shards = run.work / "loader-shards"
    data = write_generated_shards(
        shards, sizes.loader_tracks, sizes.loader_track_seconds, PAPER_RATE, sizes.loader_shard_bytes
    )
    run.log(f"wrote {data['tracks']} tracks, {data['gib']:.2f} GiB in {data['shards']} shards")
    rows, skipped, cost = [], [], 0.0
    for workers in sizes.loader_workers:
        for reader in READERS:
            if not run.budget.allows(cost):
                skipped.append({"reader": reader, "workers": workers, "reason": "time budget spent"})
                continue
            start = time.perf_counter()
            flags = ["--pairs.num-workers", str(workers), "--pairs.reader", reader]
            config = run.paper(*run.trainer_flags(str(shards), sizes.loader_steps), *flags)
            rows.append({"reader": reader, "workers": workers, **measure_run(config, sizes.skip_steps)})
            release_memory()
            cost = time.perf_counter() - start
            run.log(f"{reader}, {workers} workers: {rows[-1]['pairs_per_s']:.0f} pairs/s")
    return {"data": data, "readers": list(READERS), "rows": rows, "skipped": skipped}


def sync_section(run: Run) -> dict[str, Any]:
    """Host synchronisations in each step of the Trainer on the paper preset (the loop promises one per step)."""
    config = run.paper(*run.trainer_flags(run.small_shards(PAPER_RATE), run.sizes.sync_steps))
    cuda = run.device.type == "cuda"
    result = measure_run(config, skip=1, count_syncs=cuda)
    if not cuda:
        result["syncs"] = {"skipped": "torch.cuda.set_sync_debug_mode needs a CUDA device"}
    return {"mode": "warn", "log_every": config.log_every, **result}


def launcher_unavailable(launcher: str, device: torch.device) -> str | None:
    """Why `launcher` cannot run here, or None."""
    if launcher != "deepspeed_zero2":
        return None
    if importlib.util.find_spec("deepspeed") is None:
        return "DeepSpeed is not installed: carry its wheel (make gpu-wheels) or pip install -e '.[deepspeed]'"
    if device.type != "cuda":
        return "DeepSpeed ZeRO-2 needs a CUDA device"
    return None


def deepspeed_section(run: Run) -> dict[str, Any]:
    """The thesis VICReg preset through `accelerate launch` under each launcher config, one process."""
    sizes = run.sizes
    rows, skipped, cost = [], [], 0.0
    for launcher in sizes.deepspeed_launchers:
        reason = launcher_unavailable(launcher, run.device)
        if reason is None and not run.budget.allows(cost):
            reason = "time budget spent"
        if reason is not None:
            skipped.append({"launcher": launcher, "reason": reason})
            continue
        start = time.perf_counter()
        data = run.small_shards(THESIS_RATE)
        flags = ["--preset", "thesis-vicreg", *run.trainer_flags(data, sizes.deepspeed_steps), *sizes.deepspeed_flags]
        try:
            rows.append({"launcher": launcher, **launch_worker(launcher, flags, sizes.skip_steps, run)})
            run.log(f"{launcher}: {rows[-1]['pairs_per_s']:.1f} pairs/s")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            skipped.append({"launcher": launcher, "reason": f"failed: {error}"})
            run.log(f"{launcher} failed: {error}")
        cost = time.perf_counter() - start
    return {"preset": "thesis-vicreg", "processes": 1, "rows": rows, "skipped": skipped}


def launch_worker(launcher: str, flags: list[str], skip: int, run: Run) -> dict[str, Any]:
    """`accelerate launch` this script as a training worker with configs/accelerate/<launcher>.yaml; its figures."""
    result = Path(tempfile.mkdtemp(dir=run.work, prefix="worker-")) / "result.json"
    config = ROOT / "configs" / "accelerate" / f"{launcher}.yaml"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    command += [
        "--num_processes",
        "1",
        "--module",
        "benchmarks.gpu_suite",
        "--train-worker",
        str(result),
        "--skip-steps",
        str(skip),
        "--",
    ]
    timeout = max(run.budget.seconds - run.budget.elapsed(), 0) + 120
    done = subprocess.run([*command, *flags], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode or not result.exists():
        raise RuntimeError(f"exit status {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    return json.loads(result.read_text())


SECTION_RUNNERS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "step": step_section,
    "memory": memory_section,
    "samplecnn": samplecnn_section,
    "loader": loader_section,
    "sync": sync_section,
    "deepspeed": deepspeed_section,
}


def run_section(name: str, run: Run) -> dict[str, Any]:
    """One section with its budget; an error is recorded with its traceback instead of stopping the suite."""
    run.section, run.budget = name, Budget(run.sizes.budgets_s[name])
    run.log(f"start (budget {run.budget.seconds:g} s)")
    try:
        result = {"status": "ok", **SECTION_RUNNERS[name](run)}
    except Exception as error:  # fail soft: the next section still runs
        result = {"status": "error", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    release_memory()
    result["seconds"] = run.budget.elapsed()
    run.log(f"{result['status']} in {result['seconds']:.0f} s")
    return result


def machine(device: torch.device) -> dict[str, Any]:
    """The machine and software the figures come from."""
    info: dict[str, Any] = {
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info |= {"gpu": properties.name, "gpu_memory_gib": properties.total_memory / GIB}
    return info


def write_report(report: dict[str, Any], out: Path) -> None:
    """The JSON, rewritten after every section so a run cut short keeps what it measured."""
    (out / RESULT_NAME).write_text(json.dumps(report, indent=1, default=str))


COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "step": (
        ("pretext", "pretext", "s"),
        ("format", "memory_format", "s"),
        ("compiled", "compiled", "s"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".4f"),
        ("compile s", "compile_s", ".1f"),
        ("graph breaks", "graph_breaks", "d"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "memory": (
        ("pretext", "pretext", "s"),
        ("precision", "precision", "s"),
        ("peak GiB", "peak_allocated_gib", ".2f"),
        ("reserved GiB", "peak_reserved_gib", ".2f"),
        (f"fits {CARD_GIB:g} GiB", f"fits_{CARD_GIB:g}_gib", "s"),
        ("loss scale", "loss_scale", ".0f"),
    ),
    "samplecnn": (
        ("preset", "preset", "s"),
        ("pairs", "pairs", "d"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".3f"),
        ("chain share", "augment_share", ".1%"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "loader": (
        ("reader", "reader", "s"),
        ("workers", "workers", "d"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("data wait", "data_wait_fraction", ".1%"),
        ("GPU util %", "gpu_utilisation.mean_percent", ".0f"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "deepspeed": (
        ("launcher", "launcher", "s"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".3f"),
        ("data wait", "data_wait_fraction", ".1%"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
}


def cell(row: dict[str, Any], key: str, spec: str) -> str:
    """One table cell: a (dotted) key of the row formatted by `spec`, or '-' when absent."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "-"
    return format(value, spec) if spec != "s" else str(value)


def table(name: str, result: dict[str, Any]) -> list[str]:
    """A section's result as text lines: its rows in columns, what it skipped, or its error."""
    lines = [f"== {name}: {result['status']} in {result['seconds']:.0f} s"]
    if result["status"] == "error":
        return [*lines, f"   {result['error']}"]
    if name == "sync":
        lines.append(f"   {result['pairs_per_s']:.1f} pairs/s; host syncs: {result['syncs']}")
    if name in COLUMNS:
        lines += columns(COLUMNS[name], result["rows"])
    return lines + [f"   skipped: {item}" for item in result.get("skipped", ())]


def columns(spec: tuple[tuple[str, str, str], ...], rows: list[dict[str, Any]]) -> list[str]:
    """Rows as right-aligned text columns under their headers."""
    headers = [header for header, _, _ in spec]
    return aligned_lines(headers, ([cell(row, key, fmt) for _, key, fmt in spec] for row in rows), indent="   ")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; `--train-worker` is internal (a launched training process)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for gpu_suite.json and gpu_suite.txt")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every code path in under a minute on CPU")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--budget", action="append", default=[], metavar="NAME=SECONDS", help="a section's budget")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", type=Path, help="scratch folder for shards and runs (default: a temporary one)")
    parser.add_argument("--train-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--skip-steps", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {','.join(SECTIONS)}")
    if args.out is None and args.train_worker is None:
        parser.error("--out is required")
    return args


def budgets(sizes: Sizes, overrides: list[str]) -> Sizes:
    """The sizes with `NAME=SECONDS` budget overrides applied."""
    changed = dict(sizes.budgets_s)
    for item in overrides:
        name, _, seconds = item.partition("=")
        if name not in SECTIONS or not seconds:
            raise SystemExit(f"--budget {item!r}: expected NAME=SECONDS with NAME one of {','.join(SECTIONS)}")
        changed[name] = float(seconds)
    return dataclasses.replace(sizes, budgets_s=changed)


def train_worker(result: Path, skip: int, flags: list[str]) -> None:
    """Inside `accelerate launch`: one Trainer run of train.py's `flags`, its figures written by rank 0."""
    config, _ = parse_config(flags[1:] if flags[:1] == ["--"] else flags)
    figures = measure_run(config, skip)
    if int(os.environ.get("RANK", "0")) == 0:
        result.write_text(json.dumps(figures))


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the table and write the JSON; 1 if any section failed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.train_worker is not None:
        train_worker(args.train_worker, args.skip_steps, args.train_flags)
        return 0
    sizes = budgets(SMOKE if args.smoke else FULL, args.budget)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": [sys.executable, *sys.argv],
        "smoke": args.smoke,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device),
        "sizes": dataclasses.asdict(sizes),
        "readers": list(READERS),
        "sections": {},
    }
    run = Run(sizes, device, work)
    try:
        for name in args.only:
            report["sections"][name] = run_section(name, run)
            report["total_s"] = time.perf_counter() - started
            write_report(report, args.out)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    lines = [line for name, result in report["sections"].items() for line in table(name, result)]
    lines.append(f"total {report['total_s']:.0f} s on {report['machine'].get('gpu', device)}")
    (args.out / TABLE_NAME).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return int(any(result["status"] == "error" for result in report["sections"].values()))


if __name__ == "__main__":
    sys.exit(main())
