"""A copy of what the wheel installs as `musicssl` (the four packages, configs/ and the root's modules), for tests
that change or package the project without touching the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.paths import REPO

PACKAGES = ("data_prep", "sharding", "trainer", "downstream")


def copy_project(destination: Path) -> Path:
    """Copy the installed part of the checkout into `destination` (created); returns it."""
    for name in (*PACKAGES, "configs"):
        shutil.copytree(REPO / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    for path in REPO.glob("*.py"):
        shutil.copy2(path, destination / path.name)
    return destination
