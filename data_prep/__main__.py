"""`python -m data_prep INPUT --out DIR`: decode, check and shard a folder of audio or a CSV manifest.

Rerun the same command to resume after a crash or a kill; see data_prep/README.md for the report and checks.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from musicssl.data_prep.entry import run_command
from musicssl.data_prep.track import PrepSettings
from musicssl.sharding.writer import DEFAULT_SHARD_SIZE


@dataclass
class PrepArgs:
    """Decode, normalise, check and shard audio into a WebDataset shard set (resumable)."""

    input: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="INPUT")]
    """A folder (searched recursively for audio files) or a CSV manifest with a `path` column."""
    out: Path
    """Output folder: shards, index.json and report.csv."""
    settings: Annotated[PrepSettings, tyro.conf.OmitArgPrefixes] = field(default_factory=PrepSettings)
    """How every track is decoded and checked."""
    shard_size: int = DEFAULT_SHARD_SIZE
    """Target shard size in bytes."""
    workers: int = os.cpu_count() or 1
    """Decoding processes (1 decodes in this process)."""
    part: int = 0
    """With --parts N: prepare only inputs number part, part+N, part+2N, ... (one Slurm array task each)."""
    parts: int = 1
    """Split the inputs into this many interleaved parts; give each part its own --out folder."""
    layout: Literal["pcm", "logmel"] = "pcm"
    """What the shards hold per track: pcm (int16 samples, any model and augmentation) or logmel (the paper
    ResNet's log-mel at --sample-rate, 4-8x fewer bytes a pair, temporal views only; docs/data-layout.md)."""
    mel_encoding: Literal["uint8", "fp16"] = "uint8"
    """With --layout logmel: uint8 (0.5 dB steps from -100 dB, 16 KB a 4 s crop) or fp16 (32 KB a crop)."""
    mel_f_max: float | None = None
    """With --layout logmel: the mel upper frequency in Hz, the ResNet's --resnet.f-max (default: Nyquist)."""
    progress: bool = True
    """Show a progress bar on stderr."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2, one line on stderr, for unusable input or output folder;
    `--debug` shows the traceback)."""
    return run_command(prepare, argv)


def prepare(argv: list[str]) -> int:
    """Parse the arguments and prepare the shard set."""
    args = tyro.cli(PrepArgs, args=argv)
    # Imported here, not at the top: spawned workers re-import this module, and the shard builder pulls in
    # webdataset and with it torch (~1.5 s per worker) which decoding does not need.
    from musicssl.sharding.build import prepare_shards
    from musicssl.sharding.layout import PCM_LAYOUT, Layout
    from musicssl.sharding.mel import MelSettings

    layout = (
        Layout.logmel(args.mel_encoding, MelSettings(sample_rate=args.settings.sample_rate, f_max=args.mel_f_max))
        if args.layout == "logmel"
        else PCM_LAYOUT
    )
    summary = prepare_shards(
        args.input,
        args.out,
        args.settings,
        args.shard_size,
        args.workers,
        (args.part, args.parts),
        args.progress,
        layout,
    )
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
