"""Forward + backward time per batch of every backbone x pretext, with the paper's heads, on CPU by default.

A batch is ``--batch`` pairs of random waveforms of the backbone's window. One step is
``pretext.compute_loss`` (student on 2B crops, teacher if any, loss) and ``loss.backward()``; the optimiser
and the EMA update are left out. Compare with benchmarks/backbone_speed.py to see what the pretext adds.

    python -m benchmarks.pretext_step --batch 8 --repeats 2 --json
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.harness import print_json
from benchmarks.step_timing import median_step_seconds, parse_step_args, step_parser
from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.pretexts import PRETEXTS, build_pretext


def time_pretext_step(backbone: str, pretext: str, pairs: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median wall time of compute_loss + backward + zero_grad over ``repeats`` batches, after one warm-up."""
    model = build_pretext(pretext, build_backbone(backbone)).to(device).train()
    views = torch.randn(pairs, 2, model.student.backbone.num_samples, device=device)

    def step() -> None:
        model.compute_loss(views).loss.backward()
        model.student.zero_grad(set_to_none=True)

    per_batch = median_step_seconds(step, repeats, device)
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
    parser = step_parser(__doc__)
    parser.add_argument("--pretexts", nargs="+", default=sorted(PRETEXTS), choices=sorted(PRETEXTS))
    args = parse_step_args(parser, min_batch=2)  # the losses need negatives / batch statistics
    for backbone in args.backbones:
        for pretext in args.pretexts:
            result = time_pretext_step(backbone, pretext, args.batch, args.repeats, torch.device(args.device))
            if args.json:
                print_json(result)
            else:
                print(
                    f"{backbone:10s} {pretext:13s} {result['trained_parameters']:>11,d} params  "
                    f"{args.batch} pairs: {result['seconds_per_batch']:.3f} s/batch, "
                    f"{result['pairs_per_second']:.1f} pairs/s "
                    f"({result['device']}, {result['threads']} threads)"
                )


if __name__ == "__main__":
    main()
