"""`python -m data_prep INPUT --out DIR`: decode, check and shard a folder of audio or a CSV manifest.

Rerun the same command to resume after a crash or a kill; see data_prep/README.md for the report and checks.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from data_prep.track import DEFAULT_MIN_DURATION_S, DEFAULT_SAMPLE_RATE, DEFAULT_SILENCE_DBFS, PrepSettings
from sharding.writer import DEFAULT_SHARD_SIZE


@dataclass
class PrepArgs:
    """Decode, normalise, check and shard audio into a WebDataset shard set (resumable)."""

    input: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="INPUT")]
    """A folder (searched recursively for audio files) or a CSV manifest with a `path` column."""
    out: Path
    """Output folder: shards, index.json and report.csv."""
    sample_rate: int = DEFAULT_SAMPLE_RATE
    """Target sample rate in Hz (16000 for the paper's ResNet, 22050 for SampleCNN presets)."""
    normalise: Literal["peak", "rms", "none"] = "peak"
    """peak: max |x| at -1 dBFS; rms: RMS at -20 dBFS with the peak kept <= -1 dBFS; none: as decoded."""
    min_duration: float = DEFAULT_MIN_DURATION_S
    """Tracks shorter than this (seconds) are skipped: too short for an anchor/positive pair."""
    silence_dbfs: float = DEFAULT_SILENCE_DBFS
    """Tracks whose RMS level is below this (dBFS) are skipped as silent."""
    shard_size: int = DEFAULT_SHARD_SIZE
    """Target shard size in bytes."""
    workers: int = os.cpu_count() or 1
    """Decoding processes (1 decodes in this process)."""
    part: int = 0
    """With --parts N: prepare only inputs number part, part+N, part+2N, ... (one Slurm array task each)."""
    parts: int = 1
    """Split the inputs into this many interleaved parts; give each part its own --out folder."""
    progress: bool = True
    """Show a progress bar on stderr."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for unusable arguments or output folder)."""
    args = tyro.cli(PrepArgs, args=argv)
    # Imported here, not at the top: spawned workers re-import this module, and the shard builder pulls in
    # webdataset and with it torch (~1.5 s per worker) which decoding does not need.
    from sharding.build import prepare_shards

    settings = PrepSettings(args.sample_rate, args.normalise, args.min_duration, args.silence_dbfs)
    try:
        summary = prepare_shards(
            args.input,
            args.out,
            settings,
            args.shard_size,
            args.workers,
            (args.part, args.parts),
            args.progress,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
