"""Probe a frozen backbone: `python evaluate.py --backbone runs/.../backbone.safetensors --data shards/`."""

import sys

from downstream.cli import main

if __name__ == "__main__":
    sys.exit(main())
