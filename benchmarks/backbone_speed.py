"""Forward + backward time per batch of each backbone on CPU (or another device), per batch and per pair.

A batch of ``--batch`` pairs is ``2 * batch`` crops of the backbone's window. The loss is a dummy
(mean square of the embeddings): this measures the backbone alone, pretexts are benchmarked elsewhere.

    python -m benchmarks.backbone_speed --batch 4 --repeats 3 --json
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.harness import print_json
from benchmarks.step_timing import median_step_seconds, parse_step_args, step_parser
from musicssl.trainer.backbones import build_backbone


def time_backbone(name: str, pairs: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median wall time of forward + backward + zero_grad over ``repeats`` batches, after one warm-up."""
    model = build_backbone(name).to(device).train()
    crops = torch.randn(2 * pairs, model.num_samples, device=device)

    def step() -> None:
        model(crops).square().mean().backward()
        model.zero_grad(set_to_none=True)

    per_batch = median_step_seconds(step, repeats, device)
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
    args = parse_step_args(step_parser(__doc__))
    for name in args.backbones:
        result = time_backbone(name, args.batch, args.repeats, torch.device(args.device))
        if args.json:
            print_json(result)
        else:
            print(
                f"{name:10s} {result['parameters']:>10,d} params  {result['crops_per_batch']} crops: "
                f"{result['seconds_per_batch']:.3f} s/batch, {1000 * result['seconds_per_pair']:.1f} ms/pair "
                f"({result['device']}, {result['threads']} threads)"
            )


if __name__ == "__main__":
    main()
