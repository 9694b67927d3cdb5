"""The thesis' sweeps expand to the runs of its tables, as train.py flags and evaluate.py runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicssl.downstream.references import load_references
from musicssl.downstream.sweeps import SWEEP_PARAM, available_sweeps, evaluations, load_sweep, train_flags
from musicssl.trainer.checkpoints import checkpoint_name
from musicssl.trainer.cli import parse_config
from musicssl.trainer.loop import CONFIG_NAME

THESIS_TABLES = {"thesis-epochs": "A.1", "thesis-representation": "A.2", "thesis-batch-size": "B.1"}
THESIS_TABLES["thesis-projectors"] = "B.2"


def published_settings(table: str, param: str) -> set[tuple[str, str]]:
    """(pretext, value of param) of every figure of a thesis table in configs/references.toml."""
    return {
        (reference.setting["pretext"], reference.setting[param])
        for reference in load_references()
        if reference.document == "thesis" and reference.table == table
    }


@pytest.mark.parametrize("name", sorted(THESIS_TABLES))
def test_each_thesis_sweep_runs_the_settings_of_its_table(name: str) -> None:
    assert set(available_sweeps()) == set(THESIS_TABLES)
    sweep = load_sweep(name)
    configs = [sweep.config(index) for index in range(len(sweep.runs))]
    if sweep.evaluate_epochs:
        runs = {(c.pretext, str(epoch)) for c in configs for epoch in sweep.evaluate_epochs}
    else:
        runs = {(c.pretext, run.value) for c, run in zip(configs, sweep.runs, strict=True)}
    assert runs == published_settings(THESIS_TABLES[name], sweep.param)
    assert {c.backbone for c in configs} == {"samplecnn"} and sweep.task == "mtat"
    assert {c.epochs for c in configs} == ({8000} if name == "thesis-epochs" else {1000})


def test_swept_settings_reach_the_configs() -> None:
    batch = load_sweep("thesis-batch-size")
    assert [batch.config(i).batch_size for i in range(9)] == [64, 128, 256, 512, 768, 1024, 1280, 1536, 1792]
    size = load_sweep("thesis-representation")
    clmr = [size.config(i) for i in range(10) if size.runs[i].preset == "thesis-clmr"]
    assert [(c.samplecnn.embed_dim, c.contrastive.projector_widths) for c in clmr] == [
        (d, (d, 128)) for d in (32, 64, 128, 256, 512)
    ]  # Spijkervet/SimCLR: the hidden layer as wide as the representation
    projectors = load_sweep("thesis-projectors")
    heads = [projectors.config(i) for i in range(4)]
    shapes = [(c.pretext, c.pretext_config.projector_widths, c.pretext_config.projector_batch_norm) for c in heads]
    assert shapes == [
        ("contrastive", (512, 128), False),
        ("contrastive", (8192, 8192, 8192), True),
        ("vicreg", (512, 128), False),
        ("vicreg", (8192, 8192, 8192), True),
    ]
    epochs = load_sweep("thesis-epochs")
    assert epochs.evaluate_epochs == (300, 1000, 3000, 5000, 8000)


@pytest.mark.parametrize("name", ["thesis-projectors", "thesis-representation"])
def test_train_flags_give_the_sweep_config_through_the_command_line(name: str) -> None:
    sweep = load_sweep(name)
    for index in range(len(sweep.runs)):
        config, _ = parse_config(train_flags(sweep, index))
        assert config == sweep.config(index), index


def test_evaluations_probe_the_final_backbone_with_both_probes_and_log_the_settings() -> None:
    sweep = load_sweep("thesis-batch-size")
    linear, mlp = evaluations(sweep, 4, "shards/mtat")
    assert linear.backbone == mlp.backbone == "runs/sweeps/thesis-batch-size/vicreg-768/backbone.safetensors"
    assert (linear.hidden_dim, mlp.hidden_dim) == (None, 512)  # thesis 3.3.3: 512 - 512 - 50
    assert (linear.protocol, linear.task, linear.pretext, linear.data) == ("thesis", "mtat", "vicreg", "shards/mtat")
    assert set(linear.param) == {
        f"{SWEEP_PARAM}=thesis-batch-size",
        "pretrain_data=fma",
        "batch_size=768",
        "pretrain_epochs=1000",
    }


def test_an_epochs_sweep_probes_the_checkpoints_kept_at_each_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep("thesis-epochs")
    checkpoints = tmp_path / "runs/sweeps/thesis-epochs/contrastive/checkpoints"
    with pytest.raises(FileNotFoundError, match="pre-train the run first"):
        evaluations(sweep, 1, "shards/mtat")
    for epoch in (300, 1000, 3000, 5000, 8000):
        folder = checkpoints / checkpoint_name(epoch * 97)  # 25,000 tracks // 256: the run's resolved epoch
        folder.mkdir(parents=True)
        (folder / CONFIG_NAME).write_text(json.dumps({"steps_per_epoch": 97}))
    runs = evaluations(sweep, 1, "shards/mtat")
    assert [(Path(run.backbone).name, run.hidden_dim) for run in runs[:2]] == [
        (checkpoint_name(300 * 97), None),
        (checkpoint_name(300 * 97), 512),
    ]
    epochs = [next(p for p in run.param if p.startswith("pretrain_epochs=")) for run in runs[::2]]
    assert epochs == [f"pretrain_epochs={epoch}" for epoch in (300, 1000, 3000, 5000, 8000)]
    (checkpoints / checkpoint_name(3000 * 97) / CONFIG_NAME).unlink()
    (checkpoints / checkpoint_name(3000 * 97)).rmdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint of epoch 3000"):
        evaluations(sweep, 1, "shards/mtat")


def test_a_sweep_file_that_cannot_run_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("musicssl.downstream.sweeps.SWEEP_DIR", tmp_path)
    body = 'description = "d"\nparam = "pretrain_epochs"\npretrain_data = "fma"\nevaluate_epochs = [2000]\n'
    body += '[evaluate]\ntask = "mtat"\nprotocol = "thesis"\nprobes = ["linear"]\n[[run]]\npreset = "thesis-vicreg"\n'
    (tmp_path / "unkept.toml").write_text(body)
    with pytest.raises(ValueError, match=r"keeps no checkpoint at epochs \[2000\]"):
        load_sweep("unkept")
    with pytest.raises(ValueError, match="no sweep 'missing'"):
        load_sweep("missing")
