"""Does pre-training beat random weights? The paired margin per pretext and training seed, and the kNN curve.

For each pretext and seed: `train.py --preset PRESET --pretext P --seed S` on a labelled shard set (the real-music
corpus of `benchmarks.real_corpus`, or by default the demo corpus, built once), with the kNN monitor on that set
every --monitor-every steps from step 0 (the untrained weights); then the same probe (`evaluate.py`'s settings in
the Makefile: 10 epochs x 32 steps) on the pre-trained backbone and on the architecture with random weights (seed
S), and the paired bootstrap of their difference over the same test tracks (`downstream.paired`, --paired-resamples
draws of all test tracks), for the probes' scores and for precision@10 of a shared tag among the test tracks'
embeddings (their neighbours, no probe). A recipe holds for a seed when the interval of the tag-wise ROC-AUC
difference lies above 0. Printed per run: training wall and CPU seconds, the scores, the differences, the kNN curve
and the last collapse diagnostics; WORK/knn_curves.png plots the curves (mean +- std over seeds per pretext) and
WORK/differences.png every run's paired differences with their intervals, one panel per metric.

Each (pretext, seed) keeps its results in WORK/PRETEXT/seed-S/margin.json and is not measured again with the same
settings, and its finished training is not run again (a killed one resumes from its checkpoint), so an interrupted
benchmark resumes. --parallel N runs N of them at once, each in its own process with OMP_NUM_THREADS = cores / N
(faster on few cores).

    python -m benchmarks.real_corpus --out /tmp/rc --shards                          # the real corpus, once
    python -m benchmarks.pretext_margins --data /tmp/rc/shards --work /tmp/rm --parallel 2
    python -m benchmarks.pretext_margins --data /tmp/rc/shards --preset paper --pretexts contrastive
    python -m benchmarks.pretext_margins --seeds 3                                   # the demo corpus
    python -m benchmarks.pretext_margins "--train-flags=--epochs 54" --json          # other settings
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import tyro

from benchmarks.harness import print_json
from musicssl.downstream.cli import EvaluateArgs, evaluate
from musicssl.downstream.evaluation import EvaluationResult
from musicssl.downstream.metrics import PRECISION_AT_K
from musicssl.downstream.paired import PairedConfig, paired_bootstrap
from musicssl.downstream.plots import METRIC_LABELS, Curve, Interval, plot_curves, plot_differences
from musicssl.downstream.tracking import RANDOM_PRETEXT
from musicssl.trainer.pretexts import PRETEXTS

REPO = Path(__file__).resolve().parents[1]
PROBE_EPOCHS, PROBE_STEPS = 10, 32  # the Makefile's PROBE settings
# the probes' scores, and precision@10 of a shared tag among the test tracks' embeddings (no probe: neighbours)
METRICS = ("roc_auc_tagwise", "pr_auc_tagwise", "roc_auc_clipwise", PRECISION_AT_K)
MONITOR_METRIC = "probe/knn_roc_auc"
RESULT_NAME = "margin.json"
TRAINING_SETTINGS_NAME = "training-settings.json"  # written before training: what its checkpoints belong to
TRAINING_NAME = "training.json"  # written after training: its wall and CPU seconds


@dataclass
class Args:
    """Benchmark settings."""

    data: Path | None = None
    """Labelled shard set to train and probe on (tags, train/valid/test splits): the real-music corpus is
    `python -m benchmarks.real_corpus --out DIR --shards`'s DIR/shards. Default: the demo corpus, built in --work."""
    preset: str = "demo"
    """Preset whose recipe per pretext is trained (configs/presets)."""
    seeds: int = 3
    """How many training seeds: first_seed, first_seed + 1, ..."""
    first_seed: int = 0
    pretexts: tuple[str, ...] = tuple(PRETEXTS)
    work: Path | None = None
    """Folder for the runs, their results and the demo corpus (kept; finished runs are reused); default: a temp
    folder."""
    train_flags: str = ""
    """Extra train.py flags after the preset, as one string, to try other settings."""
    corpus_flags: str = ""
    """Extra `python -m data_prep.demo` flags as one string (e.g. "--tracks 240"); use a new --work to change them."""
    monitor_every: int = 75
    """Steps between two points of the kNN monitor's curve (it also runs at step 0)."""
    paired_resamples: int = 2000
    parallel: int = 1
    """(pretext, seed) runs at once, each a process with OMP_NUM_THREADS = cores / parallel."""
    job: str | None = None
    """Run only "PRETEXT:SEED" in this process and write its margin.json (what --parallel launches)."""
    json: bool = False


