"""The one `main` of the project's subcommand command lines (`python -m sharding`, `python -m downstream.sweeps`)."""

from __future__ import annotations

from typing import Any

import tyro

from musicssl.data_prep.entry import run_command


def run_subcommand(commands: dict[str, Any], argv: list[str] | None, prog: str) -> int:
    """Parse arguments and run the chosen subcommand's `run()`; an expected failure is one line `error: ...` and
    exit 2 (`--debug` shows the traceback), see data_prep.entry."""

    def run(args: list[str]) -> int:
        return tyro.extras.subcommand_cli_from_dict(commands, args=args, prog=prog).run()

    return run_command(run, argv)
