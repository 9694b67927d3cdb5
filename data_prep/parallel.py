"""Map a function over items in worker processes, yielding results in input order, with bounded memory."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
IN_FLIGHT_PER_WORKER = 4  # keeps workers busy past a slow file at the head; bounds the decoded audio held


def map_in_order(fn: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """fn over items, results in input order, so the same inputs give the same shards whatever the timing;
    `workers <= 1` runs in this process (no start-up cost)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[Result]] = deque()
    # spawn: workers start clean, without the parent's threads (progress bar) or imported libraries
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
