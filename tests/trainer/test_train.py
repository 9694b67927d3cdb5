"""The pre-training loop on CPU: a tiny run, exact resume, pre-emption, non-finite guard, presets."""

from __future__ import annotations

import itertools
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import musicssl.sharding.location
import musicssl.sharding.tracks
from musicssl.data_prep.entry import run_command
from musicssl.data_prep.locks import FolderInUseError
from musicssl.sharding.format import INDEX_NAME, TRACKS_NAME
from musicssl.sharding.location import read_set_file
from musicssl.sharding.read.random_access import RandomAccessReader
from musicssl.trainer.checkpoints import latest_checkpoint, list_checkpoints
from musicssl.trainer.cli import parse_config
from musicssl.trainer.config import CheckpointConfig, OptimConfig, TrainConfig
from musicssl.trainer.epochs import resolve_epochs
from musicssl.trainer.export import export_provenance, load_backbone
from musicssl.trainer.loop import EXIT_PREEMPTED, Trainer, train
from musicssl.trainer.loop_state import check_same_run
from musicssl.trainer.presets import available_presets
from musicssl.trainer.pretexts import PretextOutput
from tests.support import tiny_run
from tests.support.paths import REPO
from tests.support.tiny_run import SAMPLE_RATE, WritesAFile, tiny_config

shards = tiny_run.shards  # the tiny runs' shard set fixture