@dataclass
class SeedMargin:
    """One pretext and training seed: the settings, training cost, last collapse diagnostics, kNN curve
    ([step, ROC-AUC] from step 0) and the paired differences (pre-trained - random) per metric."""

    pretext: str
    seed: int
    settings: dict[str, str]
    train_seconds: float
    train_cpu_seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)
    knn_curve: list[list[float]] = field(default_factory=list)
    pretrained: dict[str, float] = field(default_factory=dict)
    random: dict[str, float] = field(default_factory=dict)
    difference: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """Whether the tag-wise ROC-AUC difference's interval lies above 0."""
        return self.difference["roc_auc_tagwise"]["low"] > 0


def run_logged(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> float:
    """Run a command of the project with this interpreter, its output into `log`; the CPU seconds it and its
    children used. Fails loudly with the log's end."""
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, *command], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{shlex.join(command)} failed ({process.returncode}):\n{log.read_text()[-4000:]}")
    return usage.ru_utime + usage.ru_stime


def ensure_demo_corpus(work: Path, corpus_flags: str) -> Path:
    """The demo corpus as shards under `work`, built on first use."""
    shards = work / "shards"
    if not (shards / "index.json").exists():
        demo = ["-m", "musicssl.data_prep.demo", "--out", str(work / "audio"), *shlex.split(corpus_flags)]
        run_logged(demo, work, work / "demo-corpus.log")
        prep = ["-m", "musicssl.data_prep", str(work / "audio" / "manifest.csv"), "--out", str(shards)]
        run_logged([*prep, "--no-progress"], work, work / "data-prep.log")
    return shards


def train_command(preset: str, pretext: str, data: Path, seed: int, output: Path, flags: str) -> list[str]:
    """`train.py --preset PRESET --pretext PRETEXT` on `data` with `seed` into `output`, then `flags`."""
    command = [str(REPO / "train.py"), "--preset", preset, "--pretext", pretext, "--data", str(data)]
    return [*command, "--seed", str(seed), "--output-dir", str(output), *shlex.split(flags)]


def training_run(output: Path) -> mlflow.entities.Run | None:
    """The MLflow run of the training that wrote to `output`, in the current tracking store."""
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"params.output_dir = '{output}'", output_format="list"
    )
    return runs[0] if runs else None


def last_diagnostics(run: mlflow.entities.Run | None) -> dict[str, float]:
    """The last logged `diag/*` metrics of a training run."""
    metrics = run.data.metrics if run else {}
    return {key.removeprefix("diag/"): round(v, 4) for key, v in sorted(metrics.items()) if key.startswith("diag/")}


def knn_curve(run: mlflow.entities.Run | None) -> list[list[float]]:
    """The kNN monitor's ROC-AUC by step, [[step, value], ...] from step 0."""
    if run is None:
        return []
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, MONITOR_METRIC)
    return [[m.step, round(m.value, 2)] for m in sorted(history, key=lambda m: m.step)]


def probe(work: Path, shards: Path, backbone: Path, pretext: str, seed: int, random_init: bool) -> EvaluationResult:
    """The Makefile's probe of `backbone` (or of its architecture with random weights) on the set's tags."""
    settings = EvaluateArgs(
        backbone=str(backbone),
        data=str(shards),
        task=shards.resolve().parent.name if shards.name == "shards" else shards.name,
        experiment="pretext-margin",
        epochs=PROBE_EPOCHS,
        steps=PROBE_STEPS,
        seed=seed,
        random_init=random_init,
        pretext=RANDOM_PRETEXT if random_init else pretext,
        cache_dir=work / "cache",
    )
    (result,) = evaluate(settings)
    return result


def training_settings(args: Args, shards: Path) -> dict[str, str]:
    """What makes two trainings of one (pretext, seed) the same training."""
    return {
        "data": str(shards.resolve()),
        "preset": args.preset,
        "train_flags": args.train_flags,
        "monitor_every": str(args.monitor_every),
    }


def run_settings(args: Args, shards: Path) -> dict[str, str]:
    """What makes two results of one (pretext, seed) comparable: a result with other settings is not reused."""
    return training_settings(args, shards) | {
        "paired_resamples": str(args.paired_resamples),
        "metrics": ",".join(METRICS),
    }


