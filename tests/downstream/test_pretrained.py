"""Tests for `python -m downstream.pretrained`: a Hugging Face style folder saved from an export or a checkpoint
loads back identical, its card holds the recipe, the provenance and what MLflow knows (offline: a sqlite store in
the test's folder), and embed_files takes the folder where it takes a backbone file."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from musicssl.data_prep.entry import UserError, run_command
from musicssl.downstream import embed_files
from musicssl.downstream.extract_task import weights_hash
from musicssl.downstream.pretrained import from_pretrained, main, save_pretrained
from musicssl.downstream.tracking import BOOTSTRAP_ARTIFACT, KIND_TAG
from musicssl.trainer.export import export_backbone, export_provenance, load_backbone
from tests.support.audio_factory import write_chord
from tests.support.backbone_folders import training_checkpoint
from tests.support.labelled_shard_factory import tiny_backbone

OFFLINE = "sqlite:///{}/absent.db"


@pytest.fixture
def export(tmp_path: Path) -> Path:
    backbone, recipe = tiny_backbone(seed=1)
    return export_backbone(
        backbone, recipe, tmp_path / "runs" / "demo" / "vicreg" / "backbone.safetensors", run_id="r1"
    )


def assert_same_backbone(folder: Path, seed: int) -> None:
    original, recipe = tiny_backbone(seed=seed)
    loaded, loaded_recipe = from_pretrained(folder)
    assert loaded_recipe == recipe
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in original.state_dict().items())
    waves = torch.randn(3, original.num_samples, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(waves), original(waves))


def test_saved_from_an_export_it_loads_identical_and_the_card_has_recipe_and_provenance(
    export: Path, tmp_path: Path
) -> None:
    folder = save_pretrained(export, tmp_path / "shared", uri=OFFLINE.format(tmp_path))
    assert_same_backbone(folder, seed=1)
    assert export_provenance(folder) == {"pretext": "vicreg", "run_id": "r1"}
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: musicssl\n")
    backbone, recipe = tiny_backbone(seed=1)
    assert "| backbone | `resnet` |" in card and '"width": 8' in card and "16-d" in card
    assert "pretext: `vicreg`" in card and "MLflow run id: `r1`" in card and weights_hash(backbone, recipe) in card
    assert "## Not found" in card and "no MLflow store at" in card
    assert not (tmp_path / "absent.db").exists()  # looking never creates a store


def test_saved_from_a_checkpoint_it_loads_identical_with_the_checkpoints_provenance(tmp_path: Path) -> None:
    backbone, recipe = tiny_backbone(seed=4)
    checkpoint = training_checkpoint(tmp_path / "step-40", recipe, backbone, pretext="byol", run_id="r4")
    folder = save_pretrained(checkpoint, tmp_path / "shared", mlflow=False)
    assert_same_backbone(folder, seed=4)
    assert export_provenance(folder) == {"pretext": "byol", "run_id": "r4"}
    assert "saved with --no-mlflow" in (folder / "README.md").read_text()
    with pytest.raises(UserError, match="not a pretrained folder"):
        from_pretrained(checkpoint)
    with pytest.raises(UserError, match="is a training checkpoint"):
        save_pretrained(folder, checkpoint, mlflow=False)


def test_the_card_has_the_runs_params_and_the_probe_results_with_their_intervals(export: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    training = client.create_experiment("demo")
    run_id = client.create_run(training).info.run_id
    for name, value in {"study": "demo", "data": "demo", "epochs": "3", "steps_per_epoch": "20"}.items():
        client.log_param(run_id, name, value)
    downstream = client.create_experiment("downstream")
    backbone, recipe = tiny_backbone(seed=1)

    def evaluation(weights: str, random_init: bool, task: str) -> str:
        run = client.create_run(downstream, tags={KIND_TAG: "evaluation"}).info.run_id
        params = {"task": task, "protocol": "paper", "fraction": "1.0", "draw": "0"}
        params |= {"weights_sha256": weights, "random_init": str(random_init)}
        for name, value in params.items():
            client.log_param(run, name, value)
        client.log_metric(run, "roc_auc_tagwise_mean", 81.25)
        client.log_metric(run, "roc_auc_tagwise_std", 0.5)
        rows = "".join(f"{i},{80 + i},50,70,40\n" for i in range(21))
        client.log_text(
            run, "resample,roc_auc_tagwise,pr_auc_tagwise,roc_auc_clipwise,pr_auc_clipwise\n" + rows, BOOTSTRAP_ARTIFACT
        )
        return run

    found = evaluation(weights_hash(backbone, recipe), False, "mtat")
    evaluation(weights_hash(backbone, recipe), True, "random-weights")
    evaluation("another", False, "other-weights")
    folder = save_pretrained(export, tmp_path / "shared", run_id=run_id, uri=uri)
    card = (folder / "README.md").read_text()
    assert f"MLflow run id: `{run_id}`" in card
    assert "| epochs | `3` |" in card and "| steps | 60 |" in card and "| study | `demo` |" in card
    assert "81.25 +- 0.50 [80.50, 99.50]" in card and found in card  # percentiles 2.5 and 97.5 of 80..100
    assert "random-weights" not in card and "other-weights" not in card
    assert "## Not found" not in card


def test_the_command_writes_a_folder_that_embed_files_takes_like_the_export(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shared"
    assert main([str(export), "--out", str(folder), "--no-mlflow"]) == 0
    assert "wrote" in capsys.readouterr().out
    write_chord(tmp_path / "audio" / "a.wav", 1.5, base_hz=220.0)
    outputs = []
    for source in (export, folder):
        out = tmp_path / f"{source.name}.npy"
        assert (
            embed_files.main(["--backbone", str(source), str(tmp_path / "audio"), "--out", str(out), "--device", "cpu"])
            == 0
        )
        outputs.append(np.load(out))
    np.testing.assert_array_equal(*outputs)


def test_a_broken_folder_ends_a_command_with_one_line(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = save_pretrained(export, tmp_path / "shared", mlflow=False)
    (folder / "model.safetensors").unlink()
    args = ["--backbone", str(folder), str(export), "--out", str(tmp_path / "e.npy")]
    assert run_command(embed_files.main, args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.safetensors: missing from the pretrained folder" in err
    with pytest.raises(FileNotFoundError):
        load_backbone(folder)
