"""Curves and tables against a param: limited-data curves (metric vs training fraction) and sweep reports
(sweep_<name>.md / .csv / .png, with the published figures of each point)."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicssl.downstream.plots import METRIC_LABELS, Curve, PanelKey, plot_curves
from musicssl.downstream.references import Published, Reference, common_params, is_number, probe_kind, published_for
from musicssl.downstream.selection import full_data, group, pooled, select
from musicssl.downstream.summary_table import published_text, sources_text
from musicssl.downstream.sweeps import SWEEP_PARAM, available_sweeps, load_sweep
from musicssl.downstream.tracking import EvaluationRecord


def limited_data_panels(
    records: Sequence[EvaluationRecord], metrics: Sequence[str]
) -> dict[PanelKey, dict[str, Curve]]:
    """Per (metric, task) and pretext: bootstrap mean vs training fraction, mean +- std over draws.

    Empty when no run used less than the whole training set.
    """
    if all(float(record.params["fraction"]) == 1.0 for record in records):
        return {}
    points: dict[tuple[str, str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for (task, pretext, fraction), draws in group(records, "task", "pretext", "fraction").items():
        for metric in metrics:
            means = np.array([draw.metrics[f"{metric}_mean"] for draw in draws])
            points[(metric, task, pretext)].append((float(fraction), means.mean(), means.std()))
    return _curves(points)


def swept_runs(records: Sequence[EvaluationRecord], param: str) -> list[EvaluationRecord]:
    """The full-data runs that record `param`; none is an error naming the params they do record."""
    swept = [record for record in full_data(records) if param in record.params]
    if not swept:
        available = sorted({name for record in records for name in record.params})
        raise ValueError(f"no full-data evaluation run has param {param!r}; run params are: {available}")
    return swept


def by_series(records: Iterable[EvaluationRecord]) -> dict[tuple[str, str], list[EvaluationRecord]]:
    """Records grouped by (task, series): the pretext, with " 2-layer" for a two-layer probe (the thesis' figures
    in parentheses), so that the two probes of a sweep are two series instead of one pool."""
    groups: dict[tuple[str, str], list[EvaluationRecord]] = defaultdict(list)
    for record in records:
        suffix = " 2-layer" if probe_kind(record.params) == "mlp" else ""
        groups[(record.params["task"], record.params["pretext"] + suffix)].append(record)
    return dict(sorted(groups.items()))


def sweep_panels(
    records: Sequence[EvaluationRecord], param: str, metrics: Sequence[str]
) -> dict[PanelKey, dict[str, Curve]]:
    """Per (metric, task) and series: pooled bootstrap mean +- std against a numeric run param."""
    swept = swept_runs(records, param)
    not_numeric = sorted({r.params[param] for r in swept if not is_number(r.params[param])})
    if not_numeric:
        raise ValueError(f"--sweep {param}: values {not_numeric} are not numbers; only numeric params can be swept")
    points: dict[tuple[str, str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for (task, series), runs in by_series(swept).items():
        for (value,), at_value in group(runs, param).items():
            for metric in metrics:
                values = pooled(at_value, metric)
                points[(metric, task, series)].append((float(value), values.mean(), values.std()))
    return _curves(points)


def sweep_references(
    records: Sequence[EvaluationRecord], param: str, metrics: Sequence[str], references: Sequence[Reference]
) -> dict[PanelKey, dict[str, dict[str, Curve]]]:
    """Per (metric, task), series and source table: the published figures against the swept param that match
    the setting the series' swept runs share (the swept param aside); a curve of single points (std 0)."""
    panels: dict[PanelKey, dict[str, dict[str, Curve]]] = defaultdict(lambda: defaultdict(dict))
    for (task, series), runs in by_series(swept_runs(records, param)).items():
        params = common_params(runs)
        for metric in metrics:
            by_table: dict[str, list[Published]] = defaultdict(list)
            for figure in published_for(references, params, metric, swept=param):
                by_table[figure.reference.label].append(figure)
            for label, figures in by_table.items():
                x = np.array([figure.x for figure in figures])
                mean = np.array([figure.value for figure in figures])
                panels[(metric, task)][series][label] = Curve(x=x, mean=mean, std=np.zeros_like(mean))
    return {key: dict(value) for key, value in panels.items()}


def _curves(
    points: Mapping[tuple[str, str, str], list[tuple[float, float, float]]],
) -> dict[PanelKey, dict[str, Curve]]:
    """Turn (metric, task, pretext) -> [(x, mean, std)] into panels of curves."""
    panels: dict[PanelKey, dict[str, Curve]] = defaultdict(dict)
    for (metric, task, pretext), triples in points.items():
        x, mean, std = (np.array(column) for column in zip(*triples, strict=True))
        panels[(metric, task)][pretext] = Curve(x=x, mean=mean, std=std)
    return dict(panels)


