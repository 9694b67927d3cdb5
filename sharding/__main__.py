"""`python -m sharding {verify,inspect,stream,merge} DIR`: check, describe, stream from, merge shard sets."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from sharding.inspect import TOP_TAGS, inspect_set
from sharding.merge import merge_parts
from sharding.stream import PairStreamConfig, pair_loader, pairs_to_float
from sharding.verify import verify_set

DEMO_BATCHES = 3
DEMO_BATCH_SIZE = 8


def run_verify(args: argparse.Namespace) -> int:
    """Exit 1 and name every broken shard/member, else 0."""
    index, problems = verify_set(args.location, progress=True)
    for problem in problems:
        print(f"BROKEN {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.location}; rebuild the named shards", file=sys.stderr)
        return 1
    print(f"ok: {len(index.shards)} shards, {index.total_samples} tracks verified")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print the set's statistics."""
    print("\n".join(inspect_set(args.location, progress=True).lines(args.top_tags)))
    return 0


def run_stream(args: argparse.Namespace) -> int:
    """Stream a few batches of anchor/positive pairs; print their shape and what reading them cost."""
    config = PairStreamConfig(
        crop_seconds=args.crop_seconds,
        crop_samples=args.crop_samples,
        min_gap_seconds=args.min_gap_seconds,
        max_gap_seconds=args.max_gap_seconds,
        pairs_per_track=args.pairs_per_track,
        batch_size=args.batch_size,
        track_shuffle=args.track_shuffle,
        pair_shuffle=args.pair_shuffle,
        num_workers=args.workers,
        seed=args.seed,
        batches_per_epoch=args.batches,
    )
    loader = pair_loader(args.location, config, rank=0, world_size=1)
    print(
        f"{args.location}: {loader.sample_rate} Hz, crops of {loader.crop_samples} samples, "
        f"{config.pairs_per_track} pair(s) per track visit, {config.num_workers} loader worker(s)"
    )
    pairs, first, started = 0, 0.0, time.perf_counter()
    for number, batch in enumerate(loader, start=1):
        first = first or time.perf_counter() - started
        pairs += len(batch)
        low, high = pairs_to_float(batch).aminmax()
        low, high = low.item(), high.item()
        print(f"batch {number}: shape {tuple(batch.shape)} {batch.dtype}, values in [{low:.3f}, {high:.3f}]")
    seconds = time.perf_counter() - started
    stats = loader.stats
    print(f"delivered {pairs} pairs in {seconds:.2f} s, the first after {first:.2f} s (start-up, buffer fill)")
    print(
        f"cut {stats.pairs} pairs from {stats.tracks} track visits: {stats.pairs / seconds:.1f} pairs/s, "
        f"{stats.bytes / 1e6:.1f} MB read, {stats.bytes / max(stats.pairs, 1) / 1e3:.1f} kB per pair"
    )
    skipped = f"{stats.corrupt_skipped} unreadable member(s), {stats.short_skipped} track visit(s) too short"
    print(f"skipped {skipped} for a pair")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Merge the part-NNN sets of a data-preparation array job into one index and report."""
    print("\n".join(merge_parts(args.location).lines()))
    return 0


def add_stream_parser(commands: argparse._SubParsersAction) -> None:
    """The stream subcommand: a short demo run; loader settings default to PairStreamConfig's."""
    defaults = PairStreamConfig()
    stream = commands.add_parser("stream", help="stream a few batches of anchor/positive pairs and time them")
    stream.add_argument("location", help="shard set: folder, http(s) base URL or template with {}")
    stream.add_argument("--batches", type=int, default=DEMO_BATCHES, help="batches to stream")
    stream.add_argument("--batch-size", type=int, default=DEMO_BATCH_SIZE, help="pairs per batch")
    stream.add_argument(
        "--pairs-per-track", type=int, default=defaults.pairs_per_track, help="pairs cut per track visit"
    )
    stream.add_argument(
        "--workers",
        type=int,
        default=min(defaults.num_workers, os.cpu_count() or 1),
        help="loader worker processes (0: this process)",
    )
    stream.add_argument("--crop-seconds", type=float, default=defaults.crop_seconds, help="crop length")
    stream.add_argument("--crop-samples", type=int, default=None, help="crop length in samples (overrides)")
    stream.add_argument(
        "--min-gap-seconds",
        type=float,
        default=defaults.min_gap_seconds,
        help="least anchor-positive distance",
    )
    stream.add_argument(
        "--max-gap-seconds",
        type=float,
        default=defaults.max_gap_seconds,
        help="most anchor-positive distance",
    )
    stream.add_argument("--track-shuffle", type=int, default=defaults.track_shuffle, help="tracks held per worker")
    stream.add_argument("--pair-shuffle", type=int, default=defaults.pair_shuffle, help="pairs held per worker")
    stream.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    stream.set_defaults(run=run_stream)


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per tool; each sets `run` to its handler."""
    parser = argparse.ArgumentParser(prog="python -m sharding", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="re-read every indexed shard: checksums, counts, decoding")
    verify.add_argument("location", help="shard set folder (with index.json)")
    verify.set_defaults(run=run_verify)
    inspect = commands.add_parser("inspect", help="shards, tracks, hours, durations, tags, splits")
    inspect.add_argument("location", help="shard set folder (with index.json)")
    inspect.add_argument("--top-tags", type=int, default=TOP_TAGS, help="how many of the commonest tags to list")
    inspect.set_defaults(run=run_inspect)
    add_stream_parser(commands)
    merge = commands.add_parser("merge", help="index the part-NNN sets of slurm/data_prep_array.sh as one set")
    merge.add_argument("location", help="the array job's output folder (holding part-000, part-001, ...)")
    merge.set_defaults(run=run_merge)
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
