"""The suite's outputs: the machine it ran on, the JSON rewritten after each section, and the table."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu.measure import (
    GIB,
)
from benchmarks.gpu.sizes import (
    CARD_GIB,
    RESULT_NAME,
)
from benchmarks.harness import aligned_lines
from musicssl.trainer.tracking import git_commit


def machine(device: torch.device) -> dict[str, Any]:
    """The machine and software the figures come from."""
    info: dict[str, Any] = {
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info |= {"gpu": properties.name, "gpu_memory_gib": properties.total_memory / GIB}
    return info


def write_report(report: dict[str, Any], out: Path) -> None:
    """The JSON, rewritten after every section so a run cut short keeps what it measured."""
    (out / RESULT_NAME).write_text(json.dumps(report, indent=1, default=str))


COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "step": (
        ("pretext", "pretext", "s"),
        ("format", "memory_format", "s"),
        ("compiled", "compiled", "s"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".4f"),
        ("compile s", "compile_s", ".1f"),
        ("graph breaks", "graph_breaks", "d"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "memory": (
        ("pretext", "pretext", "s"),
        ("precision", "precision", "s"),
        ("peak GiB", "peak_allocated_gib", ".2f"),
        ("reserved GiB", "peak_reserved_gib", ".2f"),
        (f"fits {CARD_GIB:g} GiB", f"fits_{CARD_GIB:g}_gib", "s"),
        ("loss scale", "loss_scale", ".0f"),
    ),
    "samplecnn": (
        ("preset", "preset", "s"),
        ("pairs", "pairs", "d"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".3f"),
        ("chain share", "augment_share", ".1%"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "loader": (
        ("layout", "layout", "s"),
        ("reader", "reader", "s"),
        ("workers", "workers", "d"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("data wait", "data_wait_fraction", ".1%"),
        ("GPU util %", "gpu_utilisation.mean_percent", ".0f"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "deepspeed": (
        ("launcher", "launcher", "s"),
        ("pairs/s", "pairs_per_s", ".1f"),
        ("s/step", "seconds_per_step", ".3f"),
        ("data wait", "data_wait_fraction", ".1%"),
        ("peak GiB", "peak_memory_gib", ".2f"),
    ),
    "embed": (
        ("batch", "batch_size", "d"),
        ("bf16", "bf16", "s"),
        ("tracks", "tracks", "d"),
        ("tracks/s", "tracks_per_s", ".1f"),
        ("audio-h/s", "audio_hours_per_s", ".3f"),
    ),
}


def cell(row: dict[str, Any], key: str, spec: str) -> str:
    """One table cell: a (dotted) key of the row formatted by `spec`, or '-' when absent."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "-"
    return format(value, spec) if spec != "s" else str(value)


def table(name: str, result: dict[str, Any]) -> list[str]:
    """A section's result as text lines: its rows in columns, what it skipped, or its error."""
    lines = [f"== {name}: {result['status']} in {result['seconds']:.0f} s"]
    if result["status"] == "error":
        return [*lines, f"   {result['error']}"]
    if name == "sync":
        lines.append(f"   {result['pairs_per_s']:.1f} pairs/s; host syncs: {result['syncs']}")
    if name in COLUMNS:
        lines += columns(COLUMNS[name], result["rows"])
    return lines + [f"   skipped: {item}" for item in result.get("skipped", ())]


def columns(spec: tuple[tuple[str, str, str], ...], rows: list[dict[str, Any]]) -> list[str]:
    """Rows as right-aligned text columns under their headers."""
    headers = [header for header, _, _ in spec]
    return aligned_lines(headers, ([cell(row, key, fmt) for _, key, fmt in spec] for row in rows), indent="   ")
