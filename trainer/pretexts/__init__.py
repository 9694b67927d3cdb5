"""The five pretext tasks, by name: ``build_pretext(name, backbone, config)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from musicssl.trainer.presets import check_choices
from musicssl.trainer.pretexts.barlow_twins import BarlowTwins
from musicssl.trainer.pretexts.base import Encoder, Pretext, PretextOutput
from musicssl.trainer.pretexts.byol import BYOL
from musicssl.trainer.pretexts.clustering import Clustering
from musicssl.trainer.pretexts.contrastive import Contrastive
from musicssl.trainer.pretexts.vicreg import VICReg

PRETEXTS: dict[str, type[Pretext]] = {cls.name: cls for cls in (Contrastive, BYOL, Clustering, BarlowTwins, VICReg)}


def build_pretext(name: str, backbone: nn.Module, config: Any = None) -> Pretext:
    """Pretext ``name`` around ``backbone``; ``config``: its Config, a dict of overrides or None (paper)."""
    if name not in PRETEXTS:
        raise KeyError(f"unknown pretext {name!r}; choose one of {sorted(PRETEXTS)}")
    cls = PRETEXTS[name]
    if isinstance(config, Mapping):
        known = {field.name for field in dataclasses.fields(cls.Config)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise KeyError(f"pretext {name!r}: unknown settings {unknown}; valid: {sorted(known)}")
        config = cls.Config(**config)
        check_choices(config, where=f"pretext {name!r}")
    return cls(backbone, config)


__all__ = ["PRETEXTS", "Encoder", "Pretext", "PretextOutput", "build_pretext"]
