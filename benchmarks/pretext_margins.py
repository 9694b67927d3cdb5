"""Does pre-training beat random weights on the demo corpus? The paired margin per pretext and training seed.

Runs `make demo`'s path once per pretext and seed: the demo corpus (built once), `train.py --preset demo
--pretext P --seed S`, then the same probe (`evaluate.py`'s settings in the Makefile: 10 epochs x 32 steps) on the
pre-trained backbone and on the architecture with random weights (seed S), and the paired bootstrap of the
difference on the same test tracks (`downstream.paired`). A recipe holds for a seed when the interval of the
tag-wise ROC-AUC difference lies above 0. The run's last collapse diagnostics are printed beside it.

    .venv/bin/python -m benchmarks.pretext_margins --seeds 3                           # every pretext
    .venv/bin/python -m benchmarks.pretext_margins --seeds 3 --pretexts contrastive    # the demo's claim
    .venv/bin/python -m benchmarks.pretext_margins --seeds 3 --json                    # machine-readable
    .venv/bin/python -m benchmarks.pretext_margins "--train-flags=--optim.base-lr 3e-2"   # other settings
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import tyro

from benchmarks.harness import print_json
from musicssl.downstream.cli import EvaluateArgs, evaluate
from musicssl.downstream.evaluation import EvaluationResult
from musicssl.downstream.paired import PairedConfig, paired_bootstrap
from musicssl.downstream.tracking import RANDOM_PRETEXT
from musicssl.trainer.pretexts import PRETEXTS

REPO = Path(__file__).resolve().parents[1]
PROBE_EPOCHS, PROBE_STEPS = 10, 32  # the Makefile's PROBE settings
METRICS = ("roc_auc_tagwise", "pr_auc_tagwise")


@dataclass
class Args:
    """Benchmark settings."""

    seeds: int = 3
    """How many training seeds: first_seed, first_seed + 1, ..."""
    first_seed: int = 0
    pretexts: tuple[str, ...] = tuple(PRETEXTS)
    """Pretexts to train, each with the demo preset's recipe for it."""
    work: Path | None = None
    """Folder for the corpus, runs and MLflow store (kept; an existing corpus is reused); default: a temp folder."""
    train_flags: str = ""
    """Extra train.py flags after `--preset demo`, as one string, to try other settings."""
    corpus_flags: str = ""
    """Extra `python -m data_prep.demo` flags as one string (e.g. "--tracks 240"); use a new --work to change them."""
    paired_resamples: int = 1000
    json: bool = False


@dataclass
class SeedMargin:
    """One pretext and training seed: training time, last collapse diagnostics and the paired differences
    (pre-trained - random) per metric."""

    pretext: str
    seed: int
    train_seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)
    pretrained: dict[str, float] = field(default_factory=dict)
    random: dict[str, float] = field(default_factory=dict)
    difference: dict[str, dict[str, float]] = field(default_factory=dict)


def run(command: list[str], cwd: Path) -> None:
    """Run a command of the project with this interpreter; fail loudly with its output."""
    done = subprocess.run([sys.executable, *command], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def ensure_corpus(work: Path, corpus_flags: str) -> Path:
    """The demo corpus as shards under `work`, built on first use."""
    shards = work / "shards"
    if not (shards / "index.json").exists():
        run(["-m", "musicssl.data_prep.demo", "--out", str(work / "audio"), *shlex.split(corpus_flags)], work)
        run(
            ["-m", "musicssl.data_prep", str(work / "audio" / "manifest.csv"), "--out", str(shards), "--no-progress"],
            work,
        )
    return shards


def last_diagnostics(output: Path) -> dict[str, float]:
    """The last logged `diag/*` metrics of the training run that wrote to `output`."""
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"params.output_dir = '{output}'", output_format="list"
    )
    metrics = runs[0].data.metrics if runs else {}
    return {key.removeprefix("diag/"): round(v, 4) for key, v in sorted(metrics.items()) if key.startswith("diag/")}


