"""The collapse alarm in real tiny runs: a run made to collapse warns, logs and stops; a healthy one stays quiet.

Runs of tests/support/tiny_run.py's tiny configuration (6 steps of a width-8 ResNet, diagnostics every 2 steps):
an absurd learning rate (1e3) collapses the effective rank from 11.5 to 2.8 by step 4, below 0.6 of its
peak, and a backbone with a constant output is collapsed from the first reading on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from musicssl.trainer.backbones.resnet import PaperResNet
from musicssl.trainer.checkpoints import list_checkpoints
from musicssl.trainer.cli import parse_config
from musicssl.trainer.collapse import REMEDIES
from musicssl.trainer.config import OptimConfig, TrainConfig
from musicssl.trainer.loop import EXIT_COLLAPSED, train
from tests.support import tiny_run
from tests.support.paths import REPO
from tests.support.tiny_run import tiny_config

shards = tiny_run.shards  # the tiny runs' shard set fixture
SMALL_CLUSTERING = {"clustering": replace(TrainConfig().clustering, num_prototypes=64)}


def test_absurd_learning_rate_warns_logs_and_stop_on_collapse_stops_with_exit_3(
    tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through train.py's main: the flag, the warning, the MLflow metric and tag, the checkpoint, the exit code."""
    import mlflow

    import train as entry_point

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    output = tmp_path / "run"
    args = [
        "--pretext", "contrastive", "--study", "collapse", "--output-dir", str(output),
        "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "8", "--diagnostics-every", "2",
        "--data", shards, "--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1",
        "--pairs.max-gap-seconds", "3", "--pairs.pairs-per-track", "2", "--pairs.track-shuffle", "4",
        "--pairs.pair-shuffle", "16", "--pairs.num-workers", "0", "--resnet.width", "8",
        "--optim.base-lr", "1000", "--optim.warmup-steps", "1", "--checkpoint.every-steps", "100",
        "--stop-on-collapse",
    ]  # fmt: skip
    assert entry_point.main(args) == EXIT_COLLAPSED
    out = capsys.readouterr().out
    warning = re.search(
        r"COLLAPSE WARNING at step 4: effective_rank: effective rank ([\d.]+) < 0.6 x peak ([\d.]+)", out
    )
    assert warning, out  # the reading itself differs between CPUs (a learning rate of 1000), not its side
    assert float(warning[1]) < 0.6 * float(warning[2])
    assert REMEDIES["contrastive"] in out
    assert "stopping at step 4: the collapse alarm fired (--stop-on-collapse)" in out
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [4]
    assert not (output / "backbone.safetensors").exists()
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("collapse").experiment_id])
    history = client.get_metric_history(run.info.run_id, "collapse/effective_rank")
    assert [(m.step, m.value) for m in history] == [(4, 1.0)]
    assert run.data.tags["collapse/effective_rank"].startswith(f"step 4: effective rank {warning[1]} ")
    assert run.info.status == "FAILED"


def test_alarm_state_survives_a_resume(tmp_path: Path, shards: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The signal that fired before the checkpoint is remembered, not warned again, and the run trains on."""
    config = tiny_config(tmp_path / "run", shards, optim=OptimConfig(base_lr=1e3, warmup_steps=1))
    first = train(config, stop_after_steps=4)
    assert first.preempted and first.collapse_signals == ("effective_rank",)
    capsys.readouterr()
    second = train(config)
    assert second.step == 6 and second.backbone_path is not None and not second.stopped_on_collapse
    assert second.collapse_signals[0] == "effective_rank"
    assert "effective_rank:" not in capsys.readouterr().out


def test_constant_backbone_fires_std_cosine_and_prototype_usage_once_each(
    tmp_path: Path, shards: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --stop-on-collapse the run warns once per signal and trains to the end."""

    def constant(self: PaperResNet, waveform: torch.Tensor) -> torch.Tensor:
        return waveform.new_ones(waveform.shape[0], self.embed_dim)

    monkeypatch.setattr(PaperResNet, "forward", constant)
    result = train(tiny_config(tmp_path / "run", shards, pretext="clustering", **SMALL_CLUSTERING))
    assert result.step == 6 and result.backbone_path is not None and not result.stopped_on_collapse
    assert result.collapse_signals == ("embedding_std", "cosine", "prototype_usage")
    warnings = re.findall(r"COLLAPSE WARNING at step (\d+): (\w+):", capsys.readouterr().out)
    assert warnings == [("2", "embedding_std"), ("2", "cosine"), ("2", "prototype_usage")]


@pytest.mark.parametrize("pretext", ["contrastive", "clustering"])
def test_healthy_run_stays_quiet(tmp_path: Path, shards: str, pretext: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = SMALL_CLUSTERING if pretext == "clustering" else {}
    result = train(tiny_config(tmp_path / "run", shards, pretext=pretext, stop_on_collapse=True, **extra))
    assert result.step == 6 and result.backbone_path is not None
    assert result.collapse_signals == () and not result.stopped_on_collapse
    assert "COLLAPSE" not in capsys.readouterr().out


def test_alarm_flags_and_every_remedy_flag_parse() -> None:
    config, _ = parse_config(["--stop-on-collapse", "--collapse.min-rank-fraction", "0.5"])
    assert config.stop_on_collapse and config.collapse.min_rank_fraction == 0.5
    assert not parse_config([])[0].stop_on_collapse
    for remedies in REMEDIES.values():  # a flag with its value in the text, "(--flag value)", parses with it
        for flag, value in re.findall(r"(--[a-z][\w.-]+)(?: ([a-z]+)(?=\)))?", remedies):
            parse_config([flag, value or "8"])


@pytest.mark.distributed
def test_two_process_run_stops_on_collapse_on_every_rank(tmp_path: Path, shards: str) -> None:
    """torchrun + gloo: a threshold every reading crosses fires at the first diagnostics step, and both ranks
    (fed rank 0's diagnostics) stop there together, with one checkpoint and exit code 3, instead of hanging.

    torchrun turns a rank's non-zero exit into its own failure (exit 1) naming that rank's exit code."""
    output = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # no variable needed: gloo without a GPU
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO / "train.py"),
        "--pretext", "contrastive", "--study", "test", "--output-dir", str(output), "--no-mlflow",
        "--epochs", "1", "--steps-per-epoch", "4", "--batch-size", "8", "--diagnostics-every", "2",
        "--data", shards, "--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1",
        "--pairs.max-gap-seconds", "3", "--pairs.num-workers", "0", "--pairs.pair-shuffle", "16",
        "--resnet.width", "8", "--collapse.max-cosine", "-1", "--stop-on-collapse",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode != 0 and re.search(rf"exitcode\s*: {EXIT_COLLAPSED} ", run.stderr), run.stderr[-3000:]
    assert run.stdout.count("COLLAPSE WARNING at step 2: cosine") == 1  # printed by rank 0 only
    assert [step for step, _ in list_checkpoints(output / "checkpoints")] == [2]
    assert not (output / "backbone.safetensors").exists()