@dataclass(frozen=True)
class SweepRow:
    """One point of a sweep: a series at one value of the swept param, one metric, and its published figures."""

    task: str
    series: str
    value: str
    metric: str
    mean: float
    std: float
    published: tuple[Published, ...]


def value_order(value: str) -> tuple[int, float, str]:
    """Sort key of swept values: numbers by size, then names."""
    return (0, float(value), "") if is_number(value) else (1, 0.0, value)


def sweep_rows(
    records: Sequence[EvaluationRecord], param: str, metrics: Sequence[str], references: Sequence[Reference]
) -> list[SweepRow]:
    """Per task, series and value of `param`: the pooled mean +- std, with the published figures of that setting
    whose source names the param (a figure measured at an unnamed value of it belongs to no point)."""
    rows = []
    for (task, series), runs in by_series(swept_runs(records, param)).items():
        values = sorted({run.params[param] for run in runs}, key=value_order)
        for value in values:
            at_value = [run for run in runs if run.params[param] == value]
            params = common_params(at_value)
            for metric in metrics:
                scores = pooled(at_value, metric)
                figures = [f for f in published_for(references, params, metric) if param in f.reference.setting]
                rows.append(
                    SweepRow(task, series, value, metric, float(scores.mean()), float(scores.std()), tuple(figures))
                )
    return rows


def sweep_table(rows: Sequence[SweepRow], param: str) -> str:
    """A markdown row per (task, series, value), each metric's 'mean ± std' followed by its published figures."""
    metrics = list(dict.fromkeys(row.metric for row in rows))
    header = ["task", "pretext", param]
    for metric in metrics:
        header += [METRIC_LABELS.get(metric, metric), "published"]
    cells = {(row.task, row.series, row.value, row.metric): row for row in rows}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for point in dict.fromkeys((row.task, row.series, row.value) for row in rows):
        values = list(point)
        for metric in metrics:
            row = cells.get((*point, metric))
            values.append(f"{row.mean:.2f} ± {row.std:.2f}" if row else "n/a")
            values.append(published_text(row.published) if row and row.published else "-")
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_sweep_table(rows: Sequence[SweepRow], param: str, stem: Path) -> list[Path]:
    """Write STEM.md (the table and the sources of its figures) and STEM.csv (one row per point and metric)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    markdown_path, csv_path = stem.with_suffix(".md"), stem.with_suffix(".csv")
    markdown_path.write_text(sweep_table(rows, param) + "\n" + sources_text(row.published for row in rows))
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "pretext", param, "metric", "mean", "std", "published"])
        for row in rows:
            cited = "; ".join(f"{figure.value:.2f} ({figure.reference.source})" for figure in row.published)
            writer.writerow([row.task, row.series, row.value, row.metric, f"{row.mean:.4f}", f"{row.std:.4f}", cited])
    return [markdown_path, csv_path]


def sweep_outputs(
    records: Sequence[EvaluationRecord], name: str, metrics: Sequence[str], references: Sequence[Reference], out: Path
) -> list[Path]:
    """The table of a sweep (printed too) and, for a numeric param, its figure; `name` is a sweep of
    configs/sweeps (its tracked runs, against its param) or a run param (every run that records it)."""
    param = name
    if name in available_sweeps():
        sweep = load_sweep(name)
        param, records = sweep.param, select(records, {SWEEP_PARAM: name})
        if not records:
            raise ValueError(
                f"no evaluation runs of sweep {name!r}: run it first (sbatch --array=0-{len(sweep.runs) - 1} "
                f"slurm/sweep.sh {name} PRETRAIN_SHARDS EVAL_SHARDS)"
            )
    rows = sweep_rows(records, param, metrics, references)
    print(f"Sweep {name} against {param}:")
    print(sweep_table(rows, param))
    print(sources_text(row.published for row in rows))
    paths = write_sweep_table(rows, param, out / f"sweep_{name}")
    if all(is_number(row.value) for row in rows):
        panels = sweep_panels(records, param, metrics)
        log_x = all(value > 0 for by_series in panels.values() for curve in by_series.values() for value in curve.x)
        published_curves = sweep_references(records, param, metrics, references)
        path = out / f"sweep_{name}.png"
        paths.append(plot_curves(panels, path, param, log_x=log_x, references=published_curves))
    return paths
