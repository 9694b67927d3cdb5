"""Tests for the pretrained folder in `trainer.export`: written by `write_pretrained`, read by `load_backbone` like
any source, told apart from a training checkpoint (which also holds config.json and model.safetensors), and a
broken one refused in one line that names the file and the fix."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from musicssl.trainer.export import (
    export_provenance,
    is_training_checkpoint,
    load_backbone,
    write_pretrained,
)
from tests.support.backbone_folders import training_checkpoint
from tests.support.labelled_shard_factory import tiny_backbone

PROVENANCE = {"pretext": "vicreg", "run_id": "0123abcd"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    backbone, recipe = tiny_backbone(seed=3)
    return write_pretrained(backbone, recipe, tmp_path / "shared", PROVENANCE, "# card\n")


def test_a_pretrained_folder_loads_with_identical_weights_outputs_and_provenance(folder: Path) -> None:
    assert sorted(path.name for path in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    original, recipe = tiny_backbone(seed=3)
    loaded, loaded_recipe = load_backbone(folder)
    assert loaded_recipe == recipe and not loaded.training
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    waves = torch.randn(2, original.num_samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(waves), original(waves))
    assert export_provenance(folder) == PROVENANCE
    config = json.loads((folder / "config.json").read_text())
    assert config["recipe"] == {"name": recipe.name, "kwargs": recipe.kwargs}
    assert (config["sample_rate"], config["embed_dim"]) == (16000, 16)
    # the weights file alone is an export, with the same provenance
    assert export_provenance(folder / "model.safetensors") == PROVENANCE
    assert load_backbone(folder / "model.safetensors")[1] == recipe


def test_a_training_checkpoint_is_still_read_as_one_with_its_provenance(tmp_path: Path) -> None:
    backbone, recipe = tiny_backbone(seed=5)
    checkpoint = training_checkpoint(tmp_path / "step-40", recipe, backbone, run_id="run-of-the-checkpoint")
    assert is_training_checkpoint(checkpoint)
    loaded, loaded_recipe = load_backbone(checkpoint)
    assert loaded_recipe == recipe
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in backbone.state_dict().items())
    assert export_provenance(checkpoint) == {"pretext": "byol", "run_id": "run-of-the-checkpoint"}


def drop(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def write(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text)


def other_recipe(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["recipe"]["kwargs"]["width"] = 4
    (folder / "config.json").write_text(json.dumps(config))


def truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


@pytest.mark.parametrize(
    ("breakage", "file", "says"),
    [
        (drop("model.safetensors"), "model.safetensors", "missing from the pretrained folder"),
        (drop("config.json"), "config.json", "missing from the pretrained folder"),
        (write("config.json", "{not json"), "config.json", "not valid JSON"),
        (write("config.json", '{"recipe": {"name": "resnet", "kwargs": {}}}'), "config.json", "not a musicssl"),
        (write("config.json", '{"musicssl_backbone": 1}'), "config.json", "no recipe"),
        (truncate_weights, "model.safetensors", "unreadable safetensors"),
        (other_recipe, "model.safetensors", "does not fit the recipe"),
    ],
    ids=["no-weights", "no-config", "bad-json", "no-marker", "no-recipe", "truncated", "other-recipe"],
)
def test_a_broken_pretrained_folder_is_one_line_naming_the_file_and_the_fix(
    folder: Path, breakage: Callable[[Path], None], file: str, says: str
) -> None:
    breakage(folder)
    with pytest.raises((ValueError, FileNotFoundError)) as raised:
        load_backbone(folder)
    message = str(raised.value)
    assert message.startswith(str(folder / file)) and says in message and "\n" not in message
    assert "downstream.pretrained BACKBONE --out FOLDER" in message


def test_a_folder_that_is_neither_says_what_either_needs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"neither a pretrained folder .* nor a training checkpoint"):
        load_backbone(tmp_path)


def test_provenance_of_an_unreadable_checkpoint_config_is_empty_not_an_error(tmp_path: Path) -> None:
    backbone, recipe = tiny_backbone()
    checkpoint = training_checkpoint(tmp_path / "step-40", recipe, backbone)
    (checkpoint / "config.json").write_text("{cut")
    (checkpoint / "loop_state.json").unlink()
    assert export_provenance(checkpoint) == {}
    assert load_backbone(checkpoint)[1] == recipe
