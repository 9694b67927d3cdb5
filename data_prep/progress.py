"""Progress that reads well in a terminal and in a log: tqdm's bar on a terminal; anywhere else (a Slurm log, a
pipe, a file) one plain line at most every `LOG_INTERVAL_S` seconds, instead of a carriage-return fragment per
update (a 675-step run used to leave thousands of them in its log)."""

from __future__ import annotations

import io
import sys
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 60.0
LOG_WIDTH = 120  # a fixed width: a log has no terminal to measure


class PlainLines(io.TextIOBase):
    """A text stream that writes each of tqdm's carriage-return refreshes as a whole line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self.stream.write(part.rstrip() + "\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(stream: TextIO | None = None, **options: Any) -> tqdm:
    """tqdm with `options` on `stream` (stderr): a bar on a terminal, periodic plain lines anywhere else."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return tqdm(file=stream, **options)
    plain = {"mininterval": LOG_INTERVAL_S, **options, "dynamic_ncols": False, "ncols": LOG_WIDTH}
    return tqdm(file=PlainLines(stream), **plain)
