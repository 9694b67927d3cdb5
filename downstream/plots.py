"""Comparison figures drawn from plain arrays (no MLflow here), one panel per (metric, task), PNG files.

Figures are built with matplotlib's object API (no pyplot, no global state, no display needed): `savefig`
renders PNG with the Agg canvas whatever backend the process has.

- `plot_bootstrap_dots`: the ICASSP paper's Figure 1 style, a dot per bootstrap resample and a marker with
  a +-std bar at the mean, pretexts side by side; published figures as red bars at their pretext.
- `plot_curves`: a metric against a numeric x (training fraction for Figure 2, or a parameter swept across
  runs for the thesis' Figures 4.1, 4.2, B.1): mean line with a +-std band, one line per pretext; published
  figures as dashed lines with hollow stars in the pretext's colour, labelled with their table.
- `plot_differences`: paired differences between evaluations (a - b on the same test tracks), a point and its
  interval per pair, against a line at 0: the pairs whose interval clears 0 are the real effects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from musicssl.downstream.metrics import PRECISION_AT_K, PRECISION_K

METRIC_LABELS = {
    "roc_auc_tagwise": "ROC-AUC (tag-wise)",
    "pr_auc_tagwise": "PR-AUC / mAP (tag-wise)",
    "roc_auc_clipwise": "ROC-AUC (clip-wise)",
    "pr_auc_clipwise": "PR-AUC / mAP (clip-wise)",
    PRECISION_AT_K: f"precision@{PRECISION_K} (shared tag)",
    "probe/knn_roc_auc": "kNN monitor ROC-AUC (tag-wise)",
}
PanelKey = tuple[str, str]  # (metric, task)
PUBLISHED_COLOUR = "tab:red"


@dataclass(frozen=True)
class Curve:
    """Points of one line: x values, mean and standard deviation of the metric at each."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def pretext_colours(pretexts: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A stable colour per pretext (tab10, in sorted order) so that panels and figures agree."""
    palette = matplotlib.colormaps["tab10"].colors
    return {name: palette[index % len(palette)] for index, name in enumerate(sorted(pretexts))}


def _panel_grid(keys: Sequence[PanelKey]) -> tuple[Figure, dict[PanelKey, Axes], list[str], list[str]]:
    """A figure with metrics as rows and tasks as columns, and the axes of each (metric, task)."""
    metrics = list(dict.fromkeys(metric for metric, _ in keys))
    tasks = sorted({task for _, task in keys})
    figure = Figure(figsize=(3.6 * len(tasks) + 1.2, 3.2 * len(metrics)))
    axes = figure.subplots(len(metrics), len(tasks), squeeze=False)
    grid = {(metric, task): axes[row, col] for row, metric in enumerate(metrics) for col, task in enumerate(tasks)}
    for (metric, task), ax in grid.items():
        ax.set_title(task if metric == metrics[0] else "")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) if task == tasks[0] else "")
        ax.grid(axis="y", alpha=0.3)
        if (metric, task) not in keys:
            ax.set_visible(False)
    return figure, grid, metrics, tasks


