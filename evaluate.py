"""Probe a frozen backbone: `python evaluate.py --backbone runs/.../backbone.safetensors --data shards/`.

`--data demo` probes on the built-in demo corpus, built here (the entry point) on first use.
"""

import sys

from downstream.cli import main
from trainer.demo_data import ensure_demo_shards

if __name__ == "__main__":
    sys.exit(main(demo_shards=ensure_demo_shards))
