"""Import the published deezer/multi-view-ssl-benchmark checkpoints into our ``resnet`` backbone.

Their files are ``torch.save`` dicts whose ``model`` entry is the state dict of the whole pre-training
model. The backbone sits under ``module.backbone.`` (contrastive, Barlow Twins, VICReg - which deezer
calls ``feature_stats``) or, for the methods with an EMA teacher (BYOL, clustering), under
``student.module.backbone.``. Our ``resnet`` backbone uses deezer's names, so stripping the prefix gives
its state dict; it must be built with the deezer front end (``DeezerCheckpointInfo.backbone_kwargs``).
Files are read with ``torch.load(weights_only=True)``: a checkpoint never runs code on this machine.

Next to ``model`` the files hold ``optimizer`` (a torch optimizer state dict) and ``gin_info`` (the lines of
the gin file the run was configured with, ssl_framework/utils/gin.py ``get_save_dict``): the real training
settings. ``python -m trainer.checkpoint_import FILE.pt`` prints them.
"""

from __future__ import annotations

import pickle
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import tyro

from musicssl.data_prep.entry import run_command
from musicssl.trainer.backbones import build_backbone
from musicssl.trainer.frontend import DEEZER_FRONTEND

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
    gin_info: tuple[str, ...] = ()
    """The run's gin configuration lines (``Class.parameter = value``), as saved by deezer's training."""
    optimizer_groups: tuple[dict[str, Any], ...] = ()
    """The saved optimizer's hyperparameters per parameter group (lr, betas, weight_decay, ...), without the
    parameter ids; the optimizer's class is not saved, its keys tell Adam (betas) from SGD (momentum)."""
    scalars: dict[str, Any] = field(default_factory=dict)
    """The other plain entries (pretext, epoch, val_loss)."""

    def report(self) -> str:
        """What a user holding the released weights wants to see: where the backbone is and how it was trained."""
        lines = [f"{self.path}: backbone under {self.prefix!r}, {self.num_parameters:,} parameters"]
        lines += [f"{name}: {value}" for name, value in self.scalars.items()]
        for index, group in enumerate(self.optimizer_groups):
            settings = ", ".join(f"{key}={value}" for key, value in group.items())
            lines.append(f"optimizer param group {index}: {settings}")
        if not self.optimizer_groups:
            lines.append("optimizer: not saved")
        lines.append("gin configuration:" if self.gin_info else "gin configuration: not saved")
        lines += [f"  {line}" for line in self.gin_info]
        return "\n".join(lines)


PICKLE_PROTOCOL_MARK = b"\x80"  # the first byte of a pickle of protocol 2 or later (torch.save's legacy format)


def _check_is_torch_file(path: Path) -> None:
    """Refuse a file that is neither torch.save's zip archive nor a legacy pickle: damaged or of another kind."""
    with path.open("rb") as file:
        head = file.read(1)
    if not zipfile.is_zipfile(path) and head != PICKLE_PROTOCOL_MARK:
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle): the file is damaged "
            "or of another kind; download or copy it again"
        )


def _read_weights_only(path: Path) -> Any:
    """Load ``path`` without running pickled code, turning a refusal into an actionable error."""
    _check_is_torch_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: refused, the file holds Python objects beyond tensors and plain containers, which "
            f"could run code when unpickled (torch.load weights_only=True: {str(error).splitlines()[0]}). "
            "If you trust its origin, convert it once in a separate process: "
            "c = torch.load(path, weights_only=False); "
            "torch.save({k: c[k] for k in ('model', 'optimizer', 'gin_info') if k in c}, new_path), "
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


def _optimizer_groups(optimizer_state: Any) -> tuple[dict[str, Any], ...]:
    """The hyperparameters of each param group of a saved optimizer state dict (none if there is none)."""
    if not isinstance(optimizer_state, dict):
        return ()
    groups = optimizer_state.get("param_groups") or ()
    return tuple({key: value for key, value in group.items() if key != "params"} for group in groups)


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
        gin_info=tuple(str(line) for line in checkpoint.get("gin_info") or ()),
        optimizer_groups=_optimizer_groups(checkpoint.get("optimizer")),
        scalars={key: value for key, value in checkpoint.items() if isinstance(value, (str, int, float))},
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LogMelFrontend: f_max")  # expected for deezer's front end
        backbone = build_backbone("resnet", **info.backbone_kwargs)
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: backbone under {prefix!r} does not match the paper's ResNet: {error}") from error
    return state, info


def inspect_checkpoint(path: tyro.conf.Positional[Path]) -> None:
    """Print what a deezer checkpoint holds: the backbone's prefix and size, its optimizer and gin settings."""
    _, info = load_deezer_checkpoint(path)
    print(info.report())


def main(args: list[str]) -> int:
    """Command line: inspect one checkpoint (expected failures are one line, `--debug` for the traceback)."""
    tyro.cli(inspect_checkpoint, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
