"""Locating and reading the published metadata files (split lists, annotations) that adapters start from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def find_file(name: str, folders: Sequence[Path], hint: str) -> Path:
    """The first `folder/name` that exists, or an error naming every place tried and how to get the file."""
    tried = [folder / name for folder in folders]
    for path in tried:
        if path.is_file():
            return path
    places = ", ".join(str(path) for path in tried)
    raise FileNotFoundError(f"{name} not found (looked at {places}). {hint}")


def load_strings(path: Path) -> list[str]:
    """Read a 1-d .npy array of strings without unpickling: published split files are plain str arrays."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"{path}: cannot read it as a plain string array ({error}). Use the split file as published "
            "(an array of str, not of objects) or re-save it with numpy.save(path, array.astype(str))."
        ) from error
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise ValueError(f"{path}: expected a 1-d array of strings, found shape {array.shape} dtype {array.dtype}")
    return [item.decode() if isinstance(item, bytes) else str(item) for item in array.tolist()]


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped, so trailing newlines or CRLF endings do not matter."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
