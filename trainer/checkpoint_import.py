"""Import the published deezer/multi-view-ssl-benchmark checkpoints into our ``resnet`` backbone.

Their files are ``torch.save`` dicts whose ``model`` entry is the state dict of the whole pre-training
model. The backbone sits under ``module.backbone.`` (contrastive, Barlow Twins, VICReg - which deezer
calls ``feature_stats``) or, for the methods with an EMA teacher (BYOL, clustering), under
``student.module.backbone.``. Our ``resnet`` backbone uses deezer's names, so stripping the prefix gives
its state dict; it must be built with the deezer front end (``DeezerCheckpointInfo.backbone_kwargs``).
Files are read with ``torch.load(weights_only=True)``: a checkpoint never runs code on this machine.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.backbones import build_backbone
from trainer.frontend import DEEZER_FRONTEND

BACKBONE_PREFIXES = ("student.module.backbone.", "module.backbone.")
"""Where deezer checkpoints keep the backbone: teacher-student methods first, then the others."""


@dataclass(frozen=True)
class DeezerCheckpointInfo:
    """What the importer learnt about a deezer checkpoint and how to build the matching backbone."""

    path: Path
    prefix: str
    backbone_kwargs: dict[str, Any] = field(default_factory=lambda: dict(DEEZER_FRONTEND))
    other_entries: tuple[str, ...] = ()
    num_parameters: int = 0


def _read_weights_only(path: Path) -> Any:
    """Load ``path`` without running pickled code, turning a refusal into an actionable error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: refused, the file holds Python objects beyond tensors and plain containers, which "
            f"could run code when unpickled (torch.load weights_only=True: {str(error).splitlines()[0]}). "
            "If you trust its origin, convert it once in a separate process: "
            "torch.save({'model': torch.load(path, weights_only=False)['model']}, new_path), "
            "then import new_path"
        ) from error


def _backbone_prefix(path: Path, model_state: dict[str, Any]) -> str:
    """Find the prefix under which the checkpoint stores the backbone."""
    for prefix in BACKBONE_PREFIXES:
        if any(key.startswith(prefix) for key in model_state):
            return prefix
    sample = ", ".join(list(model_state)[:5])
    raise ValueError(
        f"{path}: no backbone found; expected keys under one of {BACKBONE_PREFIXES} in checkpoint['model'], "
        f"found e.g. {sample}"
    )


def load_deezer_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], DeezerCheckpointInfo]:
    """Backbone state dict of a deezer checkpoint, for ``build_backbone("resnet", **info.backbone_kwargs)``.

    The state dict is checked by loading it strictly into such a backbone: no missing or unexpected
    keys, the same shapes and the same mel filterbank.
    """
    path = Path(path)
    checkpoint = _read_weights_only(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ValueError(f"{path}: not a deezer checkpoint, expected a dict with a 'model' state dict entry")
    model_state = checkpoint["model"]
    prefix = _backbone_prefix(path, model_state)
    state = {key[len(prefix) :]: value for key, value in model_state.items() if key.startswith(prefix)}
    info = DeezerCheckpointInfo(
        path=path,
        prefix=prefix,
        other_entries=tuple(sorted(key for key in checkpoint if key != "model")),
        num_parameters=sum(value.numel() for value in state.values() if value.is_floating_point()),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LogMelFrontend: f_max")  # expected for deezer's front end
        backbone = build_backbone("resnet", **info.backbone_kwargs)
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: backbone under {prefix!r} does not match the paper's ResNet: {error}") from error
    return state, info
