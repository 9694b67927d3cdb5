"""Random access over HTTP (the test range server in a child process) at several latencies per request."""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from benchmarks.loader.common import (
    Args,
    measure,
    open_reader,
)
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader
from tests.support.range_server import serve


@dataclass
class HttpRow:
    """Random access over HTTP for one (latency, requests in flight, workers)."""

    latency_ms: float
    requests_in_flight: int
    workers: int
    batch_size: int
    pairs_per_s: float  # per worker
    first_batch_s: float
    latency_bound: float  # in_flight / (2 requests x latency): the most pairs/s per worker latency allows


def serve_in_child(root: Path, latency_s: float, connection: Connection) -> None:
    """Serve `root` until told to stop (the body of the server's child process)."""
    with serve(root, latency_s=latency_s) as server:
        connection.send(server.url)
        connection.recv()


@contextlib.contextmanager
def http_set(root: Path, latency_s: float) -> Iterator[str]:
    """The base URL of `root` served with ranges by a child process, so the server does not share our GIL."""
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=serve_in_child, args=(root, latency_s, theirs))
    server.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        server.join()


def batches_equal(first: RandomAccessReader, second: RandomAccessReader, batches: int = 3) -> bool:
    """Whether two random-access readers give the same first batches."""
    return all(torch.equal(first.dataset.read_batch(0, b), second.dataset.read_batch(0, b)) for b in range(batches))


def http_rows(shards: Path, args: Args) -> tuple[list[HttpRow], bool]:
    """Random access over HTTP per (latency, requests in flight, workers); and whether it reads the local batches."""
    rows, matches = [], False
    for latency_ms in args.http_latencies_ms:
        with http_set(shards, latency_ms / 1000) as url:
            if latency_ms == 0:
                local = open_reader("random access", shards, args.batch_size, num_workers=0)
                remote = open_reader("random access", url, args.batch_size, num_workers=0)
                assert isinstance(local, RandomAccessReader) and isinstance(remote, RandomAccessReader)
                matches = batches_equal(local, remote)
            for in_flight, workers in itertools.product((PairsConfig.requests_in_flight, 1), args.http_workers):
                batch = args.batch_size if in_flight > 1 else args.http_sequential_batch_size
                config = {"num_workers": workers, "requests_in_flight": in_flight}
                loader = open_reader("random access", url, batch, **config)
                row = measure(loader, "random access", "http", workers, args.http_measured_pairs, args.http_seconds)
                bound = in_flight / (2 * latency_ms / 1000) if latency_ms else math.inf
                rows.append(
                    HttpRow(latency_ms, in_flight, workers, batch, row.pairs_per_s, row.first_batch_s or 0.0, bound)
                )
    return rows, matches


def print_http(rows: list[HttpRow], matches_local: bool | None) -> None:
    """Random access over HTTP by latency and requests in flight."""
    print("\nrandom access over HTTP (test server in a child process; latency added per request)")
    print(f"  batches equal the local reads for the same seed: {'ok' if matches_local else 'MISMATCH'}")
    print("  latency  in flight  workers  batch  pairs/s/wkr  1st batch s  latency bound pairs/s/wkr")
    for row in rows:
        bound = "" if math.isinf(row.latency_bound) else f"{row.latency_bound:,.0f}"
        print(
            f"  {row.latency_ms:5.0f} ms {row.requests_in_flight:10d} {row.workers:8d} {row.batch_size:6d} "
            f"{row.pairs_per_s:12,.0f} {row.first_batch_s:12.2f}  {bound:>12}"
        )
