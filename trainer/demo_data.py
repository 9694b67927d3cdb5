"""The built-in demo corpus as a shard set, made on first use so `train.py` runs with no data given."""

from __future__ import annotations

import os
from pathlib import Path

from accelerate import Accelerator

from sharding.format import INDEX_NAME

DEMO_ROOT = Path("demo_data")


def ensure_demo_shards(accelerator: Accelerator, sample_rate: int, root: Path = DEMO_ROOT) -> str:
    """Location of the demo shards at `sample_rate`, generating audio and shards on rank 0 if missing."""
    # Imported here: making the corpus needs PyAV, which training on prepared shards (a GPU machine) need not have.
    from data_prep.demo import MANIFEST_NAME, make_demo_corpus
    from data_prep.track import PrepSettings
    from sharding.build import prepare_shards

    shards = root / ("shards" if sample_rate == 16000 else f"shards-{sample_rate}")
    if accelerator.is_main_process and not (shards / INDEX_NAME).exists():
        manifest = root / "audio" / MANIFEST_NAME
        if not manifest.exists():
            accelerator.print(f"building the demo corpus in {manifest.parent}")
            make_demo_corpus(manifest.parent)
        accelerator.print(f"preparing demo shards at {sample_rate} Hz in {shards}")
        prepare_shards(manifest, shards, PrepSettings(sample_rate=sample_rate), workers=os.cpu_count() or 1)
    accelerator.wait_for_everyone()
    return str(shards)
