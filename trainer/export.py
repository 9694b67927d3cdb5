"""The trained backbone on its own, as safetensors with the recipe to rebuild it, for the downstream stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from trainer.backbones import build_backbone


def export_backbone(backbone: nn.Module, name: str, kwargs: dict[str, Any], path: Path) -> Path:
    """Write the backbone's weights and `build_backbone(name, **kwargs)` as metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    metadata = {"backbone": name, "kwargs": json.dumps(kwargs)}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_exported_backbone(path: Path) -> nn.Module:
    """Rebuild a backbone exported by `export_backbone` and load its weights (strict)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if "backbone" not in metadata:
            raise ValueError(
                f"{path}: no backbone recipe in the safetensors metadata; export it with train.py"
            )
        state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    backbone = build_backbone(metadata["backbone"], **json.loads(metadata["kwargs"]))
    backbone.load_state_dict(state)
    return backbone