def _save(figure: Figure, path: Path) -> Path:
    """Write the figure as PNG, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, format="png")
    return path


def plot_bootstrap_dots(
    panels: Mapping[PanelKey, Mapping[str, np.ndarray]],
    path: Path,
    published: Mapping[PanelKey, Mapping[str, Sequence[tuple[str, float]]]] | None = None,
) -> Path:
    """Figure 1 style: per (metric, task) panel and pretext, bootstrap values as dots, mean +- std marker;
    ``published`` (panel -> pretext -> [(source label, value)]) adds a red bar and its label per figure."""
    if not panels:
        raise ValueError("plot_bootstrap_dots needs at least one (metric, task) panel")
    figure, grid, _, _ = _panel_grid(list(panels))
    colours = pretext_colours({pretext for values in panels.values() for pretext in values})
    jitter = np.random.default_rng(0)
    for key, by_pretext in panels.items():
        ax = grid[key]
        names = sorted(by_pretext)
        for position, name in enumerate(names):
            values = by_pretext[name]
            offsets = jitter.uniform(-0.18, 0.18, size=len(values))
            ax.scatter(position + offsets, values, s=9, alpha=0.45, color=colours[name], linewidths=0)
            ax.errorbar(position + 0.32, values.mean(), yerr=values.std(), fmt="D", color="black", ms=5, capsize=3)
            for label, value in (published or {}).get(key, {}).get(name, ()):
                ax.hlines(value, position - 0.3, position + 0.3, color=PUBLISHED_COLOUR, linewidth=2)
                ax.annotate(label, (position + 0.3, value), fontsize=6, color=PUBLISHED_COLOUR, va="center")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_xlim(-0.6, len(names) - 0.2)
    figure.tight_layout()
    return _save(figure, path)


def plot_curves(
    panels: Mapping[PanelKey, Mapping[str, Curve]],
    path: Path,
    x_label: str,
    x_tick_labels: Mapping[float, str] | None = None,
    log_x: bool = True,
    references: Mapping[PanelKey, Mapping[str, Mapping[str, Curve]]] | None = None,
) -> Path:
    """Metric against x per (metric, task) panel: mean line and +-std band per pretext; log x if asked;
    ``references`` (panel -> pretext -> source label -> points) adds the published figures, dashed."""
    if not panels:
        raise ValueError("plot_curves needs at least one (metric, task) panel")
    figure, grid, metrics, _ = _panel_grid(list(panels))
    colours = pretext_colours({pretext for curves in panels.values() for pretext in curves})
    for (metric, task), curves in panels.items():
        ax = grid[(metric, task)]
        for name in sorted(curves):
            curve = curves[name]
            order = np.argsort(curve.x)
            x, mean, std = curve.x[order], curve.mean[order], curve.std[order]
            ax.plot(x, mean, marker="o", ms=4, color=colours[name], label=name)
            ax.fill_between(x, mean - std, mean + std, color=colours[name], alpha=0.2, linewidth=0)
        published = (references or {}).get((metric, task), {})
        for name, by_source in published.items():
            for label, points in by_source.items():
                order = np.argsort(points.x)
                x, mean = points.x[order], points.mean[order]
                colour = colours.get(name, PUBLISHED_COLOUR)
                ax.plot(x, mean, linestyle="--", marker="*", ms=8, color=colour, markerfacecolor="none")
                ax.annotate(f"{name}: {label}", (x[-1], mean[-1]), fontsize=6, color=colour)
        shown = [*curves.values(), *(p for by_source in published.values() for p in by_source.values())]
        ticks = sorted({float(value) for curve in shown for value in curve.x})
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(ticks, [x_tick_labels.get(t, f"{t:g}") if x_tick_labels else f"{t:g}" for t in ticks])
        ax.minorticks_off()
        if metric == metrics[-1]:
            ax.set_xlabel(x_label)
    handles = [Line2D([], [], color=colour, marker="o", ms=4, label=name) for name, colour in colours.items()]
    if references:
        handles.append(
            Line2D([], [], color="grey", linestyle="--", marker="*", markerfacecolor="none", label="published")
        )
    figure.legend(handles=handles, loc="center right", frameon=False)
    figure.tight_layout(rect=(0, 0, 0.82, 1))
    return _save(figure, path)


@dataclass(frozen=True)
class Interval:
    """A difference with its interval, labelled with what was compared ('a - b')."""

    label: str
    value: float
    low: float
    high: float


def plot_differences(panels: Mapping[PanelKey, Sequence[Interval]], path: Path) -> Path:
    """Per (metric, task) panel: one row per compared pair, its difference and interval, a line at 0."""
    if not panels:
        raise ValueError("plot_differences needs at least one (metric, task) panel")
    metrics = list(dict.fromkeys(metric for metric, _ in panels))
    tasks = sorted({task for _, task in panels})
    rows = max(len(intervals) for intervals in panels.values())
    figure = Figure(figsize=(4.6 * len(tasks) + 2.0, (0.45 * rows + 1.3) * len(metrics)))
    axes = figure.subplots(len(metrics), len(tasks), squeeze=False)
    for row, metric in enumerate(metrics):
        for col, task in enumerate(tasks):
            ax = axes[row, col]
            intervals = panels.get((metric, task))
            if not intervals:
                ax.set_visible(False)
                continue
            positions = np.arange(len(intervals))[::-1]
            for position, interval in zip(positions, intervals, strict=True):
                colour = "tab:green" if interval.low > 0 else "tab:red" if interval.high < 0 else "tab:gray"
                error = [[interval.value - interval.low], [interval.high - interval.value]]
                ax.errorbar(interval.value, position, xerr=error, fmt="o", color=colour, capsize=3)
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.set_yticks(positions, [interval.label for interval in intervals])
            ax.set_ylim(-0.7, len(intervals) - 0.3)
            ax.set_title(f"{task}: {METRIC_LABELS.get(metric, metric)}", fontsize=9)
            ax.set_xlabel("difference, points (bar: 95 % interval)")
            ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)
