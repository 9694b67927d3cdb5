"""How every command ends on an expected failure: one line `error: ...` on stderr (the message names the file and
the fix) and exit status 2, no traceback. Bugs keep their traceback; `--debug` shows it for expected failures too.

Expected: an OSError (a file missing, unreadable, a full disk), a `UserError`, or a ValueError, RuntimeError or
FloatingPointError raised by this project's own code (its checks of input and settings). The same types raised
inside a library or by Python itself (a ZeroDivisionError, a KeyError, a torch shape error) are bugs.
"""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

DEBUG_FLAG = "--debug"
EXIT_ERROR = 2
PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The folder of the packages: the checkout, or site-packages/musicssl once installed from the wheel (pyproject.toml
installs the checkout's root as the package musicssl, so both have the same layout)."""
CHECKED_TYPES = (ValueError, RuntimeError, FloatingPointError)
DISK_ERRNOS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded"}


class UserError(Exception):
    """A failure caused by the input or the environment, whose message says what to do."""


def raised_by_project(error: BaseException) -> bool:
    """The innermost frame of the error's traceback is in this project's code, not a library's."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    path = Path(frames[-1].filename).resolve()
    return path.is_relative_to(PROJECT_ROOT) and "site-packages" not in path.relative_to(PROJECT_ROOT).parts


def config_dir() -> Path:
    """configs/ (presets, sweeps, published references, accelerate configs): the checkout's, or the copy the wheel
    installs as package data (site-packages/musicssl/configs)."""
    return PROJECT_ROOT / "configs"


def is_expected(error: BaseException) -> bool:
    if isinstance(error, (OSError, UserError)):
        return True
    return isinstance(error, CHECKED_TYPES) and raised_by_project(error)


def describe(error: BaseException) -> str:
    """The one line for an expected failure; a full disk names the file and the fix."""
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        where = f" writing {error.filename}" if error.filename else ""
        return f"{DISK_ERRNOS[error.errno]}{where}: free space or write elsewhere, then run the same command again"
    return str(error) or type(error).__name__


def run_command(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run `main` on the arguments (without --debug); an expected failure becomes `error: ...` and exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in args
    args = [arg for arg in args if arg != DEBUG_FLAG]
    try:
        return main(args)
    except Exception as error:
        if debug or not is_expected(error):
            raise
        print(f"error: {describe(error)}", file=sys.stderr)
        return EXIT_ERROR
