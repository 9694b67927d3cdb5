"""What the forward + backward benchmarks share: their flags and a median step time after a warm-up."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from trainer.backbones import BACKBONES


def step_parser(description: str) -> argparse.ArgumentParser:
    """Flags common to the step benchmarks: batch, repeats, backbones, device, threads, --json."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="pairs per batch (2 crops each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches after one warm-up batch")
    parser.add_argument("--backbones", nargs="+", default=sorted(BACKBONES), choices=sorted(BACKBONES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    return parser


def parse_step_args(parser: argparse.ArgumentParser, min_batch: int = 1) -> argparse.Namespace:
    """Parse, check the sizes, and apply the thread count and the seed."""
    args = parser.parse_args()
    if args.batch < min_batch or args.repeats < 1:
        parser.error(f"--batch must be at least {min_batch} and --repeats at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def median_step_seconds(step: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of `step` over `repeats` calls after one warm-up call (allocators, kernels)."""
    seconds = []
    for iteration in range(repeats + 1):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if iteration:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)
