"""Sweeps: a study's series of pre-trainings (configs/sweeps/NAME.toml), each run a preset plus overrides.

`slurm/sweep.sh` runs index $SLURM_ARRAY_TASK_ID of a sweep: `train-flags` gives its train.py flags, and once
the pre-training is done `evaluate` probes the backbone (an epochs sweep: each checkpoint the sweep names) with
each of the sweep's probes. Every evaluation run carries the params `sweep` (the sweep's name), the swept
param's value, and the settings the published figures are keyed by (pretrain_data, pretrain_epochs,
batch_size), so that `python -m downstream.compare --sweep NAME` draws the study's figure and table from the
tracked runs next to the figures of configs/references.toml.

    python -m downstream.sweeps list thesis-batch-size          # the runs and the --array range to submit
    python -m downstream.sweeps train-flags thesis-batch-size 4  # one flag a line
    python -m downstream.sweeps evaluate thesis-batch-size 4 --data shards/mtat
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from musicssl.data_prep.entry import config_dir, run_command
from musicssl.data_prep.subcommands import run_subcommand
from musicssl.downstream.cli import EvaluateArgs, evaluate, format_table
from musicssl.trainer.checkpoints import checkpoint_name, list_checkpoints
from musicssl.trainer.cli import parse_config
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.loop import CONFIG_NAME
from musicssl.trainer.presets import apply_overrides
from musicssl.trainer.run_parts import backbone_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEP_DIR = config_dir() / "sweeps"
SWEEP_PARAM = "sweep"
"""Run param naming the sweep an evaluation belongs to."""
Probe = Literal["linear", "mlp"]
"""linear: one layer; mlp: two, the hidden layer as wide as the representation (thesis 3.3.3)."""


@dataclass(frozen=True)
class SweepRun:
    """One pre-training of a sweep: a preset, the settings it changes (nested as in a preset), the swept value."""

    preset: str
    overrides: dict[str, Any]
    value: str | None
    """The swept param's value, logged with its evaluations; None in an epochs sweep (one per checkpoint)."""


@dataclass(frozen=True)
class Sweep:
    """A sweep file: its runs, the param they are drawn against, and how each run is evaluated."""

    name: str
    description: str
    param: str
    pretrain_data: str
    task: str
    protocol: Literal["paper", "thesis", "marble"]
    probes: tuple[Probe, ...]
    runs: tuple[SweepRun, ...]
    evaluate_epochs: tuple[int, ...] = ()
    """Evaluate the checkpoints kept at these epochs (an epochs sweep) instead of the final backbone."""

    def config(self, index: int) -> TrainConfig:
        """The full pre-training config of run `index`, with its own output folder and MLflow run name."""
        run = self.run(index)
        config, _ = parse_config(["--preset", run.preset])
        config = apply_overrides(config, run.overrides, where=f"sweep {self.name} run {index}")
        label = config.pretext if run.value is None else f"{config.pretext}-{run.value}"
        return dataclasses.replace(
            config, output_dir=f"runs/sweeps/{self.name}/{label}", run_name=f"{self.name}/{label}"
        )

    def run(self, index: int) -> SweepRun:
        if not 0 <= index < len(self.runs):
            raise ValueError(f"sweep {self.name} has runs 0-{len(self.runs) - 1}, not {index}")
        return self.runs[index]


def available_sweeps() -> list[str]:
    return sorted(path.stem for path in SWEEP_DIR.glob("*.toml"))


def load_sweep(name: str) -> Sweep:
    """The sweep configs/sweeps/NAME.toml, checked: every run loads, has a value unless the sweep is over
    checkpoints, has its own output folder, and keeps the checkpoints the sweep evaluates."""
    path = SWEEP_DIR / f"{name}.toml"
    if not path.exists():
        raise ValueError(f"no sweep {name!r}; sweeps: {available_sweeps()}")
    with path.open("rb") as handle:
        body = tomllib.load(handle)
    evaluate_with = body["evaluate"]
    sweep = Sweep(
        name=name,
        description=body["description"],
        param=body["param"],
        pretrain_data=body["pretrain_data"],
        task=evaluate_with["task"],
        protocol=evaluate_with["protocol"],
        probes=tuple(evaluate_with["probes"]),
        runs=tuple(
            SweepRun(run["preset"], run.get("set", {}), None if "value" not in run else str(run["value"]))
            for run in body["run"]
        ),
        evaluate_epochs=tuple(body.get("evaluate_epochs", ())),
    )
    configs = [sweep.config(index) for index in range(len(sweep.runs))]
    for index, (run, config) in enumerate(zip(sweep.runs, configs, strict=True)):
        if (run.value is None) != bool(sweep.evaluate_epochs):
            raise ValueError(f"{path}: run {index} needs a value, unless the sweep has evaluate_epochs (then none)")
        missing = sorted(set(sweep.evaluate_epochs) - {*config.checkpoint.keep_epochs, config.epochs})
        if missing or any(epoch > config.epochs for epoch in sweep.evaluate_epochs):
            raise ValueError(f"{path}: run {index} ({config.epochs} epochs) keeps no checkpoint at epochs {missing}")
    folders = [config.output_dir for config in configs]
    if len(set(folders)) != len(folders):
        raise ValueError(f"{path}: two runs share an output folder: {folders}")
    return sweep


