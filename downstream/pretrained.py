"""`python -m downstream.pretrained BACKBONE --out FOLDER`: a backbone as a Hugging Face style folder.

The folder holds `config.json` (the recipe, the backbone's input and embedding sizes, the pretext and MLflow run
id), `model.safetensors` (the weights; an export in its own right) and a `README.md` model card generated from the
run (`downstream.model_card`: recipe and provenance always; the pre-training run's params and the probe results
with their intervals when MLflow has them). BACKBONE is any source `load_backbone` reads: an exported
backbone.safetensors, a training checkpoint folder, a deezer .pt, or another pretrained folder (to refresh its
card). The folder is itself a source: `evaluate.py --backbone FOLDER`, `downstream.embed_files --backbone
FOLDER`, `load_backbone(FOLDER)` and `from_pretrained(FOLDER)` load it, offline.

Sharing it on the Hugging Face Hub needs nothing from this project (`pip install huggingface_hub`, then log in):

    huggingface-cli upload USER/NAME FOLDER .        # or, in Python:
    huggingface_hub.upload_folder(repo_id="USER/NAME", folder_path="FOLDER")

and `huggingface_hub.snapshot_download("USER/NAME")` gives back a folder that loads as above.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro
from torch import nn

from musicssl.data_prep.entry import UserError, run_command
from musicssl.downstream.cli import UNKNOWN_PRETEXT, pretext_of
from musicssl.downstream.extract_task import weights_hash
from musicssl.downstream.model_card import TrackedFacts, render_card, tracked_facts
from musicssl.trainer.export import (
    PRETEXT_KEY,
    RUN_ID_KEY,
    BackboneRecipe,
    export_provenance,
    is_training_checkpoint,
    load_backbone,
    write_pretrained,
)
from musicssl.trainer.tracking import tracking_uri


def save_pretrained(
    source: str | Path,
    folder: str | Path,
    run_id: str | None = None,
    pretext: str | None = None,
    uri: str | None = None,
    mlflow: bool = True,
) -> Path:
    """Write the backbone of `source` as a pretrained folder; `run_id` and `pretext` override what the source
    records; the card reads MLflow at `uri` (default: the trainer's tracking URI) unless `mlflow` is False."""
    folder = Path(folder)
    if folder.is_dir() and is_training_checkpoint(folder):
        raise UserError(f"{folder} is a training checkpoint; write the pretrained folder elsewhere (--out)")
    backbone, recipe = load_backbone(source)
    provenance = export_provenance(source)
    if run_id is not None:
        provenance[RUN_ID_KEY] = run_id
    guessed = pretext or pretext_of(str(source), provenance)
    if guessed != UNKNOWN_PRETEXT:
        provenance[PRETEXT_KEY] = guessed
    digest = weights_hash(backbone, recipe)
    if mlflow:
        facts = tracked_facts(uri or tracking_uri(), provenance.get(RUN_ID_KEY), digest)
    else:
        facts = TrackedFacts(missing=["MLflow was not read (saved with --no-mlflow)"])
    card = render_card(folder.resolve().name, recipe, sizes_of(backbone), provenance, digest, facts)
    return write_pretrained(backbone, recipe, folder, provenance, card)


def from_pretrained(folder: str | Path) -> tuple[nn.Module, BackboneRecipe]:
    """The backbone of a pretrained folder, in eval mode, with its recipe (`load_backbone` reads every source)."""
    path = Path(folder)
    if not path.is_dir() or is_training_checkpoint(path):
        raise UserError(f"{path}: not a pretrained folder (config.json + model.safetensors); load_backbone reads it")
    return load_backbone(path)


def sizes_of(backbone: nn.Module) -> dict[str, int]:
    """The backbone's input rate and length and its embedding size."""
    return {
        "sample_rate": int(backbone.sample_rate),
        "num_samples": int(backbone.num_samples),
        "embed_dim": int(backbone.embed_dim),
    }


@dataclass(frozen=True)
class SaveArgs:
    """Write a backbone as a Hugging Face style folder: config.json, model.safetensors and a README.md model card."""

    backbone: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="BACKBONE")]
    """backbone.safetensors exported by train.py, a checkpoint folder runs/.../checkpoints/step-*, a deezer .pt
    checkpoint, or a pretrained folder."""
    out: Path
    """The folder to write (created; its three files are replaced)."""
    run_id: str | None = None
    """MLflow run id of the pre-training; default: the one the source records."""
    pretext: str | None = None
    """Pretext name; default: the one the source records, else read from its path."""
    tracking_uri: str | None = None
    """MLflow tracking URI for the card; default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here."""
    mlflow: bool = True
    """Read the pre-training run and the evaluation runs from MLflow for the card (--no-mlflow: recipe and
    provenance only)."""


def main(argv: list[str] | None = None) -> int:
    """Command line: write the folder and say what the card could not find."""
    args = tyro.cli(SaveArgs, args=argv)
    folder = save_pretrained(args.backbone, args.out, args.run_id, args.pretext, args.tracking_uri, args.mlflow)
    print(f"wrote {folder}: config.json, model.safetensors, README.md")
    return 0


def cli() -> int:
    """The console script `musicssl-pretrained` (pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
