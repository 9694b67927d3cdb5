"""The built-in demo corpus as a shard set, made on first use: what the entry points run on for `--data demo`.

Only `train.py` and `evaluate.py` call it (the `demo` preset sets `data = "demo"`); library code never falls
back to it, so a run without data is an error instead of a silent run on synthetic audio.
"""

from __future__ import annotations

import os
from pathlib import Path

from accelerate import PartialState

from musicssl.sharding.format import INDEX_NAME

DEMO_DATA = "demo"
"""The `--data` value that names the demo corpus."""
DEMO_ROOT = Path("demo_data")


def ensure_demo_shards(sample_rate: int, root: Path = DEMO_ROOT) -> str:
    """Location of the demo shards at `sample_rate`, generating audio and shards on the main process if missing."""
    # Imported here: making the corpus needs PyAV, which training on prepared shards (a GPU machine) need not have.
    from musicssl.data_prep.demo import MANIFEST_NAME, make_demo_corpus
    from musicssl.data_prep.track import PrepSettings
    from musicssl.sharding.build import prepare_shards

    state = PartialState()
    shards = root / ("shards" if sample_rate == 16000 else f"shards-{sample_rate}")
    if state.is_main_process and not (shards / INDEX_NAME).exists():
        manifest = root / "audio" / MANIFEST_NAME
        if not manifest.exists():
            print(f"building the demo corpus in {manifest.parent}")
            make_demo_corpus(manifest.parent)
        print(f"preparing demo shards at {sample_rate} Hz in {shards}")
        prepare_shards(manifest, shards, PrepSettings(sample_rate=sample_rate), workers=os.cpu_count() or 1)
    state.wait_for_everyone()
    return str(shards)
