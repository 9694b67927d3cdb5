"""Forward + backward time per batch of every backbone x pretext, with the paper's heads, on CPU by default.

A batch is ``--batch`` pairs of random waveforms of the backbone's window. One step is
``pretext.compute_loss`` (student on 2B crops, teacher if any, loss) and ``loss.backward()``; the optimiser
and the EMA update are left out. Compare with benchmarks/backbone_speed.py to see what the pretext adds.

    python benchmarks/pretext_step.py --batch 8 --repeats 2 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from trainer.backbones import BACKBONES, build_backbone
from trainer.pretexts import PRETEXTS, build_pretext


def time_pretext_step(backbone: str, pretext: str, pairs: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median wall time of compute_loss + backward + zero_grad over ``repeats`` batches, after one warm-up."""
    model = build_pretext(pretext, build_backbone(backbone)).to(device).train()
    views = torch.randn(pairs, 2, model.student.backbone.num_samples, device=device)
    seconds = []
    for iteration in range(repeats + 1):
        start = time.perf_counter()
        model.compute_loss(views).loss.backward()
        model.student.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if iteration:  # the first batch warms up allocators and kernels
            seconds.append(time.perf_counter() - start)
    per_batch = statistics.median(seconds)
    return {
        "backbone": backbone,
        "pretext": pretext,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "pairs_per_batch": pairs,
        "trained_parameters": sum(p.numel() for p in model.student.parameters()),
        "seconds_per_batch": per_batch,
        "pairs_per_second": pairs / per_batch,
        "repeats": repeats,
    }


def main() -> None:
    """Parse the command line, time each backbone x pretext and print a table or JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="pairs per batch (2 crops each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches after one warm-up batch")
    parser.add_argument("--backbones", nargs="+", default=sorted(BACKBONES), choices=sorted(BACKBONES))
    parser.add_argument("--pretexts", nargs="+", default=sorted(PRETEXTS), choices=sorted(PRETEXTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per backbone x pretext")
    args = parser.parse_args()
    if args.batch < 2 or args.repeats < 1:
        parser.error("--batch must be at least 2 (the losses need negatives / batch statistics), --repeats >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for backbone in args.backbones:
        for pretext in args.pretexts:
            result = time_pretext_step(backbone, pretext, args.batch, args.repeats, torch.device(args.device))
            if args.json:
                print(json.dumps(result))
            else:
                print(
                    f"{backbone:10s} {pretext:13s} {result['trained_parameters']:>11,d} params  "
                    f"{args.batch} pairs: {result['seconds_per_batch']:.3f} s/batch, "
                    f"{result['pairs_per_second']:.1f} pairs/s "
                    f"({result['device']}, {result['threads']} threads)"
                )


if __name__ == "__main__":
    main()
