"""report.csv: exactly one row per input file, appended and fsynced as outcomes become final.

Columns `path,status,reason,duration_s` come first; `track_id,shard,audio_sha1` follow for resuming (which
shard holds an ok track, and its content hash for duplicate detection). An `ok` row is written only when its
shard is committed; on start-up `ok` rows whose shard is not in the index are dropped (their tracks are
redone) and an incomplete last line left by a kill is cut off. A file that is not a report is set aside as
`report.csv.damaged`; the ok rows then come back from the shards (sharding.recover).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from musicssl.data_prep.atomic import write_atomic

REPORT_NAME = "report.csv"
DAMAGED_SUFFIX = ".damaged"
STATUSES = ("ok", "skipped", "failed")


@dataclass
class ReportRow:
    """The outcome of one input file."""

    path: str
    status: str
    reason: str = ""
    duration_s: float | None = None
    track_id: str = ""
    shard: str = ""
    audio_sha1: str = ""

    @property
    def category(self) -> str:
        """The reason without its details ('too short for a pair', 'duplicate', ...), or the status."""
        return self.reason.split(":", 1)[0] if self.reason else self.status


COLUMNS = tuple(f.name for f in fields(ReportRow))


class Report:
    """The report file of one output folder, with the rows it already holds indexed by input path."""

    def __init__(self, path: Path, rows: dict[str, ReportRow]) -> None:
        self.path = path
        self.rows = rows

    @classmethod
    def open(cls, directory: Path, committed_shards: set[str]) -> Report:
        """Load (or create) the report, keeping only rows that are final given the committed shards."""
        path = directory / REPORT_NAME
        if not path.exists():
            write_atomic(path, _format_lines([COLUMNS]))
            return cls(path, {})
        text = path.read_bytes().decode("utf-8", errors="replace")
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        kept: dict[str, ReportRow] = {}
        reader = csv.DictReader(io.StringIO(complete))
        if tuple(reader.fieldnames or ()) != COLUMNS:  # not a report: set aside, ok rows come back from the shards
            os.replace(path, path.with_name(path.name + DAMAGED_SUFFIX))
            return cls.open(directory, committed_shards)
        for record in reader:
            row = _parse_row(record)
            if row is not None and (row.status != "ok" or row.shard in committed_shards):
                kept[row.path] = row
        report = cls(path, kept)
        if complete != text or len(kept) != complete.count("\n") - 1:
            report._rewrite()
        return report

    def append(self, rows: list[ReportRow]) -> None:
        """Add final rows and make them durable before returning."""
        if not rows:
            return
        with self.path.open("ab") as f:
            f.write(_format_lines([_values(r) for r in rows]))
            f.flush()
            os.fsync(f.fileno())
        self.rows.update((r.path, r) for r in rows)

    def replace_shards(self, shards: dict[str, list[ReportRow]]) -> list[ReportRow]:
        """Make the given rows the ok rows of each named shard, then rewrite the file once; returns the ok rows of
        those shards that are gone (their tracks are no longer stored, so a rerun redoes them)."""
        if not shards:
            return []
        stored = {row.path for rows in shards.values() for row in rows}
        gone = [r for r in self.rows.values() if r.status == "ok" and r.shard in shards and r.path not in stored]
        for row in gone:
            del self.rows[row.path]
        self.rows.update((row.path, row) for rows in shards.values() for row in rows)
        self._rewrite()
        return gone

    def status_counts(self, paths: list[str]) -> Counter[str]:
        """How many of `paths` ended ok / skipped / failed (missing ones count as 'pending')."""
        return Counter(self.rows[p].status if p in self.rows else "pending" for p in paths)

    def _rewrite(self) -> None:
        """Replace the file with the kept rows, atomically."""
        write_atomic(self.path, _format_lines([COLUMNS, *(_values(r) for r in self.rows.values())]))


def _values(row: ReportRow) -> list[str]:
    """A row as CSV cells, durations rounded to milliseconds."""
    cells = asdict(row)
    cells["duration_s"] = "" if row.duration_s is None else f"{row.duration_s:.3f}"
    return [cells[c] for c in COLUMNS]


def _parse_row(record: dict[str, str | None]) -> ReportRow | None:
    """A row read back, or None for one that is damaged (its input is then redone)."""
    if None in record or any(record.get(c) is None for c in COLUMNS) or record["status"] not in STATUSES:
        return None
    duration = record["duration_s"]
    try:
        duration_s = float(duration) if duration else None
    except ValueError:
        return None
    return ReportRow(**{**record, "duration_s": duration_s})  # type: ignore[arg-type]


def _format_lines(rows: list[list[str]] | list[tuple[str, ...]]) -> bytes:
    """CSV text for rows, with '\\n' line ends so that a complete file always ends in a newline."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")
