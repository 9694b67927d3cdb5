"""What every benchmark shares: timing a callable, the `--json` flag and its output, and plain-text tables.

Standard library only, so that any benchmark (and the workers it spawns) may import it without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
JSON_HELP = "print one JSON object instead of a table"


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """The result of `action()` and the wall seconds it took."""
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def run_times(
    action: Callable[[], object], repeats: int, warmup: int = 0, sync: Callable[[], object] | None = None
) -> list[float]:
    """Wall seconds of `repeats` calls of `action` after `warmup` untimed ones; `sync` (e.g. waiting for the
    accelerator) runs inside each timed call."""
    seconds = []
    for iteration in range(warmup + repeats):
        start = time.perf_counter()
        action()
        if sync is not None:
            sync()
        if iteration >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def median_seconds(
    action: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], object] | None = None
) -> float:
    """Median wall time of `action` over `repeats` calls after `warmup` untimed calls (allocators, kernels)."""
    return statistics.median(run_times(action, repeats, warmup, sync))


def best_seconds(action: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of `repeats` calls of `action` (the least disturbed by other load)."""
    return min(run_times(action, repeats))


def add_json_flag(parser: argparse.ArgumentParser, help: str = JSON_HELP) -> None:
    """The `--json` flag of an argparse command line (tyro ones declare a `json: bool = False` field)."""
    parser.add_argument("--json", action="store_true", help=help)


def emit_report(report: Any, as_json: bool, print_report: Callable[[Any], None]) -> None:
    """A benchmark's report (a dataclass): its tables, or with --json the whole of it as JSON."""
    if as_json:
        print_json(dataclasses.asdict(report), indent=1)
    else:
        print_report(report)


def print_json(value: Any, indent: int | None = None) -> None:
    """Print a JSON-ready value (a benchmark's figures) on stdout."""
    print(json.dumps(value, indent=indent))


def row_text(values: Iterable[object], specs: Sequence[str], sep: str = " ") -> str:
    """One table line: each value formatted with its spec (e.g. "16", ">11,.1f"), joined by `sep`."""
    return sep.join(format(value, spec) for value, spec in zip(values, specs, strict=True))


def print_table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    specs: Sequence[str],
    header_specs: Sequence[str] | None = None,
    indent: str = "",
    notes: bool = False,
) -> None:
    """Print a header line and a line per row, columns formatted by `specs` (the header's by `header_specs`,
    default: each spec's alignment and width). With `notes`, a last free-text column follows two spaces."""
    if header_specs is None:
        header_specs = [_width_only(spec) for spec in specs]
    columns = len(specs)
    for line, line_specs in ((header, header_specs), *((row, specs) for row in rows)):
        text = indent + row_text(line[:columns], line_specs)
        print(f"{text}  {line[columns]}" if notes else text)


def _width_only(spec: str) -> str:
    """The alignment and width of a format spec, for a header cell: ">11,.1f" -> ">11"."""
    kept = ""
    for char in spec:
        if char in "<>^" or char.isdigit():
            kept += char
        else:
            break
    return kept


def aligned_lines(
    headers: Sequence[str], cells: Iterable[Sequence[str]], indent: str = "", gap: str = "  "
) -> list[str]:
    """Text cells right-aligned under their headers, each column as wide as its widest cell."""
    cells = [list(row) for row in cells]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=False)]
    return [
        indent + gap.join(text.rjust(width) for text, width in zip(texts, widths, strict=True))
        for texts in (headers, *cells)
    ]
