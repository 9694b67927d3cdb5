"""A training checkpoint folder as train.py writes it, as far as loading its backbone and provenance goes."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from musicssl.trainer.export import RECIPE_NAME, STUDENT_WEIGHTS, BackboneRecipe


def training_checkpoint(
    folder: Path, recipe: BackboneRecipe, backbone: torch.nn.Module, pretext: str = "byol", run_id: str = "run-1"
) -> Path:
    """backbone.json, the run's config.json, loop_state.json and the student's model.safetensors (with a projector)."""
    folder.mkdir(parents=True)
    (folder / RECIPE_NAME).write_text(recipe.to_json())
    (folder / "config.json").write_text(json.dumps({"pretext": pretext, "study": "demo"}))
    (folder / "loop_state.json").write_text(json.dumps({"step": 40, "mlflow_run_id": run_id}))
    student = {f"backbone.{key}": value.contiguous() for key, value in backbone.state_dict().items()}
    save_file(student | {"projector.weight": torch.zeros(2, 2)}, str(folder / STUDENT_WEIGHTS))
    return folder
