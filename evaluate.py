"""Probe a frozen backbone: `python evaluate.py --backbone runs/.../backbone.safetensors --data shards/`.

`--data demo` probes on the built-in demo corpus, built here (the entry point) on first use. An expected failure
ends with one line `error: ...` and exit 2 (`--debug` shows the traceback).
"""

import sys
from functools import partial

from musicssl.data_prep.entry import run_command
from musicssl.downstream.cli import main
from musicssl.trainer.demo_data import ensure_demo_shards


def cli() -> int:
    """The console script `musicssl-evaluate` (pyproject.toml)."""
    return run_command(partial(main, demo_shards=ensure_demo_shards))


if __name__ == "__main__":
    sys.exit(cli())
