"""The model card (`README.md`) of a pretrained folder, generated from what is known about the backbone.

Always: the recipe (backbone name, input, embedding size, settings), the provenance (pretext, MLflow run id, the
weights' sha256) and how to load it. Best effort, from MLflow when a tracking store answers: the pre-training run's
params (study, data, epochs, steps, batch size) and the evaluation runs of these weights (`downstream.tracking`:
found by `pretrain_run_id` or by `weights_sha256`), each metric as bootstrap mean +- std with its 95 % percentile
interval over the resamples. What could not be found is said in the card, never raised.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from musicssl.downstream.tracking import BOOTSTRAP_ARTIFACT, KIND_TAG, read_resamples
from musicssl.trainer.export import PRETEXT_KEY, RUN_ID_KEY, BackboneRecipe
from musicssl.trainer.tracking import REMOTE_SCHEMES, check_tracking_server

CARD_METRICS = (
    ("roc_auc_tagwise", "ROC-AUC tag"),
    ("pr_auc_tagwise", "PR-AUC tag"),
    ("roc_auc_clipwise", "ROC-AUC clip"),
    ("pr_auc_clipwise", "PR-AUC clip"),
)
RUN_PARAMS = ("study", "pretext", "backbone", "data", "epochs", "steps_per_epoch", "batch_size", "grad_accum", "seed")
INTERVAL_LEVEL = 95.0


@dataclass(frozen=True)
class Evaluation:
    """One evaluation run of the weights: its setting and, per metric, (mean, std, interval low, interval high)."""

    run_id: str
    task: str
    protocol: str
    fraction: str
    draw: str
    scores: dict[str, tuple[float, float, float, float]]


@dataclass
class TrackedFacts:
    """What MLflow says about the weights; `missing` says, in words, what could not be found and why."""

    run_params: dict[str, str] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def store_unreachable(uri: str) -> str | None:
    """Why the tracking store cannot be read (a missing sqlite file is never created), or None."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        return None if path.is_file() else f"no MLflow store at {uri}"
    if parsed.scheme in REMOTE_SCHEMES:
        try:
            check_tracking_server(uri)
        except Exception as error:
            return str(error)
    return None


def tracked_facts(uri: str, run_id: str | None, weights_sha256: str) -> TrackedFacts:
    """The pre-training run's params and the evaluation runs of these weights, as far as MLflow at `uri` has them."""
    facts = TrackedFacts()
    reason = store_unreachable(uri)
    if reason is not None:
        facts.missing.append(f"MLflow was not read: {reason}")
        return facts
    import mlflow

    client = mlflow.MlflowClient(uri)
    if run_id is None:
        facts.missing.append("pre-training run: no MLflow run id is recorded with these weights")
    else:
        try:
            params = client.get_run(run_id).data.params
            facts.run_params = {name: params[name] for name in RUN_PARAMS if name in params}
        except Exception as error:
            facts.missing.append(f"pre-training run {run_id}: not found at {uri} ({first_line(error)})")
    try:
        facts.evaluations = find_evaluations(client, run_id, weights_sha256)
    except Exception as error:
        facts.missing.append(f"evaluation runs: could not be read at {uri} ({first_line(error)})")
    if not facts.evaluations and not any(line.startswith("evaluation") for line in facts.missing):
        facts.missing.append(f"evaluation runs: none at {uri} for these weights (evaluate.py logs them)")
    return facts


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def find_evaluations(client: Any, run_id: str | None, weights_sha256: str) -> list[Evaluation]:
    """Evaluation runs in any experiment whose weights are these: by pre-training run id, or by weights hash."""
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiments:
        return []
    filters = [f"params.weights_sha256 = '{weights_sha256}'"]
    if run_id is not None:
        filters.append(f"params.pretrain_run_id = '{run_id}'")
    runs = {}
    for condition in filters:
        for run in client.search_runs(experiments, filter_string=f"tags.`{KIND_TAG}` = 'evaluation' and {condition}"):
            if run.data.params.get("random_init", "False") != "True":
                runs[run.info.run_id] = run
    evaluations = [evaluation_of(client, run) for run in runs.values()]
    return sorted(evaluations, key=lambda e: (e.task, e.protocol, -float(e.fraction or 0), e.draw, e.run_id))


