"""Compare downstream evaluation runs stored in MLflow: a table and the papers' figures, as files + artifacts.

    python -m downstream.compare [--experiment downstream] [--out comparison] [--view tagwise]
                                 [--sweep thesis-batch-size pretrain_epochs ...] [--where protocol=paper ...]

Writes, under --out, and logs as artifacts of a run tagged `musicssl.kind` = `comparison`:
- `table.md` / `table.csv`: pretext x task, mean +- std of the bootstrap values (also printed), with a
  "published" column where configs/references.toml holds a figure for the runs' task and setting;
- `bootstrap.png`: Figure 1 of the ICASSP paper, a dot per bootstrap resample and the mean, per task/metric;
- `limited_data.png`: Figure 2, metric vs training fraction, mean +- std over draws (only if such runs exist);
- `sweep_<name>.md` / `.csv` / `.png`: for a sweep of configs/sweeps (`downstream.sweeps`: its runs, against
  its param) or a run param (every run that has it), a table per pretext and probe (the 2-layer probe is a series
  of its own) and value, with the published figures of each point, and for a numeric param a figure of the
  metrics against it (thesis Figures 4.1, 4.2, B.1; Table B.2 is a table only);
- `differences.md` / `differences.csv` / `differences.png`: for every two full-data evaluations of one task on
  the same test tracks, the paired difference of each metric with its 95 % interval and one-sided p-value
  (`downstream.paired`; also printed: "contrastive - random: +2.1 (95 % CI +0.8..+3.4, p = 0.001)"). Random
  weights are always the second of a pair; otherwise the better one on the whole test set comes first.

Published figures (`downstream.references`) are drawn next to the runs they match, as red bars in Figure 1 and
dashed lines in the sweeps, labelled with their table; the sources and notes are printed under the table.

Full-data results (table, Figure 1, sweeps) pool the bootstrap values of every matching run at fraction 1
(e.g. several checkpoints or draws of one pretext); narrow the selection with --where PARAM=VALUE.
Limited-data curves use each run's bootstrap mean, and the spread over the draws.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

from data_prep.entry import run_command
from downstream.paired import PairedConfig, PairedDifference, paired_bootstrap
from downstream.plots import (
    METRIC_LABELS,
    Curve,
    Interval,
    PanelKey,
    plot_bootstrap_dots,
    plot_curves,
    plot_differences,
)
from downstream.references import (
    REFERENCES_FILE,
    Published,
    Reference,
    common_params,
    is_number,
    load_references,
    probe_kind,
    published_for,
)
from downstream.sweeps import SWEEP_PARAM, available_sweeps, load_sweep
from downstream.tracking import (
    DEFAULT_EXPERIMENT,
    KIND_TAG,
    RANDOM_PRETEXT,
    EvaluationRecord,
    load_evaluations,
    parse_params,
)
from trainer.tracking import ending_run, get_or_create_experiment, tracking_uri

View = Literal["tagwise", "clipwise"]
MAX_PAIRED_RUNS = 12  # per task: beyond this the pairs are too many to read; narrow the runs with --where


@dataclass(frozen=True)
class CompareArgs:
    """Compare downstream evaluation runs: summary table, bootstrap figure, limited-data curves, sweeps."""

    experiment: str = DEFAULT_EXPERIMENT
    """MLflow experiment holding the evaluation runs."""
    out: Path = Path("comparison")
    """Folder for the table and the PNG figures."""
    uri: str | None = None
    """Tracking URI; default MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."""
    view: View = "tagwise"
    """Average per tag over tracks (tagwise, the papers' macro) or per track over tags (clipwise)."""
    sweep: tuple[str, ...] = ()
    """Sweeps of configs/sweeps (e.g. thesis-batch-size: the runs slurm/sweep.sh tracked, against the sweep's
    param) or run params (e.g. pretrain_epochs embed_dim) to tabulate and plot the metrics against."""
    where: tuple[str, ...] = ()
    """Keep only runs whose params match, e.g. protocol=paper checkpoint=runs/vicreg/last.pt."""
    log_run: bool = True
    """Log the outputs as artifacts of a comparison run in the same experiment."""
    paired_resamples: int = 1000
    """Resamples (with replacement) of the test tracks for the paired differences between evaluations."""
    references: Path | None = REFERENCES_FILE
    """Published figures to draw next to the runs of the same task and setting; None: none."""


@dataclass(frozen=True)
class SummaryRow:
    """Mean and std of one metric for one (pretext, task), over the pooled bootstrap values."""

    pretext: str
    task: str
    metric: str
    mean: float
    std: float
    num_values: int


def view_metrics(view: View) -> tuple[str, str]:
    """The ROC-AUC and PR-AUC metric names of a view."""
    return (f"roc_auc_{view}", f"pr_auc_{view}")


def select(records: Iterable[EvaluationRecord], where: Mapping[str, str]) -> list[EvaluationRecord]:
    """The records whose params equal every given value."""
    return [record for record in records if all(record.params.get(k) == v for k, v in where.items())]


def full_data(records: Iterable[EvaluationRecord]) -> list[EvaluationRecord]:
    """The records trained on the whole training set."""
    return [record for record in records if float(record.params["fraction"]) == 1.0]


def group(records: Iterable[EvaluationRecord], *params: str) -> dict[tuple[str, ...], list[EvaluationRecord]]:
    """Records grouped by the values of some params, groups in sorted order."""
    groups: dict[tuple[str, ...], list[EvaluationRecord]] = defaultdict(list)
    for record in records:
        groups[tuple(record.params[name] for name in params)].append(record)
    return dict(sorted(groups.items()))


def pooled(records: Sequence[EvaluationRecord], metric: str) -> np.ndarray:
    """Bootstrap values of a metric from all the records, concatenated (NaN values dropped)."""
    values = np.concatenate([record.resamples[metric] for record in records])
    return values[~np.isnan(values)]


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


def run_comparison(args: CompareArgs) -> list[Path]:
    """Load the runs, write the table and figures under args.out, print the table, return the file paths."""
    records = select(load_evaluations(args.experiment, args.uri), parse_params(args.where, "--where"))
    if not records:
        raise ValueError(
            f"no evaluation runs in experiment {args.experiment!r} match --where {list(args.where)}: "
            "log evaluations first (evaluate.py) or relax the filter"
        )
    metrics = view_metrics(args.view)
    references = load_references(args.references) if args.references is not None else []
    paths: list[Path] = []
    dots = bootstrap_panels(records, metrics)
    if dots:
        rows = summary_rows(dots)
        published = published_cells(records, metrics, references)
        print(markdown_table(rows, published))
        print(sources_text(published.values()))
        paths += write_table(rows, args.out, published)
        bars = {(metric, task): {} for (_, task, metric) in published}
        for (pretext, task, metric), figures in published.items():
            bars[(metric, task)][pretext] = [(figure.reference.label, figure.value) for figure in figures]
        paths.append(plot_bootstrap_dots(dots, args.out / "bootstrap.png", bars))
    paired = paired_rows(records, metrics, PairedConfig(num_resamples=args.paired_resamples))
    if paired:
        print("Paired differences on the same test tracks (bootstrap with replacement):")
        print(paired_text(paired))
        paths += write_paired(paired, args.out)
    limited = limited_data_panels(records, metrics)
    if limited:
        ticks = {fraction: f"{100 * fraction:g} %" for fraction in (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)}
        paths.append(plot_curves(limited, args.out / "limited_data.png", "training data", x_tick_labels=ticks))
    for name in args.sweep:
        paths += sweep_outputs(records, name, metrics, references, args.out)
    return paths


def log_comparison(args: CompareArgs, paths: Sequence[Path]) -> str:
    """Log the comparison outputs as artifacts of a new run tagged as a comparison; return its id."""
    import mlflow

    client = mlflow.MlflowClient(args.uri or tracking_uri())
    experiment_id = get_or_create_experiment(client, args.experiment)
    run_id = client.create_run(experiment_id, run_name="comparison", tags={KIND_TAG: "comparison"}).info.run_id
    with ending_run(client, run_id):
        for name, value in (
            ("view", args.view),
            ("sweep", ",".join(args.sweep)),
            ("where", ",".join(args.where)),
        ):
            client.log_param(run_id, name, value)
        for path in paths:
            client.log_artifact(run_id, str(path))
    return run_id


def main(argv: list[str] | None = None) -> int:
    """Produce the comparison and print where each file went."""
    args = tyro.cli(CompareArgs, args=argv)
    paths = run_comparison(args)
    for path in paths:
        print(f"wrote {path}")
    if args.log_run and paths:
        print(f"logged as artifacts of comparison run {log_comparison(args, paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
