"""Paired differences between evaluations of one task on the same test tracks (differences.md / .csv / .png)."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from musicssl.downstream.paired import PairedConfig, PairedDifference, paired_bootstrap
from musicssl.downstream.plots import METRIC_LABELS, Interval, PanelKey, plot_differences
from musicssl.downstream.selection import full_data, group
from musicssl.downstream.tracking import RANDOM_PRETEXT, EvaluationRecord

MAX_PAIRED_RUNS = 12  # per task: beyond this the pairs are too many to read; narrow the runs with --where


@dataclass(frozen=True)
class PairedRow:
    """The paired difference of one metric between evaluations a and b of one task."""

    task: str
    name_a: str
    name_b: str
    difference: PairedDifference


def run_labels(records: Sequence[EvaluationRecord]) -> dict[str, str]:
    """A name per run: its pretext, with the run id's start where a task holds several runs of one pretext."""
    counts = defaultdict(int)
    for record in records:
        counts[(record.params["task"], record.params["pretext"])] += 1
    return {
        record.run_id: record.params["pretext"]
        if counts[(record.params["task"], record.params["pretext"])] == 1
        else f"{record.params['pretext']} ({record.run_id[:8]})"
        for record in records
    }


def _ordered(a: EvaluationRecord, b: EvaluationRecord, metric: str) -> tuple[EvaluationRecord, EvaluationRecord]:
    """(a, b) with random weights second, otherwise the better one on the whole test set first."""
    if (a.params["pretext"] == RANDOM_PRETEXT) != (b.params["pretext"] == RANDOM_PRETEXT):
        return (b, a) if a.params["pretext"] == RANDOM_PRETEXT else (a, b)
    return (a, b) if a.metrics[f"{metric}_full"] >= b.metrics[f"{metric}_full"] else (b, a)


def paired_rows(records: Sequence[EvaluationRecord], metrics: Sequence[str], config: PairedConfig) -> list[PairedRow]:
    """Paired differences between every two full-data runs of a task that scored the same test tracks."""
    rows = []
    runs_with_predictions = [record for record in full_data(records) if record.predictions is not None]
    labels = run_labels(runs_with_predictions)
    for (task,), runs in group(runs_with_predictions, "task").items():
        if len(runs) > MAX_PAIRED_RUNS:
            print(
                f"{task}: {len(runs)} evaluation runs, no paired differences; select <= {MAX_PAIRED_RUNS} with --where"
            )
            continue
        for first, second in itertools.combinations(runs, 2):
            a, b = _ordered(first, second, metrics[0])
            if not a.predictions.same_test_set(b.predictions):
                continue
            differences = paired_bootstrap(a.predictions, b.predictions, config, metrics)
            rows += [
                PairedRow(task, labels[a.run_id], labels[b.run_id], differences[metric])
                for metric in metrics
                if metric in differences
            ]
    return rows


def paired_text(rows: Sequence[PairedRow]) -> str:
    """One line per pair and metric: task, metric, then the difference's sentence."""
    return "".join(
        f"{row.task} {METRIC_LABELS.get(row.difference.metric, row.difference.metric)}: "
        f"{row.difference.sentence(row.name_a, row.name_b)}\n"
        for row in rows
    )


def write_paired(rows: Sequence[PairedRow], out: Path) -> list[Path]:
    """Write differences.md (the sentences), differences.csv (one row per pair and metric) and the figure."""
    out.mkdir(parents=True, exist_ok=True)
    text_path, csv_path = out / "differences.md", out / "differences.csv"
    text_path.write_text(paired_text(rows))
    columns = ["task", "metric", "a", "b", "observed", "mean", "low", "high", "confidence", "p_value", "resamples"]
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            d = row.difference
            numbers = [f"{value:.4f}" for value in (d.observed, d.mean, d.low, d.high, d.confidence, d.p_value)]
            writer.writerow([row.task, d.metric, row.name_a, row.name_b, *numbers, d.num_resamples])
    panels: dict[PanelKey, list[Interval]] = defaultdict(list)
    for row in rows:
        d = row.difference
        panels[(d.metric, row.task)].append(Interval(f"{row.name_a} - {row.name_b}", d.observed, d.low, d.high))
    return [text_path, csv_path, plot_differences(panels, out / "differences.png")]
