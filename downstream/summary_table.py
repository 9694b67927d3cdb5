"""The comparison's summary table: pretext x task, mean +- std of the pooled bootstrap values, with the published
figures of the same task and setting next to them (table.md / table.csv)."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicssl.downstream.plots import METRIC_LABELS, PanelKey
from musicssl.downstream.references import Published, Reference, common_params, published_for
from musicssl.downstream.selection import full_data, group, pooled
from musicssl.downstream.tracking import EvaluationRecord


@dataclass(frozen=True)
class SummaryRow:
    """Mean and std of one metric for one (pretext, task), over the pooled bootstrap values."""

    pretext: str
    task: str
    metric: str
    mean: float
    std: float
    num_values: int


def bootstrap_panels(
    records: Sequence[EvaluationRecord], metrics: Sequence[str]
) -> dict[PanelKey, dict[str, np.ndarray]]:
    """Per (metric, task): the pooled bootstrap values of each pretext, from full-data runs."""
    panels: dict[PanelKey, dict[str, np.ndarray]] = defaultdict(dict)
    for (task, pretext), runs in group(full_data(records), "task", "pretext").items():
        for metric in metrics:
            panels[(metric, task)][pretext] = pooled(runs, metric)
    return dict(panels)


PublishedCells = dict[tuple[str, str, str], list[Published]]  # (pretext, task, metric) -> figures


def published_cells(
    records: Sequence[EvaluationRecord], metrics: Sequence[str], references: Sequence[Reference]
) -> PublishedCells:
    """Per (pretext, task, metric) of the full-data runs: the published figures of their common setting."""
    cells: PublishedCells = {}
    for (task, pretext), runs in group(full_data(records), "task", "pretext").items():
        params = common_params(runs)
        for metric in metrics:
            found = published_for(references, params, metric)
            if found:
                cells[(pretext, task, metric)] = found
    return cells


def published_text(figures: Sequence[Published]) -> str:
    """A cell: each figure with the table it comes from, e.g. "87.52 (thesis A.1) / 87.52 (thesis 4.1)"."""
    return " / ".join(f"{figure.value:.2f} ({figure.reference.label})" for figure in figures)


def sources_text(cells: Iterable[Sequence[Published]]) -> str:
    """The sources and notes of every figure in the cells, one line each, for under the table."""
    references = {id(f.reference): f.reference for figures in cells for f in figures}
    lines = [
        f"- {reference.source}: {reference.setting}" + (f". Note: {reference.note}" if reference.note else "")
        for reference in references.values()
    ]
    return "Published figures shown:\n" + "\n".join(lines) + "\n" if lines else ""


def summary_rows(panels: Mapping[PanelKey, Mapping[str, np.ndarray]]) -> list[SummaryRow]:
    """Mean and population std of each panel's pooled values, one row per (pretext, task, metric)."""
    return [
        SummaryRow(pretext, task, metric, float(values.mean()), float(values.std()), len(values))
        for (metric, task), by_pretext in panels.items()
        for pretext, values in by_pretext.items()
        if len(values)
    ]


def markdown_table(rows: Sequence[SummaryRow], published: PublishedCells | None = None) -> str:
    """Pretexts as rows, (task, metric) as columns, cells 'mean ± std'; each (task, metric) with a published
    figure for some pretext gets a "published" column next to it."""
    published = published or {}
    metric_order = list(dict.fromkeys(row.metric for row in rows))
    columns = sorted({(row.task, row.metric) for row in rows}, key=lambda c: (c[0], metric_order.index(c[1])))
    with_published = {(task, metric) for _, task, metric in published}
    cells = {(row.pretext, row.task, row.metric): f"{row.mean:.2f} ± {row.std:.2f}" for row in rows}
    header = ["pretext"]
    for task, metric in columns:
        header.append(f"{task} {METRIC_LABELS.get(metric, metric)}")
        if (task, metric) in with_published:
            header.append("published")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for pretext in sorted({row.pretext for row in rows}):
        values = [pretext]
        for task, metric in columns:
            values.append(cells.get((pretext, task, metric), "n/a"))
            if (task, metric) in with_published:
                values.append(published_text(published.get((pretext, task, metric), [])) or "-")
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[SummaryRow], out: Path, published: PublishedCells | None = None) -> list[Path]:
    """Write table.md (with the sources of the published figures) and table.csv (long format: one row per
    pretext, task, metric; the published figures as "value (source)" joined by "; ")."""
    published = published or {}
    out.mkdir(parents=True, exist_ok=True)
    markdown_path, csv_path = out / "table.md", out / "table.csv"
    markdown_path.write_text(markdown_table(rows, published) + "\n" + sources_text(published.values()))
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pretext", "task", "metric", "mean", "std", "num_values", "published"])
        for row in sorted(rows, key=lambda r: (r.task, r.metric, r.pretext)):
            figures = published.get((row.pretext, row.task, row.metric), [])
            cited = "; ".join(f"{figure.value:.2f} ({figure.reference.source})" for figure in figures)
            writer.writerow(
                [row.pretext, row.task, row.metric, f"{row.mean:.4f}", f"{row.std:.4f}", row.num_values, cited]
            )
    return [markdown_path, csv_path]