def override_flags(config: Any, overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """train.py flags that set the (nested) overrides on top of `config`, the way tyro spells them."""
    hints = typing.get_type_hints(type(config))
    flags: list[str] = []
    for key, value in overrides.items():
        name = f"{prefix}{key.replace('_', '-')}"
        if isinstance(value, dict):
            flags += override_flags(getattr(config, key), value, f"{name}.")
        elif hints[key] is bool:  # a plain bool is a switch: --name / --no-name
            flags.append(f"--{name}" if value else f"--{prefix}no-{key.replace('_', '-')}")
        elif isinstance(value, list):
            flags += [f"--{name}", *(str(item) for item in value)]
        else:
            flags += [f"--{name}", str(value)]
    return flags


def train_flags(sweep: Sweep, index: int) -> list[str]:
    """The train.py flags of run `index` (the data location is the job's)."""
    run, config = sweep.run(index), sweep.config(index)
    return [
        "--preset",
        run.preset,
        *override_flags(TrainConfig(), run.overrides),
        "--output-dir",
        config.output_dir,
        "--run-name",
        str(config.run_name),
    ]


def epoch_checkpoint(output_dir: Path, epoch: int) -> Path:
    """The checkpoint kept at the end of `epoch`, at the epoch length the run resolved (its config.json)."""
    found = list_checkpoints(output_dir / "checkpoints")
    if not found:
        raise FileNotFoundError(f"{output_dir / 'checkpoints'}: no checkpoint; pre-train the run first")
    steps_per_epoch = json.loads((found[-1][1] / CONFIG_NAME).read_text())["steps_per_epoch"]
    path = output_dir / "checkpoints" / checkpoint_name(epoch * steps_per_epoch)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no checkpoint of epoch {epoch}; keep it with --checkpoint.keep-epochs")
    return path


def evaluations(sweep: Sweep, index: int, data: str, tags: Path | None = None) -> list[EvaluateArgs]:
    """The evaluate.py runs of run `index` on the labelled set `data`: each backbone (the final one, or each
    evaluated epoch's checkpoint) with each probe, tagged with the sweep and the settings of the published
    figures."""
    run, config = sweep.run(index), sweep.config(index)
    output_dir = Path(config.output_dir)
    params = {SWEEP_PARAM: sweep.name, "pretrain_data": sweep.pretrain_data, "batch_size": config.batch_size}
    if run.value is not None:
        params[sweep.param] = run.value
    if sweep.evaluate_epochs:
        backbones = [(str(epoch_checkpoint(output_dir, epoch)), epoch) for epoch in sweep.evaluate_epochs]
    else:
        backbones = [(str(output_dir / "backbone.safetensors"), config.epochs)]
    representation = backbone_recipe(config).build().embed_dim  # the mlp probe's hidden width (thesis 3.3.3)
    return [
        EvaluateArgs(
            backbone=backbone,
            data=data,
            task=sweep.task,
            tags=tags,
            protocol=sweep.protocol,
            hidden_dim=representation if probe == "mlp" else None,
            pretext=config.pretext,
            param=tuple(f"{key}={value}" for key, value in (params | {"pretrain_epochs": epochs}).items()),
        )
        for backbone, epochs in backbones
        for probe in sweep.probes
    ]


SweepName = Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SWEEP")]
RunIndex = Annotated[int, tyro.conf.Positional, tyro.conf.arg(metavar="INDEX")]


@dataclass
class List:
    """The runs of a sweep, one a line, and the sbatch command that submits them all."""

    name: SweepName

    def run(self) -> int:
        sweep = load_sweep(self.name)
        print(f"{sweep.name}: {sweep.description}; against {sweep.param}")
        for index in range(len(sweep.runs)):
            config = sweep.config(index)
            print(f"{index}: {sweep.runs[index].preset} -> {config.output_dir} ({config.epochs} epochs)")
        print(f"sbatch --array=0-{len(sweep.runs) - 1} slurm/sweep.sh {sweep.name} PRETRAIN_SHARDS EVAL_SHARDS")
        return 0


@dataclass
class TrainFlags:
    """The train.py flags of one run, one a line (read by slurm/sweep.sh)."""

    name: SweepName
    index: RunIndex

    def run(self) -> int:
        print("\n".join(train_flags(load_sweep(self.name), self.index)))
        return 0


@dataclass
class Evaluate:
    """Probe one pre-trained run of a sweep with each of its probes, logging every probe to MLflow."""

    name: SweepName
    index: RunIndex
    data: str
    """Labelled shard set of the sweep's task (e.g. MTAT from `python -m data_prep.datasets mtat`)."""
    tags: Path | None = None
    """Tag vocabulary file of the task (the adapter's tags.txt); default: the set's tags."""

    def run(self) -> int:
        for args in evaluations(load_sweep(self.name), self.index, self.data, self.tags):
            print(format_table(evaluate(args)))
        return 0


COMMANDS = {"list": List, "train-flags": TrainFlags, "evaluate": Evaluate}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; 2 for a sweep or run that does not exist."""
    return run_subcommand(COMMANDS, argv, "python -m downstream.sweeps")


def cli() -> int:
    """The console script `musicssl-sweeps` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
