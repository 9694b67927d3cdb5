"""Pre-train a backbone: `accelerate launch train.py --pretext contrastive --data shards/` (or python)."""

import os
import sys
from dataclasses import replace
from pathlib import Path

from accelerate import PartialState
from torch import nn

from musicssl.data_prep.entry import run_command
from musicssl.downstream.monitor import QuickProbeHook
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.cli import parse_config
from musicssl.trainer.demo_data import DEMO_DATA, ensure_demo_shards
from musicssl.trainer.loop import EXIT_COLLAPSED, EXIT_PREEMPTED, NO_DATA, HookFactory, train
from musicssl.trainer.run_parts import backbone_recipe

STOP_FILE = "MUSICSSL_STOP_FILE"
"""Set by slurm/lib.sh. Launchers (accelerate launch, torchrun) turn a worker's exit 75 into a traceback and exit 1,
so under them a resumable stop writes its step to this file and exits 0; the script reads it as exit 75."""


def stopped_status(step: int) -> int:
    """Exit status of a resumable stop at `step`: 75, or 0 once the main process wrote the step to $STOP_FILE."""
    stop_file = os.environ.get(STOP_FILE)
    if not stop_file:
        return EXIT_PREEMPTED
    if PartialState().is_main_process:
        Path(stop_file).write_text(f"{step}\n")
    return 0


def main(args: list[str]) -> int:
    """Parse flags, add the downstream probe monitor when asked, train; exit 75 when stopped resumably, 3 when
    stopped by the collapse alarm (--stop-on-collapse), 2 with one line `error: ...` for an expected failure."""
    config, stop_after = parse_config(args)
    if config.data is None:
        raise SystemExit(f"error: {NO_DATA}")
    if config.data == DEMO_DATA:
        config = replace(config, data=ensure_demo_shards(backbone_recipe(config).build().sample_rate))
    factories: list[HookFactory] = []
    if config.monitor.data:

        def probe(backbone: nn.Module) -> QuickProbeHook:
            return QuickProbeHook(
                ShardSet.open(config.monitor.data),
                backbone.num_samples,
                backbone.sample_rate,
                config.monitor.every_steps,
            )

        factories.append(probe)
    result = train(config, stop_after_steps=stop_after, hook_factories=factories)
    if result.stopped_on_collapse:
        return EXIT_COLLAPSED
    return stopped_status(result.step) if result.preempted else 0


def cli() -> int:
    """The console script `musicssl-train` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