def train_once(args: Args, shards: Path, pretext: str, seed: int, folder: Path) -> tuple[float, float]:
    """Train (pretext, seed) into folder/run, resuming its checkpoints, unless a training with the same settings
    finished there; its wall and CPU seconds. Checkpoints of a training with other settings are deleted first."""
    output, settings = folder / "run", training_settings(args, shards)
    started_with, record = folder / TRAINING_SETTINGS_NAME, folder / TRAINING_NAME
    if started_with.exists() and json.loads(started_with.read_text()) != settings:
        shutil.rmtree(output, ignore_errors=True)
        record.unlink(missing_ok=True)
    started_with.write_text(json.dumps(settings))
    if record.exists():
        stored = json.loads(record.read_text())
        return stored["train_seconds"], stored["train_cpu_seconds"]
    train = train_command(args.preset, pretext, shards, seed, output, args.train_flags)
    train += ["--monitor.data", str(shards), "--monitor.every-steps", str(args.monitor_every)]
    started = time.perf_counter()
    cpu_seconds = run_logged(train, folder, folder / "train.log")  # MLflow artifacts: folder/mlruns
    wall = round(time.perf_counter() - started, 1), round(cpu_seconds, 1)
    record.write_text(json.dumps({"train_seconds": wall[0], "train_cpu_seconds": wall[1]}))
    return wall


