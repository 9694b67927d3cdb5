"""Fixtures the downstream tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicssl.trainer.export import export_backbone
from tests.support.labelled_shard_factory import tiny_backbone


@pytest.fixture(scope="session")
def backbone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded tiny ResNet, exported as train.py exports a backbone."""
    backbone, recipe = tiny_backbone()
    return export_backbone(backbone, recipe, tmp_path_factory.mktemp("model") / "backbone.safetensors")
