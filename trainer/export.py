"""The trained backbone on its own, and loading a frozen backbone from any source downstream accepts.

Sources: an exported `backbone.safetensors` (weights + the `build_backbone` recipe, and the pretext and MLflow
run id that trained it, as metadata: `export_provenance`), a training
checkpoint folder (`step-*/`, whose `backbone.json` holds the recipe), or a deezer published `.pt` checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.checkpoint_import import load_deezer_checkpoint

RECIPE_NAME = "backbone.json"
STUDENT_WEIGHTS = "model.safetensors"  # Accelerate's file for the first prepared model (the student)
STUDENT_BACKBONE_PREFIX = "backbone."
PRETEXT_KEY, RUN_ID_KEY = "pretext", "run_id"  # safetensors metadata of an export besides its recipe


@dataclass(frozen=True)
class BackboneRecipe:
    """How to rebuild a backbone: `build_backbone(name, **kwargs)`."""

    name: str
    kwargs: dict[str, Any]

    def build(self) -> nn.Module:
        return build_backbone(self.name, **self.kwargs)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "kwargs": self.kwargs})

    @classmethod
    def from_json(cls, text: str) -> BackboneRecipe:
        body = json.loads(text)
        return cls(body["name"], body["kwargs"])


def export_backbone(
    backbone: nn.Module, recipe: BackboneRecipe, path: Path, pretext: str | None = None, run_id: str | None = None
) -> Path:
    """Write the backbone's weights with its recipe, pretext and run id as safetensors metadata (atomically), so
    the export says what made it wherever it is copied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    provenance = {PRETEXT_KEY: pretext, RUN_ID_KEY: run_id}
    metadata = {"recipe": recipe.to_json()} | {key: value for key, value in provenance.items() if value is not None}
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def export_provenance(source: str | Path) -> dict[str, str]:
    """`pretext` and `run_id` of an export, those it records; empty for other sources and older exports."""
    path = Path(source)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    return {key: metadata[key] for key in (PRETEXT_KEY, RUN_ID_KEY) if key in metadata}


def load_backbone(source: str | Path) -> tuple[nn.Module, BackboneRecipe]:
    """A backbone in eval mode with its weights, from an export, a training checkpoint or a deezer `.pt`."""
    path = Path(source)
    if path.is_dir():
        recipe, state = _from_training_checkpoint(path)
    elif path.suffix == ".safetensors":
        recipe, state = _from_export(path)
    elif path.suffix in (".pt", ".pth"):
        state, info = load_deezer_checkpoint(path)
        recipe = BackboneRecipe("resnet", dict(info.backbone_kwargs))
    elif not path.exists():
        raise FileNotFoundError(f"{path}: no such backbone file or checkpoint folder")
    else:
        raise ValueError(
            f"{path}: unknown backbone source; give a backbone.safetensors exported by train.py, "
            "a checkpoint folder runs/.../checkpoints/step-*, or a deezer .pt checkpoint"
        )
    backbone = recipe.build()
    backbone.load_state_dict(state)
    return backbone.eval(), recipe


def _from_export(path: Path) -> tuple[BackboneRecipe, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "recipe" not in metadata:
        raise ValueError(f"{path}: no backbone recipe in the safetensors metadata; export it with train.py")
    return BackboneRecipe.from_json(metadata["recipe"]), load_file(str(path))


def _from_training_checkpoint(folder: Path) -> tuple[BackboneRecipe, dict[str, torch.Tensor]]:
    recipe_path, weights_path = folder / RECIPE_NAME, folder / STUDENT_WEIGHTS
    for needed in (recipe_path, weights_path):
        if not needed.exists():
            raise FileNotFoundError(f"{needed}: missing; is {folder} a checkpoint written by train.py?")
    student = load_file(str(weights_path))
    state = {
        key[len(STUDENT_BACKBONE_PREFIX) :]: value
        for key, value in student.items()
        if key.startswith(STUDENT_BACKBONE_PREFIX)
    }
    return BackboneRecipe.from_json(recipe_path.read_text()), state