def measure_seed(args: Args, work: Path, shards: Path, pretext: str, seed: int) -> SeedMargin:
    """Train one pretext with one seed (monitored), probe it and random weights, compare them paired; the result
    is written to its margin.json."""
    folder = work / pretext / f"seed-{seed}"
    output = folder / "run"
    folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{folder.resolve() / 'mlflow.db'}")  # a store per run: runs in parallel
    os.environ["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    train_seconds, cpu_seconds = train_once(args, shards, pretext, seed, folder)
    results = {
        "random" if random_init else "pretrained": probe(
            work, shards, output / "backbone.safetensors", pretext, seed, random_init
        )
        for random_init in (False, True)
    }
    config = PairedConfig(num_resamples=args.paired_resamples)
    paired = paired_bootstrap(results["pretrained"].predictions, results["random"].predictions, config, METRICS)
    training = training_run(output)
    margin = SeedMargin(
        pretext=pretext,
        seed=seed,
        settings=run_settings(args, shards),
        train_seconds=train_seconds,
        train_cpu_seconds=cpu_seconds,
        diagnostics=last_diagnostics(training),
        knn_curve=knn_curve(training),
        pretrained={m: round(results["pretrained"].full_test.values()[m], 2) for m in METRICS},
        random={m: round(results["random"].full_test.values()[m], 2) for m in METRICS},
        difference={
            m: {key: round(value, 4) for key, value in asdict(d).items() if isinstance(value, float)}
            for m, d in paired.items()
        },
    )
    (folder / RESULT_NAME).write_text(json.dumps(asdict(margin), indent=1))
    return margin


def finished(args: Args, work: Path, shards: Path, pretext: str, seed: int) -> SeedMargin | None:
    """The stored result of (pretext, seed) if it was measured with the same settings."""
    path = work / pretext / f"seed-{seed}" / RESULT_NAME
    if not path.exists():
        return None
    margin = SeedMargin(**json.loads(path.read_text()))
    return margin if margin.settings == run_settings(args, shards) else None


def launch_job(args: Args, work: Path, shards: Path, pretext: str, seed: int) -> SeedMargin:
    """Measure (pretext, seed) in a child process with its share of the cores; read the result it wrote."""
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    command = ["-m", "benchmarks.pretext_margins", "--job", f"{pretext}:{seed}", "--work", str(work)]
    command += ["--data", str(shards), "--preset", args.preset, f"--train-flags={args.train_flags}"]
    command += ["--monitor-every", str(args.monitor_every), "--paired-resamples", str(args.paired_resamples)]
    folder = work / pretext / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    run_logged(command, folder, folder / "job.log", env)  # in its folder, where MLflow puts the probes' artifacts
    margin = finished(args, work, shards, pretext, seed)
    assert margin is not None, f"{folder / RESULT_NAME} was not written"
    return margin


def curve_text(curve: list[list[float]]) -> str:
    """`step: ROC-AUC (difference from step 0)` for each point of a kNN curve."""
    if not curve:
        return "no kNN curve logged"
    start = curve[0][1]
    return ", ".join(f"{step:g}: {value:.1f} ({value - start:+.1f})" for step, value in curve)


def table(margins: list[SeedMargin]) -> str:
    """One line per pretext, seed and metric (scores on the whole test set, the paired difference), then the
    kNN curve and the run's last collapse diagnostics; a last line per pretext says on how many seeds it holds."""
    lines = [
        "pretext       seed  train s  cpu s   metric            pre-trained  random  difference (95 % CI)       "
        "p      above 0"
    ]
    for m in margins:
        for metric in (metric for metric in METRICS if metric in m.difference):
            d = m.difference[metric]
            interval = f"{d['observed']:+.2f} ({d['low']:+.2f}..{d['high']:+.2f})"
            lines.append(
                f"{m.pretext:<13} {m.seed:<5} {m.train_seconds:<8.0f} {m.train_cpu_seconds:<7.0f} {metric:<17} "
                f"{m.pretrained[metric]:<12.2f} {m.random[metric]:<7.2f} {interval:<26} {d['p_value']:<6.3f} "
                f"{'yes' if d['low'] > 0 else 'no'}"
            )
        lines.append(f"    kNN ROC-AUC by step: {curve_text(m.knn_curve)}")
        lines.append("    last diagnostics: " + ", ".join(f"{k} {v:.3g}" for k, v in m.diagnostics.items()))
    for pretext in dict.fromkeys(m.pretext for m in margins):
        runs = [m for m in margins if m.pretext == pretext]
        mean = np.mean([m.difference["roc_auc_tagwise"]["observed"] for m in runs])
        neighbours = sum(m.difference[PRECISION_AT_K]["low"] > 0 for m in runs if PRECISION_AT_K in m.difference)
        lines.append(
            f"{pretext}: above random weights on {sum(m.holds for m in runs)} of {len(runs)} seeds "
            f"(mean tag-wise ROC-AUC difference {mean:+.2f}); precision@10 above on {neighbours}"
        )
    return "\n".join(lines)


def plot_knn_curves(margins: list[SeedMargin], path: Path) -> Path | None:
    """The kNN monitor's ROC-AUC against the step, mean +- std over seeds per pretext (steps all seeds share)."""
    curves: dict[str, Curve] = {}
    for pretext in dict.fromkeys(m.pretext for m in margins):
        by_seed = [dict((step, value) for step, value in m.knn_curve) for m in margins if m.pretext == pretext]
        steps = sorted(set.intersection(*(set(points) for points in by_seed)))
        if steps:
            values = np.array([[points[s] for s in steps] for points in by_seed])
            curves[pretext] = Curve(np.array(steps, dtype=float), values.mean(axis=0), values.std(axis=0))
    if not curves:
        return None
    return plot_curves({(MONITOR_METRIC, "kNN monitor"): curves}, path, "training step", log_x=False)


def plot_margins(margins: list[SeedMargin], path: Path) -> Path:
    """Each (pretext, seed)'s paired difference and interval against a line at 0, the metrics side by side."""
    panels = {
        ("pre-trained - random", METRIC_LABELS[metric]): [
            Interval(f"{m.pretext} seed {m.seed}", d["observed"], d["low"], d["high"])
            for m in margins
            if (d := m.difference.get(metric))
        ]
        for metric in METRICS
    }
    return plot_differences({key: rows for key, rows in panels.items() if rows}, path)


def main(args: Args) -> None:
    """Measure every (pretext, seed) not measured yet, then print the table or JSON and plot the curves."""
    work = (args.work or Path(tempfile.mkdtemp(prefix="pretext-margin-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    shards = args.data.resolve() if args.data else ensure_demo_corpus(work, args.corpus_flags)
    if args.job:
        pretext, seed = args.job.split(":")
        measure_seed(args, work, shards, pretext, int(seed))
        return
    jobs = [(p, s) for p in args.pretexts for s in range(args.first_seed, args.first_seed + args.seeds)]

    def measure(job: tuple[str, int]) -> SeedMargin:
        pretext, seed = job
        done = finished(args, work, shards, pretext, seed)
        if done is None:
            print(f"{pretext} seed {seed}: measuring ({work / pretext / f'seed-{seed}'})", file=sys.stderr)
            if args.parallel == 1:
                return measure_seed(args, work, shards, pretext, seed)
            return launch_job(args, work, shards, pretext, seed)
        return done

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        margins = list(pool.map(measure, jobs))
    plot = plot_knn_curves(margins, work / "knn_curves.png")
    differences = plot_margins(margins, work / "differences.png")
    if args.json:
        print_json({"preset": args.preset, "train_flags": args.train_flags, "runs": [asdict(m) for m in margins]})
    else:
        print(table(margins))
        print(f"kNN curves: {plot}" if plot else "no kNN curve logged")
        print(f"paired differences: {differences}")


if __name__ == "__main__":
    main(tyro.cli(Args))
