"""Pre-train a backbone: `accelerate launch train.py --pretext contrastive --data shards/` (or python)."""

import sys
from dataclasses import replace

from torch import nn

from downstream.monitor import QuickProbeHook
from trainer.cli import parse_config
from trainer.demo_data import DEMO_DATA, ensure_demo_shards
from trainer.loop import EXIT_PREEMPTED, NO_DATA, HookFactory, backbone_recipe, train


def main() -> int:
    """Parse flags, add the downstream probe monitor when asked, train; exit 75 when stopped resumably."""
    config, stop_after = parse_config(sys.argv[1:])
    if config.data is None:
        raise SystemExit(f"error: {NO_DATA}")
    if config.data == DEMO_DATA:
        config = replace(config, data=ensure_demo_shards(backbone_recipe(config).build().sample_rate))
    factories: list[HookFactory] = []
    if config.monitor.data:

        def probe(backbone: nn.Module) -> QuickProbeHook:
            return QuickProbeHook(
                config.monitor.data, backbone.num_samples, backbone.sample_rate, config.monitor.every_steps
            )

        factories.append(probe)
    result = train(config, stop_after_steps=stop_after, hook_factories=factories)
    return EXIT_PREEMPTED if result.preempted else 0


if __name__ == "__main__":
    sys.exit(main())