def train_demo(work: Path, data: Path, output: Path, pretext: str, seed: int, flags: str) -> float:
    """`train.py --preset demo` on `data` into `output`; returns the seconds it took."""
    train = [str(REPO / "train.py"), "--preset", "demo", "--pretext", pretext, "--data", str(data)]
    train += ["--seed", str(seed), "--output-dir", str(output), "--monitor.data", "None", *shlex.split(flags)]
    started = time.perf_counter()
    run(train, work)
    return time.perf_counter() - started


def probe(
    work: Path, shards: Path, backbone: Path, pretext: str, seed: int, random_init: bool = False
) -> EvaluationResult:
    """The Makefile's probe of `backbone` (or of its architecture with random weights) on the demo tags."""
    settings = EvaluateArgs(
        backbone=str(backbone),
        data=str(shards),
        task="demo-tags",
        experiment="demo-margin",
        epochs=PROBE_EPOCHS,
        steps=PROBE_STEPS,
        seed=seed,
        random_init=random_init,
        pretext=RANDOM_PRETEXT if random_init else pretext,
        cache_dir=work / "cache",
    )
    (result,) = evaluate(settings)
    return result


def measure_seed(args: Args, work: Path, shards: Path, pretext: str, seed: int) -> SeedMargin:
    """Train one pretext with one seed, probe it and random weights, and compare them paired on the test tracks."""
    output = work / pretext / f"seed-{seed}"
    train_seconds = train_demo(work, shards, output, pretext, seed, args.train_flags)
    results = {
        "random" if random_init else "pretrained": probe(
            work, shards, output / "backbone.safetensors", pretext, seed, random_init
        )
        for random_init in (False, True)
    }
    config = PairedConfig(num_resamples=args.paired_resamples)
    paired = paired_bootstrap(results["pretrained"].predictions, results["random"].predictions, config, METRICS)
    return SeedMargin(
        pretext=pretext,
        seed=seed,
        train_seconds=round(train_seconds, 1),
        diagnostics=last_diagnostics(output),
        pretrained={m: round(results["pretrained"].full_test.values()[m], 2) for m in METRICS},
        random={m: round(results["random"].full_test.values()[m], 2) for m in METRICS},
        difference={
            m: {key: round(value, 4) for key, value in asdict(d).items() if isinstance(value, float)}
            for m, d in paired.items()
        },
    )


def table(margins: list[SeedMargin]) -> str:
    """One line per pretext, seed and metric (scores on the whole test set, the paired difference), then the
    run's last collapse diagnostics."""
    lines = [
        "pretext       seed  train s  metric           pre-trained  random  difference (95 % CI)       p      above 0"
    ]
    for m in margins:
        for metric in METRICS:
            d = m.difference[metric]
            interval = f"{d['observed']:+.2f} ({d['low']:+.2f}..{d['high']:+.2f})"
            lines.append(
                f"{m.pretext:<13} {m.seed:<5} {m.train_seconds:<8.0f} {metric:<16} {m.pretrained[metric]:<12.2f} "
                f"{m.random[metric]:<7.2f} {interval:<26} {d['p_value']:<6.3f} {'yes' if d['low'] > 0 else 'no'}"
            )
        lines.append("    last diagnostics: " + ", ".join(f"{k} {v:.3g}" for k, v in m.diagnostics.items()))
    return "\n".join(lines)


def main(args: Args) -> None:
    """Measure every seed and print the table or JSON."""
    work = args.work or Path(tempfile.mkdtemp(prefix="demo-margin-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work.resolve() / 'mlflow.db'}"
    shards = ensure_corpus(work, args.corpus_flags)
    margins = [
        measure_seed(args, work, shards, p, seed)
        for p in args.pretexts
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    if args.json:
        print_json({"train_flags": args.train_flags, "runs": [asdict(m) for m in margins]})
    else:
        print(table(margins))


if __name__ == "__main__":
    main(tyro.cli(Args))
