"""The one `main` of the project's subcommand command lines (`python -m sharding`, `python -m downstream.sweeps`)."""

from __future__ import annotations

import sys
from typing import Any

import tyro


def run_subcommand(commands: dict[str, Any], argv: list[str] | None, prog: str) -> int:
    """Parse arguments, run the chosen subcommand's `run()`; 2, with the reason on stderr, for an input that is
    missing or cannot be read."""
    command = tyro.extras.subcommand_cli_from_dict(commands, args=argv, prog=prog)
    try:
        return command.run()
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
