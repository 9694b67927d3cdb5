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
  loader     the Trainer (`train.py --preset paper`) on shards of generated 3-5 minute tracks written here, as PCM
             and converted to log-mel (fp16, uint8), with 4, 8 and 16 loader workers, each reader (the stream
             on PCM): pairs/s end to end, data-wait share, GPU utilisation
  sync       host synchronisations per step of the Trainer under torch.cuda.set_sync_debug_mode("warn")
  deepspeed  the thesis VICReg preset through `accelerate launch` with DeepSpeed ZeRO-2 (if it imports), then
             with the plain one-GPU config
  embed      `python -m downstream.embed`'s core, one process, paper ResNet in bf16, on the small generated set at
             256 and 1024 windows per batch: tracks/s and audio-hours/s (after an uncounted warm-up pass)
Each section fails soft (its error goes into the JSON and the next one runs), starts no new measurement once
its time budget (`--budget NAME=SECONDS`) is spent and lists what it skipped; the JSON is rewritten after each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu.embed_section import embed_section
from benchmarks.gpu.measure import (
    measure_run,
    release_memory,
)
from benchmarks.gpu.model_sections import memory_section, samplecnn_section, step_section
from benchmarks.gpu.report import machine, table, write_report
from benchmarks.gpu.sizes import (
    FULL,
    SECTIONS,
    SMOKE,
    TABLE_NAME,
    Budget,
    Run,
    Sizes,
)
from benchmarks.gpu.trainer_sections import READERS, deepspeed_section, loader_section, sync_section
from musicssl.trainer.cli import parse_config

SECTION_RUNNERS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "step": step_section,
    "memory": memory_section,
    "samplecnn": samplecnn_section,
    "loader": loader_section,
    "sync": sync_section,
    "deepspeed": deepspeed_section,
    "embed": embed_section,
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
