"""The trained backbone on its own, and loading a frozen backbone from any source downstream accepts.

Sources: an exported `backbone.safetensors` (weights + the `build_backbone` recipe, and the pretext and MLflow
run id that trained it, as metadata: `export_provenance`), a pretrained folder in the Hugging Face layout
(`config.json` with the recipe and provenance, `model.safetensors`, a `README.md` model card: written by
`downstream.pretrained.save_pretrained`), a training checkpoint folder (`step-*/`, whose `backbone.json` holds the
recipe), or a deezer published `.pt` checkpoint. A folder with `backbone.json` or `loop_state.json` is a training
checkpoint; any other folder is read as a pretrained one.
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

from musicssl.data_prep.atomic import write_atomic
from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.checkpoint_import import load_deezer_checkpoint

RECIPE_NAME = "backbone.json"
STUDENT_WEIGHTS = "model.safetensors"  # Accelerate's file for the first prepared model (the student)
STUDENT_BACKBONE_PREFIX = "backbone."
PRETEXT_KEY, RUN_ID_KEY = "pretext", "run_id"  # safetensors metadata of an export besides its recipe
CHECKPOINT_STATE = "loop_state.json"  # a training checkpoint's loop position (its mlflow_run_id among them)
CHECKPOINT_CONFIG = "config.json"  # a training checkpoint's run configuration (its pretext among them)
PRETRAINED_CONFIG, PRETRAINED_WEIGHTS, PRETRAINED_CARD = "config.json", "model.safetensors", "README.md"
PRETRAINED_FORMAT_KEY, PRETRAINED_FORMAT = "musicssl_backbone", 1  # marks a pretrained folder's config.json
WRITE_FOLDER_FIX = "write the folder again with `python -m musicssl.downstream.pretrained BACKBONE --out FOLDER`"


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
    """`pretext` and `run_id` of an export, a pretrained folder or a training checkpoint, those it records; empty
    for a deezer `.pt`, older exports and anything unreadable (loading the source says what is wrong with it)."""
    path = Path(source)
    if path.is_dir():
        return _folder_provenance(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    return {key: metadata[key] for key in (PRETEXT_KEY, RUN_ID_KEY) if key in metadata}


def is_training_checkpoint(folder: Path) -> bool:
    """A folder written by train.py's checkpoints (its recipe or its loop state is there), not a pretrained one."""
    return (folder / RECIPE_NAME).exists() or (folder / CHECKPOINT_STATE).exists()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); {WRITE_FOLDER_FIX}") from None


def _folder_provenance(folder: Path) -> dict[str, str]:
    """What a checkpoint's config.json and loop_state.json, or a pretrained folder's config.json, record; files
    that are missing or unreadable give nothing (loading the folder says what is wrong with it)."""
    if is_training_checkpoint(folder):
        found = {
            PRETEXT_KEY: _json_object(folder / CHECKPOINT_CONFIG).get("pretext"),
            RUN_ID_KEY: _json_object(folder / CHECKPOINT_STATE).get("mlflow_run_id"),
        }
    else:
        config = _json_object(folder / PRETRAINED_CONFIG)
        found = {key: config.get(key) for key in (PRETEXT_KEY, RUN_ID_KEY)}
    return {key: str(value) for key, value in found.items() if value}


def _json_object(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def write_pretrained(
    backbone: nn.Module, recipe: BackboneRecipe, folder: Path, provenance: dict[str, str], card: str
) -> Path:
    """A pretrained folder: `config.json` (format marker, recipe, the backbone's rates and sizes, provenance),
    `model.safetensors` (an export: its metadata holds the recipe and provenance too, so the file alone loads)
    and the model card `README.md`. Each file is written atomically; the folder may exist (files are replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    export_backbone(
        backbone, recipe, folder / PRETRAINED_WEIGHTS, provenance.get(PRETEXT_KEY), provenance.get(RUN_ID_KEY)
    )
    config = {
        PRETRAINED_FORMAT_KEY: PRETRAINED_FORMAT,
        "library_name": "musicssl",
        "recipe": {"name": recipe.name, "kwargs": recipe.kwargs},
        "sample_rate": backbone.sample_rate,
        "num_samples": backbone.num_samples,
        "embed_dim": backbone.embed_dim,
        **{key: provenance[key] for key in (PRETEXT_KEY, RUN_ID_KEY) if provenance.get(key)},
    }
    write_atomic(folder / PRETRAINED_CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    write_atomic(folder / PRETRAINED_CARD, card.encode())
    return folder


def load_backbone(source: str | Path) -> tuple[nn.Module, BackboneRecipe]:
    """A backbone in eval mode with its weights, from an export, a pretrained folder, a training checkpoint or a
    deezer `.pt`."""
    path = Path(source)
    if path.is_dir() and not is_training_checkpoint(path):
        return _from_pretrained_folder(path)
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
            f"{path}: unknown backbone source; give a backbone.safetensors exported by train.py, a pretrained "
            "folder (config.json + model.safetensors), a checkpoint folder runs/.../checkpoints/step-*, or a "
            "deezer .pt checkpoint"
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


def _from_pretrained_folder(folder: Path) -> tuple[nn.Module, BackboneRecipe]:
    """The backbone of a pretrained folder; a broken folder is one line naming the file and the fix."""
    config_path, weights_path = folder / PRETRAINED_CONFIG, folder / PRETRAINED_WEIGHTS
    if not config_path.exists() and not weights_path.exists():
        raise FileNotFoundError(
            f"{folder}: neither a pretrained folder ({PRETRAINED_CONFIG} + {PRETRAINED_WEIGHTS}) nor a training "
            f"checkpoint ({RECIPE_NAME} + {STUDENT_WEIGHTS}, runs/.../checkpoints/step-*); give one of them"
        )
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing from the pretrained folder {folder}; {WRITE_FOLDER_FIX}")
    config = _read_json(config_path)
    if not isinstance(config, dict) or config.get(PRETRAINED_FORMAT_KEY) != PRETRAINED_FORMAT:
        raise ValueError(
            f"{config_path}: not a musicssl backbone config ({PRETRAINED_FORMAT_KEY!r}: {PRETRAINED_FORMAT} missing); "
            f"{WRITE_FOLDER_FIX}"
        )
    try:
        recipe = BackboneRecipe(config["recipe"]["name"], dict(config["recipe"]["kwargs"]))
    except (KeyError, TypeError):
        raise ValueError(f"{config_path}: no recipe {{name, kwargs}}; {WRITE_FOLDER_FIX}") from None
    try:
        state = load_file(str(weights_path))
    except Exception as error:  # safetensors' own error type for a truncated or foreign file
        raise ValueError(f"{weights_path}: unreadable safetensors ({error}); {WRITE_FOLDER_FIX}") from None
    backbone = recipe.build()
    try:
        backbone.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(
            f"{weights_path}: does not fit the recipe in {PRETRAINED_CONFIG} ({first}); {WRITE_FOLDER_FIX}"
        ) from None
    return backbone.eval(), recipe


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