def test_tiny_run_trains_checkpoints_and_exports(tmp_path: Path, shards: str) -> None:
    config = tiny_config(tmp_path / "run", shards, checkpoint=CheckpointConfig(every_steps=2, keep_last=2))
    result = train(config)
    assert result.step == 6 and not result.preempted
    assert len(result.losses) == 6 and all(math.isfinite(x) for x in result.losses)
    steps = [step for step, _ in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert steps == [4, 6]  # every 2 steps, the last 2 kept
    backbone, recipe = load_backbone(result.backbone_path)
    assert recipe.name == "resnet" and backbone.num_samples == SAMPLE_RATE
    assert export_provenance(result.backbone_path) == {"pretext": "contrastive"}  # no MLflow run, no run id
    from_checkpoint, _ = load_backbone(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    for (name, a), b in zip(backbone.state_dict().items(), from_checkpoint.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("pretext", ["contrastive", "byol", "clustering"])
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path: Path, shards: str, pretext: str) -> None:
    """Same data order, same losses: model, optimiser, EMA teacher, DINO center, schedules all restored."""
    extra = {"clustering": {"clustering": replace(TrainConfig().clustering, num_prototypes=64)}}.get(pretext, {})
    whole = train(tiny_config(tmp_path / "whole", shards, pretext=pretext, **extra))
    first = train(tiny_config(tmp_path / "split", shards, pretext=pretext, **extra), stop_after_steps=4)
    assert first.preempted and first.step == 4
    second = train(tiny_config(tmp_path / "split", shards, pretext=pretext, **extra))
    assert second.step == 6 and not second.preempted
    resumed = first.losses + second.losses
    np.testing.assert_allclose(resumed, whole.losses, rtol=0, atol=1e-6)


def test_a_checkpoint_of_another_backbone_setting_or_of_the_old_model_section_is_not_resumed(tmp_path: Path) -> None:
    current = json.loads(json.dumps(asdict(TrainConfig())))
    narrower = {**current, "resnet": {**current["resnet"], "width": 8}}
    with pytest.raises(ValueError, match=r"written with resnet=\{.*'width': 8.*another --output-dir"):
        check_same_run(narrower, current, tmp_path)
    old = {key: value for key, value in current.items() if key not in ("backbone", "resnet", "samplecnn")}
    with pytest.raises(ValueError, match=r"left \[model\] for \[resnet\] / \[samplecnn\].*another --output-dir"):
        check_same_run({**old, "model": {"backbone": "resnet", "width": 16}}, current, tmp_path)


def test_resume_starts_at_the_saved_data_position_without_rereading(tmp_path: Path, shards: str) -> None:
    config = tiny_config(tmp_path / "run", shards)
    Trainer(config).run(stop_after_steps=4)
    resumed = Trainer(config)
    assert resumed.state.data_position == [1, 1]  # step 4 of 3-step epochs: epoch 1, batch 1
    assert isinstance(resumed.pairs.reader, RandomAccessReader)
    assert resumed.run().step == 6
    assert resumed.pairs.reader.stats.pairs == 2 * config.batch_size  # two steps read, none replayed


def test_an_epoch_of_one_pass_is_counted_from_the_data_and_checkpoints_stay_at_its_marks(
    tmp_path: Path, shards: str
) -> None:
    """8 training tracks x 2 pairs // batch 8: 2 steps an epoch; warm-up, kept epochs and resume count in them."""
    config = tiny_config(
        tmp_path / "run",
        shards,
        epochs=4,
        steps_per_epoch="pass",
        optim=OptimConfig(base_lr=1e-3, warmup_epochs=1),
        checkpoint=CheckpointConfig(every_steps=100, keep_last=1, keep_epochs=(1, 3)),
    )
    first = Trainer(config)
    assert (first.config.steps_per_epoch, first.config.total_steps, first.config.optim.warmup_steps) == (2, 8, 2)
    assert first.lr_schedule.warmup_steps == 2 and first.pairs.batches_per_epoch == 2
    assert first.run(stop_after_steps=3).preempted
    resumed = Trainer(config)
    assert resumed.state.data_position == [1, 1]  # step 3 of 2-step epochs
    assert resumed.run().step == 8
    assert [step for step, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [2, 6, 8]  # epochs 1, 3, end


@pytest.mark.parametrize("steps_per_epoch", [3, "pass"])
def test_a_training_start_reads_the_index_and_the_track_table_once(
    tmp_path: Path, shards: str, steps_per_epoch: int | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set is opened once per process: one read of index.json and one of tracks.parquet, counted where every
    small set file is read (`read_set_file`), through a start and a first step."""
    reads: Counter[str] = Counter()

    def counted(location: str | os.PathLike[str], name: str) -> bytes:
        reads[name] += 1
        return read_set_file(location, name)

    for module in (musicssl.sharding.location, musicssl.sharding.tracks):
        monkeypatch.setattr(module, "read_set_file", counted)
    Trainer(tiny_config(tmp_path / "run", shards, steps_per_epoch=steps_per_epoch)).run(stop_after_steps=1)
    assert reads == {INDEX_NAME: 1, TRACKS_NAME: 1}


def test_an_epoch_of_one_pass_needs_the_track_table(tmp_path: Path, shards: str) -> None:
    """The stream reads a set without tracks.parquet, but cannot count its tracks: a clear error, not a guess."""
    bare = tmp_path / "bare"
    shutil.copytree(shards, bare)
    (bare / TRACKS_NAME).unlink()
    with pytest.raises(ValueError, match=r"one pass needs the number of training tracks.*--steps-per-epoch N"):
        Trainer(tiny_config(tmp_path / "run", str(bare), steps_per_epoch="pass"))


def test_a_run_without_data_is_an_error_that_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pass --data SHARDS"):
        Trainer(tiny_config(tmp_path / "run", data=None))  # type: ignore[arg-type]
    paper = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--preset", "paper", "--no-mlflow"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert paper.returncode != 0 and "error: no training data: pass --data SHARDS" in paper.stderr
    assert "Traceback" not in paper.stderr and not (tmp_path / "demo_data").exists()


def test_only_the_demo_preset_names_the_demo_corpus() -> None:
    for preset in available_presets():
        config, _ = parse_config(["--preset", preset])
        assert config.data == ("demo" if preset == "demo" else None), preset


def test_shards_at_another_sample_rate_than_the_backbone_are_refused(tmp_path: Path, shards: str) -> None:
    config = tiny_config(tmp_path / "run", shards, backbone="samplecnn")
    with pytest.raises(ValueError, match=r"16000 Hz but the backbone expects 22050 Hz.*--sample-rate 22050"):
        Trainer(config)


def poison_losses(monkeypatch: pytest.MonkeyPatch, is_bad: Callable[[int], bool]) -> None:
    """Make the contrastive loss NaN on the calls (0-based) where `is_bad` says so."""
    from musicssl.trainer.pretexts.contrastive import Contrastive

    original = Contrastive.compute_loss
    calls = itertools.count()

    def compute_loss(self: Contrastive, views: torch.Tensor, student: torch.nn.Module | None = None) -> PretextOutput:
        out = original(self, views, student)
        if is_bad(next(calls)):
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(Contrastive, "compute_loss", compute_loss)


def test_nonfinite_losses_are_skipped(tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch) -> None:
    poison_losses(monkeypatch, lambda call: call in (1, 2))
    result = train(tiny_config(tmp_path / "skip", shards))
    assert result.step == 6
    assert [math.isnan(x) for x in result.losses] == [False, True, True, False, False, False]


def test_repeated_nonfinite_losses_stop_the_run(tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch) -> None:
    poison_losses(monkeypatch, lambda call: True)
    with pytest.raises(FloatingPointError, match="3 consecutive non-finite losses"):
        train(tiny_config(tmp_path / "stop", shards, max_nonfinite=3))


def test_sigusr2_checkpoints_and_exits_resumable(tmp_path: Path, shards: str) -> None:
    """A real train.py process: SIGUSR2 -> checkpoint, exit 75; the same command then resumes."""
    output = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "--pretext", "vicreg", "--study", "test", "--output-dir", str(output), "--no-mlflow",
        "--epochs", "1000", "--steps-per-epoch", "3", "--batch-size", "8",
        "--data", shards, "--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1",
        "--pairs.max-gap-seconds", "3", "--pairs.num-workers", "0", "--pairs.pair-shuffle", "16",
        "--resnet.width", "8", "--checkpoint.every-steps", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # bytes: "\r" kept
    deadline = time.monotonic() + 300  # bounds a hang, not a speed requirement
    while not list_checkpoints(output / "checkpoints"):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    process.send_signal(signal.SIGUSR2)
    log = process.communicate(timeout=300)[0].decode()
    assert process.returncode == EXIT_PREEMPTED, log
    assert "SIGUSR2" in log
    assert "\r" not in log and any(line.startswith("vicreg: ") for line in log.splitlines())  # a log, not a tty
    stopped_at = list_checkpoints(output / "checkpoints")[-1][0]
    resumed = subprocess.run([*command, "--stop-after-steps", "1"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == EXIT_PREEMPTED, resumed.stdout + resumed.stderr
    assert f"resuming from {output / 'checkpoints'}/step-{stopped_at:09d} at step {stopped_at}" in resumed.stdout
    assert list_checkpoints(output / "checkpoints")[-1][0] == stopped_at + 1
    stop_file = tmp_path / "stopped"  # under slurm/lib.sh: the step goes to the file, the launcher sees exit 0
    env = {**os.environ, "MUSICSSL_STOP_FILE": str(stop_file)}
    launched = subprocess.run(
        [*command, "--stop-after-steps", "1"], capture_output=True, text=True, timeout=300, env=env
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert stop_file.read_text() == f"{stopped_at + 2}\n"


def test_presets_parse_and_flags_override_them() -> None:
    assert set(available_presets()) >= {"paper", "thesis-vicreg", "thesis-clmr", "demo"}
    for preset in available_presets():
        config, _ = parse_config(["--preset", preset])
        assert resolve_epochs(config, lambda: 25_000, print).total_steps > 0
    config, stop_after = parse_config(
        ["--preset", "thesis-vicreg", "--optim.base-lr", "0.3", "--stop-after-steps", "7"]
    )
    assert config.pretext == "vicreg" and config.backbone == "samplecnn"
    assert config.optim.optimizer == "lars" and config.optim.base_lr == 0.3 and config.batch_size == 768
    assert config.vicreg.projector_widths == (8192, 8192, 8192)
    assert stop_after == 7
    paper, _ = parse_config(["--preset", "paper", "--pretext", "byol"])
    assert paper.batch_size == 256 and paper.steps_per_epoch == 512 and paper.epochs == 1000


@pytest.mark.distributed
def test_two_process_cpu_run_with_gloo(tmp_path: Path, shards: str) -> None:
    """torchrun + gloo on CPU: both ranks step in lockstep and rank 0 writes the checkpoint and export."""
    output = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # no variable needed: gloo without a GPU
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
        str(REPO / "train.py"),
        "--pretext", "barlow_twins", "--study", "test", "--output-dir", str(output), "--no-mlflow",
        "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8",
        "--data", shards, "--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1",
        "--pairs.max-gap-seconds", "3", "--pairs.num-workers", "1", "--pairs.pair-shuffle", "16",
        "--resnet.width", "8",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [3]
    assert (output / "backbone.safetensors").exists()


def test_mlflow_run_has_params_tags_metrics_artifacts_and_continues_on_resume(
    tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = tiny_config(tmp_path / "run", shards, mlflow=True, study="tracked", log_every=2)
    assert train(config, stop_after_steps=3).preempted
    assert not train(config).preempted
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert len(runs) == 1  # the resumed training continued the same run
    run = runs[0]
    assert run.data.params["optim.base_lr"] == "0.001" and run.data.params["pretext"] == "contrastive"
    assert {"git_commit", "host"} <= set(run.data.tags)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [2, 4, 6]
    assert {"lr", "pairs_per_s", "loss/nt_xent", "diag/effective_rank"} <= set(run.data.metrics)
    assert {"backbone.safetensors", "config.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    provenance = export_provenance(tmp_path / "run" / "backbone.safetensors")
    assert provenance == {"pretext": "contrastive", "run_id": run.info.run_id}


def test_resuming_runs_no_code_from_files_in_the_run_folder(tmp_path: Path, shards: str) -> None:
    """The loop's state is JSON and safetensors, never a pickle: a checkpoint holding pickled state
    (custom_checkpoint_*.pkl, which Accelerate unpickles with weights_only=False) is refused before anything is
    read, and so is an RNG file that does not load with weights_only=True; no code from them runs."""
    marker = tmp_path / "code-ran"
    config = tiny_config(tmp_path / "run", shards)
    train(config, stop_after_steps=3)
    checkpoint = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert checkpoint is not None and not list(checkpoint.glob("custom_checkpoint_*"))
    rng = checkpoint / "random_states_0.pkl"
    honest_rng = rng.read_bytes()
    for crafted, refusal in [
        ("custom_checkpoint_0.pkl", r"holds custom_checkpoint_0.pkl: pickles, which could run code"),
        ("random_states_0.pkl", r"random_states_0.pkl does not load as plain data \(UnpicklingError"),
    ]:
        (checkpoint / crafted).write_bytes(pickle.dumps(WritesAFile(marker)))
        with pytest.raises(ValueError, match=refusal):
            train(config)
        assert not marker.exists()
        (checkpoint / crafted).unlink()
    rng.write_bytes(honest_rng)
    resumed = train(config)
    assert (resumed.step, len(resumed.losses)) == (6, 3)


HOLD_FOLDER = """import sys, time
from pathlib import Path
from typing import Any
from musicssl.data_prep.locks import exclusive_folder
with exclusive_folder(Path(sys.argv[1]), "train.py --pretext contrastive"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_into_a_run_folder_is_refused_naming_the_holder(tmp_path: Path, shards: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOLDER, str(tmp_path / "run")], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(FolderInUseError, match=rf"run is in use by pid {holder.pid} on .*train.py --pretext"):
            train(tiny_config(tmp_path / "run", shards))
        assert not (tmp_path / "run" / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()


def test_an_unreadable_latest_checkpoint_is_set_aside_and_the_one_before_resumes(
    tmp_path: Path, shards: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path / "run", shards)
    train(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    weights = checkpoints / "step-000000006" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a write cut short
    resumed = train(config)
    assert (resumed.step, len(resumed.losses)) == (6, 2)  # from the checkpoint of step 4
    out = capsys.readouterr().out
    assert "skipping checkpoint" in out and "model.safetensors" in out and "step-000000006.unreadable" in out
    assert (checkpoints / "step-000000006.unreadable").is_dir() and (checkpoints / "step-000000006").is_dir()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 kB tmpfs: room for a run folder's lock and config, not for a checkpoint."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount_point)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_at_a_checkpoint_is_one_line_and_leaves_no_partial(
    small_disk: Path, shards: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(small_disk / "run", shards)
    assert run_command(lambda args: train(config).step, []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no space left writing ") and "free space or write elsewhere" in err[-1]
    assert not list((small_disk / "run" / "checkpoints").glob(".*.partial"))


def test_train_py_says_an_expected_failure_in_one_line_and_shows_the_traceback_with_debug(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "train.py",
        "--no-mlflow",
        "--data",
        str(tmp_path / "missing"),
        "--output-dir",
        str(tmp_path),
    ]
    plain = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'missing'}")
    debug = subprocess.run([*command, "--debug"], cwd=REPO, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    zero = subprocess.run([*command, "--checkpoint.every-steps", "0"], cwd=REPO, capture_output=True, text=True)
    assert zero.returncode == 2 and "ZeroDivisionError" not in zero.stderr
    assert "--checkpoint.every-steps 0 is below 1" in " ".join(zero.stderr.split())


@pytest.mark.parametrize(
    ("error", "status"),
    [(OSError(28, "No space left on device"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
    ids=["disk-full", "interrupt"],
)
def test_a_training_that_raises_ends_its_mlflow_run_failed_or_killed(
    tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch, error: BaseException, status: str
) -> None:
    import mlflow

    from musicssl.trainer.pretexts.contrastive import Contrastive

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    original, calls = Contrastive.compute_loss, itertools.count()

    def compute_loss(self: Contrastive, views: torch.Tensor, student: torch.nn.Module | None = None) -> PretextOutput:
        if next(calls) == 2:
            raise error
        return original(self, views, student)

    monkeypatch.setattr(Contrastive, "compute_loss", compute_loss)
    with pytest.raises(type(error)):
        train(tiny_config(tmp_path / "run", shards, mlflow=True, study="crash"))
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("crash").experiment_id])
    assert run.info.status == status
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]


def test_a_training_that_fails_before_its_first_step_ends_its_mlflow_run_failed(
    tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the MLflow run was opened but before training (here a hook that cannot be built)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def broken_hook(backbone: torch.nn.Module) -> Any:
        raise ValueError("the monitor set is not there")

    with pytest.raises(ValueError, match="monitor set"):
        train(tiny_config(tmp_path / "run", shards, mlflow=True, study="setup"), hook_factories=[broken_hook])
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("setup").experiment_id])
    assert run.info.status == "FAILED"


def test_hooks_see_the_untrained_weights_at_step_0_once_and_then_run_on_their_schedule(
    tmp_path: Path, shards: str
) -> None:
    """A monitor's curve starts at the run's random weights, before the first step; a resumed run does not
    probe its step again."""
    seen: list[tuple[int, torch.Tensor]] = []

    class EveryOtherStep:
        def due(self, step: int) -> bool:
            return step % 2 == 0

        def __call__(self, step: int, backbone: torch.nn.Module) -> dict[str, float]:
            seen.append((step, torch.cat([p.detach().flatten() for p in backbone.parameters()]).clone()))
            return {"probe/steps": float(step)}

    config = tiny_config(tmp_path / "run", shards)
    first = train(config, hook_factories=[lambda backbone: EveryOtherStep()], stop_after_steps=3)
    assert first.preempted and [step for step, _ in seen] == [0, 2]
    assert not torch.equal(seen[0][1], seen[1][1])  # step 0 is before the first update
    train(config, hook_factories=[lambda backbone: EveryOtherStep()])
    assert [step for step, _ in seen] == [0, 2, 4, 6]