def evaluation_of(client: Any, run: Any) -> Evaluation:
    """A run's setting and scores; the interval comes from its bootstrap.csv (mean +- 1.96 std without it)."""
    params, metrics = run.data.params, run.data.metrics
    try:
        with tempfile.TemporaryDirectory() as folder:
            resamples = read_resamples(Path(client.download_artifacts(run.info.run_id, BOOTSTRAP_ARTIFACT, folder)))
    except Exception:
        resamples = {}
    tail = (100.0 - INTERVAL_LEVEL) / 2
    scores = {}
    for name, _ in CARD_METRICS:
        if f"{name}_mean" not in metrics:
            continue
        mean, std = metrics[f"{name}_mean"], metrics.get(f"{name}_std", float("nan"))
        values = resamples.get(name, np.array([]))
        values = values[~np.isnan(values)]
        low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (mean - 1.96 * std, mean + 1.96 * std)
        scores[name] = (mean, std, float(low), float(high))
    return Evaluation(
        run.info.run_id,
        params.get("task", "?"),
        params.get("protocol", "?"),
        params.get("fraction", "?"),
        params.get("draw", "?"),
        scores,
    )


def render_card(
    title: str,
    recipe: BackboneRecipe,
    sizes: dict[str, int],
    provenance: dict[str, str],
    weights_sha256: str,
    facts: TrackedFacts,
) -> str:
    """The card's Markdown, with the Hugging Face metadata header (library and tags)."""
    pretext = provenance.get(PRETEXT_KEY, "unknown")
    seconds = sizes["num_samples"] / sizes["sample_rate"]
    lines = [
        "---",
        "library_name: musicssl",
        f"tags: [audio, music, self-supervised, embeddings, {recipe.name}, {pretext}]",
        "---",
        "",
        f"# {title}",
        "",
        f"A frozen music backbone (`{recipe.name}`) pre-trained with the self-supervised pretext `{pretext}` by "
        "musicssl. It maps a mono window of audio to one embedding; a track's embedding is the mean of its windows'.",
        "",
        "## Use",
        "",
        "```python",
        "from musicssl.downstream.pretrained import from_pretrained",
        "backbone, recipe = from_pretrained('FOLDER')  # eval mode; backbone(waves) -> (batch, embed_dim)",
        "```",
        "",
        "The folder is accepted wherever a backbone file is: `python evaluate.py --backbone FOLDER --data SHARDS`, "
        "`python -m downstream.embed_files --backbone FOLDER AUDIO... --out emb.parquet`.",
        "",
        "## Backbone",
        "",
        "| | |",
        "| --- | --- |",
        f"| backbone | `{recipe.name}` |",
        f"| input | mono, {sizes['sample_rate']} Hz, windows of {sizes['num_samples']} samples ({seconds:g} s) |",
        f"| embedding | {sizes['embed_dim']}-d |",
        f"| settings | `{json.dumps(recipe.kwargs, sort_keys=True)}` |",
        "",
        "## Provenance",
        "",
        f"- pretext: `{pretext}`",
        f"- MLflow run id: `{provenance.get(RUN_ID_KEY, 'not recorded')}`",
        f"- weights sha256 (recipe and tensors, as evaluate.py logs it): `{weights_sha256}`",
    ]
    if facts.run_params:
        lines += ["", "## Pre-training run", "", "| param | value |", "| --- | --- |"]
        lines += [f"| {name} | `{value}` |" for name, value in facts.run_params.items()]
        epochs, steps = facts.run_params.get("epochs", ""), facts.run_params.get("steps_per_epoch", "")
        if epochs.isdigit() and steps.isdigit():
            lines += [f"| steps | {int(epochs) * int(steps)} |"]
    if facts.evaluations:
        lines += ["", "## Evaluation", "", render_evaluations(facts.evaluations)]
    if facts.missing:
        lines += ["", "## Not found", ""] + [f"- {line}" for line in facts.missing]
    return "\n".join(lines) + "\n"


def render_evaluations(evaluations: list[Evaluation]) -> str:
    """One row per probe run: each metric as mean +- std [95 % interval] over the test-set bootstrap."""
    header = ["task", "protocol", "fraction", "draw", *(label for _, label in CARD_METRICS), "MLflow run"]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for evaluation in evaluations:
        cells = [evaluation.task, evaluation.protocol, evaluation.fraction, evaluation.draw]
        for name, _ in CARD_METRICS:
            if name in evaluation.scores:
                mean, std, low, high = evaluation.scores[name]
                cells.append(f"{mean:.2f} +- {std:.2f} [{low:.2f}, {high:.2f}]")
            else:
                cells.append("-")
        rows.append("| " + " | ".join([*cells, f"`{evaluation.run_id}`"]) + " |")
    note = f"\nMacro scores x100: mean +- std over the test-set bootstrap resamples [{INTERVAL_LEVEL:g} % interval]."
    return "\n".join(rows) + "\n" + note
