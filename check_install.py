"""`python check_install.py`: prove in seconds that the installed packages work together, or say how to fix them.

Imports every module of the project's packages and runs the log-mel front end on a second of silence, so a
broken resolution (e.g. a torchaudio built for another torch, which fails with an undefined symbol) stops the
install with one message naming the failing module and the command that installs the locked set, instead of
failing later as collection errors in every test that imports it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import traceback

PACKAGES = ("musicssl.data_prep", "musicssl.sharding", "musicssl.trainer", "musicssl.downstream")  # installed names
FIX = (
    "The installed packages are not the locked set. Recreate the environment from the lock file:\n"
    "    make install            (removes .venv and installs requirements.lock, then the project)\n"
    "or, in a virtual environment of your own:\n"
    "    pip install --require-hashes -r requirements.lock && pip install --no-deps -e ."
)


def installed_version(distribution: str) -> str:
    """The installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def module_names(package: str) -> list[str]:
    """The package and all its submodules, except `__main__` ones (importing those would run them)."""
    root = importlib.import_module(package)
    names = [package]
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if module.name.rsplit(".", 1)[-1] != "__main__":
            names.append(module.name)
    return names


def import_everything() -> int:
    """Import every module of PACKAGES; returns how many were imported."""
    count = 0
    for package in PACKAGES:
        for name in module_names(package):
            importlib.import_module(name)
            count += 1
    return count


def run_frontend() -> tuple[int, ...]:
    """The mel front end on one second of silence at 16 kHz; returns the output shape."""
    import torch

    from musicssl.trainer.frontend import LogMelFrontend

    return tuple(LogMelFrontend(sample_rate=16000)(torch.zeros(1, 16000)).shape)


def main() -> int:
    """Run both checks; print a one-line summary, or what failed and how to fix it (exit 1)."""
    versions = ", ".join(f"{name} {installed_version(name)}" for name in ("torch", "torchaudio"))
    try:
        modules = import_everything()
        shape = run_frontend()
    except Exception as error:  # any failure here means the environment is unusable: report it whole
        print(traceback.format_exc(), file=sys.stderr)
        print(f"check_install: FAILED ({versions}): {type(error).__name__}: {error}\n{FIX}", file=sys.stderr)
        return 1
    print(f"check_install: ok ({versions}; {modules} modules imported; log-mel of 1 s: {shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
