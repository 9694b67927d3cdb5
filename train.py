"""Pre-train a backbone: `accelerate launch train.py --pretext contrastive --data shards/` (or python)."""

import sys

from torch import nn

from downstream.monitor import QuickProbeHook
from trainer.cli import parse_config
from trainer.loop import EXIT_COLLAPSED, EXIT_PREEMPTED, HookFactory, train


def main() -> int:
    """Parse flags, add the downstream probe monitor when asked, train; exit 75 when stopped resumably, 3 when
    stopped by the collapse alarm (--stop-on-collapse)."""
    config, stop_after = parse_config(sys.argv[1:])
    factories: list[HookFactory] = []
    if config.monitor.data:

        def probe(backbone: nn.Module) -> QuickProbeHook:
            return QuickProbeHook(
                config.monitor.data, backbone.num_samples, backbone.sample_rate, config.monitor.every_steps
            )

        factories.append(probe)
    result = train(config, stop_after_steps=stop_after, hook_factories=factories)
    if result.stopped_on_collapse:
        return EXIT_COLLAPSED
    return EXIT_PREEMPTED if result.preempted else 0


if __name__ == "__main__":
    sys.exit(main())
