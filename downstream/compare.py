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
  the same test tracks, the paired difference of each metric of the view and of the embeddings' precision@10 of a
  shared tag (`downstream.metrics`) with its 95 % interval and one-sided p-value
  (`downstream.paired`; also printed: "contrastive - random: +2.1 (95 % CI +0.8..+3.4, p = 0.001)"). Random
  weights are always the second of a pair; otherwise the better one on the whole test set comes first.

Published figures (`downstream.references`) are drawn next to the runs they match, as red bars in Figure 1 and
dashed lines in the sweeps, labelled with their table; the sources and notes are printed under the table.

Full-data results (table, Figure 1, sweeps) pool the bootstrap values of every matching run at fraction 1
(e.g. several checkpoints or draws of one pretext); narrow the selection with --where PARAM=VALUE.
Limited-data curves use each run's bootstrap mean, and the spread over the draws.

This module is the command line; the work is in `downstream.selection` (which runs), `downstream.summary_table`,
`downstream.differences` (paired) and `downstream.sweep_report` (limited-data curves and sweeps).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from musicssl.data_prep.entry import run_command
from musicssl.downstream.differences import paired_rows, paired_text, write_paired
from musicssl.downstream.metrics import PRECISION_AT_K
from musicssl.downstream.paired import PairedConfig
from musicssl.downstream.plots import plot_bootstrap_dots, plot_curves
from musicssl.downstream.references import REFERENCES_FILE, load_references
from musicssl.downstream.selection import select
from musicssl.downstream.summary_table import (
    bootstrap_panels,
    markdown_table,
    published_cells,
    sources_text,
    summary_rows,
    write_table,
)
from musicssl.downstream.sweep_report import limited_data_panels, sweep_outputs
from musicssl.downstream.tracking import DEFAULT_EXPERIMENT, KIND_TAG, load_evaluations, parse_params
from musicssl.trainer.tracking import ending_run, get_or_create_experiment, tracking_uri

View = Literal["tagwise", "clipwise"]


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


def view_metrics(view: View) -> tuple[str, str]:
    """The ROC-AUC and PR-AUC metric names of a view."""
    return (f"roc_auc_{view}", f"pr_auc_{view}")


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
    paired = paired_rows(records, (*metrics, PRECISION_AT_K), PairedConfig(num_resamples=args.paired_resamples))
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


def cli() -> int:
    """The console script `musicssl-compare` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
