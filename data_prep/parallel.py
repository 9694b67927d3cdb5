"""Map a function over items in worker processes, yielding results as they finish, with bounded memory."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
IN_FLIGHT_PER_WORKER = 2  # enough to keep workers busy while the parent writes; bounds decoded audio held


def map_unordered(fn: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """fn over items, in completion order; `workers <= 1` runs in this process (no start-up cost)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: set[Future[Result]] = set()
    todo = iter(items)
    # spawn: workers start clean, without the parent's threads (progress bar) or imported libraries
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            for item in todo:
                pending.add(pool.submit(fn, item))
                if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        finally:
            for future in pending:
                future.cancel()
