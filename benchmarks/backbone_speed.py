"""Forward + backward time per batch of each backbone on CPU (or another device), per batch and per pair.

A batch of ``--batch`` pairs is ``2 * batch`` crops of the backbone's window. The loss is a dummy
(mean square of the embeddings): this measures the backbone alone, pretexts are benchmarked elsewhere.

    python benchmarks/backbone_speed.py --batch 4 --repeats 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from trainer.backbones import BACKBONES, build_backbone


def time_backbone(name: str, pairs: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median wall time of forward + backward + zero_grad over ``repeats`` batches, after one warm-up."""
    model = build_backbone(name).to(device).train()
    crops = torch.randn(2 * pairs, model.num_samples, device=device)
    seconds = []
    for iteration in range(repeats + 1):
        start = time.perf_counter()
        model(crops).square().mean().backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if iteration:  # the first batch warms up allocators and kernels
            seconds.append(time.perf_counter() - start)
    per_batch = statistics.median(seconds)
    return {
        "backbone": name,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "pairs_per_batch": pairs,
        "crops_per_batch": 2 * pairs,
        "window_samples": model.num_samples,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_batch": per_batch,
        "seconds_per_pair": per_batch / pairs,
        "pairs_per_second": pairs / per_batch,
        "repeats": repeats,
    }


def main() -> None:
    """Parse the command line, time each backbone and print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="pairs per batch (2 crops each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches after one warm-up batch")
    parser.add_argument("--backbones", nargs="+", default=sorted(BACKBONES), choices=sorted(BACKBONES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per backbone")
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.backbones:
        result = time_backbone(name, args.batch, args.repeats, torch.device(args.device))
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{name:10s} {result['parameters']:>10,d} params  {result['crops_per_batch']} crops: "
                f"{result['seconds_per_batch']:.3f} s/batch, {1000 * result['seconds_per_pair']:.1f} ms/pair "
                f"({result['device']}, {result['threads']} threads)"
            )


if __name__ == "__main__":
    main()
