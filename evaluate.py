"""Probe a frozen backbone: `python evaluate.py --backbone runs/.../backbone.safetensors --data shards/`.

`--data demo` probes on the built-in demo corpus, built here (the entry point) on first use. An expected failure
ends with one line `error: ...` and exit 2 (`--debug` shows the traceback).
"""

import sys
from functools import partial

from data_prep.entry import run_command
from downstream.cli import main
from trainer.demo_data import ensure_demo_shards

if __name__ == "__main__":
    sys.exit(run_command(partial(main, demo_shards=ensure_demo_shards)))
