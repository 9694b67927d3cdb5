"""Throughput of the batched CLMR augmentation chain, per effect and whole, against a SampleCNN training step.

Every effect is timed on the full batch (as if its probability were 1), the chain with the thesis
probabilities. The goal is a chain that costs under 20 % of a SampleCNN forward + backward on the same
crops and device. The model step is timed on `--model-batch` crops (its activations need ~40 MB per crop)
and scaled linearly to `--batch`, which holds for CPU convolutions; on a GPU pass `--model-batch` = `--batch`.

    python -m benchmarks.augment_speed --batch 256 --model-batch 32 --json
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

import torch

from benchmarks.harness import add_json_flag, print_json
from benchmarks.step_timing import median_step_seconds
from musicssl.trainer.augment import AugmentationChain, AugmentConfig, build_stages


def time_effects(waveforms: torch.Tensor, config: AugmentConfig, repeats: int) -> dict[str, float]:
    """Crops per second of each effect applied to every crop of the batch."""
    generator = torch.Generator(waveforms.device).manual_seed(0)
    rates = {}
    for stage in build_stages(config):
        run = functools.partial(stage.effect, waveforms, generator)
        seconds = median_step_seconds(run, repeats, waveforms.device)
        rates[stage.name] = waveforms.shape[0] / seconds
    return rates


def time_training_step(crops: int, device: torch.device, repeats: int) -> tuple[float, str]:
    """Seconds of one SampleCNN forward + backward on `crops` crops, and which model was timed."""
    from musicssl.trainer.backbones import build_backbone  # the benchmark, not the augment package, needs a model

    model = build_backbone("samplecnn").to(device).train()
    waveforms = torch.randn(crops, model.num_samples, device=device)

    def step() -> None:
        model(waveforms).square().mean().backward()
        model.zero_grad(set_to_none=True)

    return median_step_seconds(step, repeats, device), "trainer.backbones.build_backbone('samplecnn')"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """All figures of one run as a JSON-ready dict."""
    device = torch.device(args.device)
    config = AugmentConfig()
    waveforms = torch.randn(args.batch, config.crop_samples, device=device)
    chain = AugmentationChain(config, seed=0)
    chain_seconds = median_step_seconds(lambda: chain(waveforms), args.repeats, device)
    step_seconds, model = time_training_step(args.model_batch, device, args.repeats)
    step_seconds_at_batch = step_seconds * args.batch / args.model_batch
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_crops": args.batch,
        "crop_samples": config.crop_samples,
        "repeats": args.repeats,
        "effect_crops_per_second": time_effects(waveforms, config, args.repeats),
        "chain_crops_per_second": args.batch / chain_seconds,
        "chain_seconds_per_batch": chain_seconds,
        "model": model,
        "model_batch_crops": args.model_batch,
        "step_seconds_per_batch": step_seconds_at_batch,
        "chain_share_of_step": chain_seconds / step_seconds_at_batch,
        "goal_under_20_percent": chain_seconds < 0.2 * step_seconds_at_batch,
    }


def main() -> None:
    """Parse the command line, measure and print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="crops per augmented batch")
    parser.add_argument("--model-batch", type=int, default=256, help="crops per timed SampleCNN step")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    add_json_flag(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = measure(args)
    if args.json:
        print_json(figures, indent=2)
        return
    for name, rate in figures["effect_crops_per_second"].items():
        print(f"{name:>10}: {rate:10.1f} crops/s")
    print(f"{'chain':>10}: {figures['chain_crops_per_second']:10.1f} crops/s")
    print(
        f"SampleCNN step for {args.batch} crops: {figures['step_seconds_per_batch']:.2f} s; "
        f"chain share {100 * figures['chain_share_of_step']:.1f} % (goal < 20 %)"
    )


if __name__ == "__main__":
    main()
