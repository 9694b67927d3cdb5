"""What the step benchmarks share: their flags, a median step time after a warm-up, and a training set-up."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from benchmarks.harness import add_json_flag, median_seconds
from musicssl.trainer.backbones import BACKBONES
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.pretexts import Pretext, build_pretext
from musicssl.trainer.run_parts import backbone_recipe, optimizer_for


def step_parser(description: str) -> argparse.ArgumentParser:
    """Flags common to the step benchmarks: batch, repeats, backbones, device, threads, --json."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="pairs per batch (2 crops each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches after one warm-up batch")
    parser.add_argument("--backbones", nargs="+", default=sorted(BACKBONES), choices=sorted(BACKBONES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    add_json_flag(parser, help="print one JSON object per measurement")
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


def median_step_seconds(step: Callable[[], object], repeats: int, device: torch.device, warmup: int = 1) -> float:
    """Median wall time of `step` over `repeats` calls after `warmup` untimed calls (allocators, kernels)."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    return median_seconds(step, repeats, warmup, sync)


def training_parts(config: TrainConfig, device: torch.device) -> tuple[Pretext, torch.optim.Optimizer]:
    """The pretext (backbone and heads) and optimiser of `config`, built as `trainer.loop.Trainer` builds them."""
    torch.manual_seed(config.seed)
    pretext = build_pretext(config.pretext, backbone_recipe(config).build(), config.pretext_config).to(device)
    return pretext, optimizer_for(config, pretext.student)
