"""Tests for downstream.monitor: the quick probe hook's metrics and schedule; it leaves the model as is."""

import copy
from pathlib import Path

import pytest
import torch

from musicssl.downstream.monitor import QuickProbeHook
from musicssl.sharding.shard_set import ShardSet
from tests.support.labelled_shard_factory import balanced_tracks, tiny_backbone, write_labelled_set


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tracks = balanced_tracks({"train": 8, "valid": 4, "test": 4}, seconds=3.0)
    return write_labelled_set(tmp_path_factory.mktemp("monitor") / "set", tracks)


def test_hook_returns_knn_scores_in_range_and_restores_every_module_mode(labelled_set: Path) -> None:
    backbone, _ = tiny_backbone()
    hook = QuickProbeHook(
        ShardSet.open(labelled_set), window=backbone.num_samples, sample_rate=backbone.sample_rate, every_steps=5, k=3
    )
    backbone.train()
    backbone.spec.eval()  # a frozen part stays in eval mode
    state_before = copy.deepcopy(backbone.state_dict())
    metrics = hook(10, backbone)
    assert set(metrics) == {"probe/knn_roc_auc", "probe/knn_pr_auc"}
    assert all(0.0 <= value <= 100.0 for value in metrics.values())
    assert metrics["probe/knn_roc_auc"] > 60.0  # pitch and pulse are audible even to random weights
    assert backbone.training and backbone.embedding.training and not backbone.spec.training
    for name, tensor in backbone.state_dict().items():  # BatchNorm statistics untouched
        torch.testing.assert_close(tensor, state_before[name], msg=name)


def test_hook_reads_at_most_windows_per_track_and_runs_on_schedule(labelled_set: Path) -> None:
    backbone, _ = tiny_backbone()
    hook = QuickProbeHook(
        ShardSet.open(labelled_set), backbone.num_samples, backbone.sample_rate, 5, windows_per_track=2
    )
    assert [len(windows) for windows in hook._windows] == [2] * 16
    assert [step for step in range(16) if hook.due(step)] == [0, 5, 10, 15]


def test_hook_refuses_a_backbone_of_another_window_length(labelled_set: Path) -> None:
    backbone, _ = tiny_backbone()
    hook = QuickProbeHook(ShardSet.open(labelled_set), backbone.num_samples // 2, backbone.sample_rate, every_steps=1)
    with pytest.raises(ValueError, match=r"window=backbone\.num_samples"):
        hook(1, backbone)


def test_hook_needs_query_tracks(tmp_path: Path) -> None:
    data = write_labelled_set(tmp_path / "set", balanced_tracks({"train": 4}))
    with pytest.raises(ValueError, match="valid or test"):
        QuickProbeHook(ShardSet.open(data), window=16000, sample_rate=16000, every_steps=1)
