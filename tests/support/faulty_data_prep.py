"""Run `python -m data_prep ARGS` with a fault at a named point, for tests: the process kills itself (SIGKILL) or
pauses (creates a marker file, then waits to be killed) at the HIT-th time it reaches POINT.

    python tests/support/faulty_data_prep.py POINT HIT kill|pause MARKER ARGS...

Points, in the order one shard passes them: `track` (before a file is decoded), `renamed` (the shard renamed from
.partial, not yet hashed, reported or indexed), `report` / `reported` (before / after report rows are appended),
`index` / `indexed` (before / after index.json is saved; hit 1 is the new set's empty index), `table` (before
tracks.parquet is written at the end).
"""

import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import musicssl.sharding.build
import musicssl.sharding.writer
from musicssl.data_prep.__main__ import main
from musicssl.data_prep.report import Report
from musicssl.sharding.format import ShardIndex

POINT, HIT, ACTION, MARKER = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
reached: Counter[str] = Counter()


def fault(point: str) -> None:
    """Kill or pause here if this is the chosen point's chosen hit."""
    reached[point] += 1
    if point != POINT or reached[point] != HIT:
        return
    if ACTION == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    MARKER.touch()
    time.sleep(600)


def around(function: Callable[..., Any], before: str | None, after: str | None) -> Callable[..., Any]:
    """`function` with a fault point before and after it."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if before:
            fault(before)
        result = function(*args, **kwargs)
        if after:
            fault(after)
        return result

    return wrapped


musicssl.sharding.build.prepare_track = around(musicssl.sharding.build.prepare_track, "track", None)
musicssl.sharding.writer.sha256_file = around(musicssl.sharding.writer.sha256_file, "renamed", None)
musicssl.sharding.writer.build_track_table = around(musicssl.sharding.writer.build_track_table, "table", None)
Report.append = around(Report.append, "report", "reported")
ShardIndex.save = around(ShardIndex.save, "index", "indexed")
sys.exit(main(sys.argv[5:]))
