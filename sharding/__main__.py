"""`python -m sharding {verify,inspect} DIR`: check a shard set against its index, or describe it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sharding.inspect import TOP_TAGS, inspect_set
from sharding.verify import verify_set


def run_verify(args: argparse.Namespace) -> int:
    """Exit 1 and name every broken shard/member, else 0."""
    index, problems = verify_set(args.location)
    for problem in problems:
        print(f"BROKEN {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.location}; rebuild the named shards", file=sys.stderr)
        return 1
    print(f"ok: {len(index.shards)} shards, {index.total_samples} tracks verified")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print the set's statistics."""
    print("\n".join(inspect_set(args.location).lines(args.top_tags)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per tool; each sets `run` to its handler."""
    parser = argparse.ArgumentParser(prog="python -m sharding", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="re-read every indexed shard: checksums, counts, decoding")
    verify.add_argument("location", help="shard set folder (with index.json)")
    verify.set_defaults(run=run_verify)
    inspect = commands.add_parser("inspect", help="shards, tracks, hours, durations, tags, splits")
    inspect.add_argument("location", help="shard set folder (with index.json)")
    inspect.add_argument(
        "--top-tags", type=int, default=TOP_TAGS, help="how many of the commonest tags to list"
    )
    inspect.set_defaults(run=run_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; 2 for a set that cannot be read at all."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
