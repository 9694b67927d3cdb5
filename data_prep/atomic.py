"""Crash-safe file replacement for every file the stages write (report, index, track table, caches)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o644


TEMPORARY_PATTERN = ".*.tmp"  # what write_atomic's mkstemp names look like


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed `write_atomic` left in `folder`; only while holding the folder
    (data_prep.locks), so that no live writer's file is among them."""
    for stale in folder.glob(TEMPORARY_PATTERN):
        stale.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that a kill at any moment leaves either the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes 0600; others must read a shared set
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
