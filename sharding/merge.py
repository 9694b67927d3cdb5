"""Merge the per-part shard sets of a Slurm data-preparation array job into one set, without copying shards.

`slurm/data_prep_array.sh` writes one complete set per array task in `DIR/part-NNN/` (shards, index.json,
report.csv). Merging writes `DIR/index.json`, listing every part's shards by their path relative to DIR
(`part-003/shard-000001.tar`), `DIR/report.csv`, every part's rows with their shard named the same way, and
`DIR/tracks.parquet`, the parts' track tables joined (a part without one is scanned).
Parts that are missing, unfinished or prepared with other settings are refused, naming the part.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.report import COLUMNS, REPORT_NAME
from musicssl.sharding.format import INDEX_NAME, TRACKS_NAME, ShardIndex
from musicssl.sharding.tracks import build_track_table
from musicssl.sharding.writer import PARTIAL_SUFFIX

PART_NAME = re.compile(r"^part-(\d{3,})$")
SECONDS_PER_HOUR = 3600.0


@dataclass
class MergeSummary:
    """What a merge wrote."""

    parts: int
    index: ShardIndex
    report_rows: int
    duplicates: int  # ok tracks whose audio another part also holds: each part dedupes only within itself

    def lines(self) -> list[str]:
        """A readable account of the merged set."""
        index = self.index
        out = [
            f"merged {self.parts} parts: {len(index.shards)} shards, {index.num_tracks} tracks, "
            f"{index.total_duration_s / SECONDS_PER_HOUR:.3f} h, {index.sample_rate} Hz, "
            f"normalisation {index.normalisation}",
            f"report: {self.report_rows} rows",
        ]
        if self.duplicates:
            out.append(
                f"warning: {self.duplicates} track(s) repeat the audio of a track in another part (each part "
                "drops duplicates only within itself; find them by audio_sha1 in the report)"
            )
        return out


def merge_parts(directory: str | os.PathLike[str]) -> MergeSummary:
    """Write DIR/index.json and DIR/report.csv over every DIR/part-NNN set; returns what was merged."""
    root = Path(directory)
    parts = find_parts(root)
    with exclusive_folder(root, f"python -m sharding merge {root}"):
        return _merge_held(root, parts)


def _merge_held(root: Path, parts: list[Path]) -> MergeSummary:
    """merge_parts once DIR is held."""
    refuse_to_hide_own_shards(root)
    indexes = {part: load_part_index(part) for part in parts}
    check_same_settings(root, indexes)
    rows = [row for part, index in indexes.items() for row in part_report_rows(part, index)]
    first = indexes[parts[0]]
    merged = replace(
        first,
        shards=[replace(s, name=f"{part.name}/{s.name}") for part, index in indexes.items() for s in index.shards],
    )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([COLUMNS, *rows])
    write_atomic(root / REPORT_NAME, buffer.getvalue().encode("utf-8"))
    merged.save(root)
    build_track_table(root, reuse=[(part / TRACKS_NAME, f"{part.name}/") for part in parts])
    return MergeSummary(len(parts), merged, len(rows), count_duplicates(rows))


def refuse_to_hide_own_shards(root: Path) -> None:
    """Refuse to overwrite an index that lists shards of DIR itself: merging would drop them from the set."""
    if not (root / INDEX_NAME).exists():
        return
    own = [s.name for s in ShardIndex.load_local(root).shards if not PART_NAME.match(s.name.split("/")[0])]
    if own:
        raise ValueError(
            f"{root / INDEX_NAME}: lists shards outside part-NNN folders ({own[0]}, ...); this is a shard "
            "set of its own, not the output of slurm/data_prep_array.sh; merge the folder holding the parts"
        )


def find_parts(root: Path) -> list[Path]:
    """The part-NNN folders in number order; refuses gaps, which are array tasks that never wrote anything."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; give the OUT_DIR of slurm/data_prep_array.sh")
    numbered = {int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := PART_NAME.match(p.name))}
    if not numbered:
        raise FileNotFoundError(
            f"{root}: no part-NNN folders; run `sbatch --array=0-N slurm/data_prep_array.sh INPUT {root}` first"
        )
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        names = ", ".join(f"part-{n:03d}" for n in missing)
        first = root / f"part-{missing[0]:03d}"
        raise FileNotFoundError(f"{root}: {names} missing: those array tasks never ran. {rerun_hint(first)}")
    return [numbered[n] for n in sorted(numbered)]


def load_part_index(part: Path) -> ShardIndex:
    """A part's index; refuses a part without one or with an unfinished shard left by a killed task."""
    if not (part / INDEX_NAME).exists():
        raise FileNotFoundError(f"{part}: no {INDEX_NAME}; its array task probably did not finish. {rerun_hint(part)}")
    unfinished = sorted(p.name for p in part.glob(f"*{PARTIAL_SUFFIX}"))
    if unfinished:
        raise ValueError(
            f"{part}: holds an unfinished shard ({unfinished[0]}): its array task was interrupted. {rerun_hint(part)}"
        )
    return ShardIndex.load_local(part)


def check_same_settings(root: Path, indexes: dict[Path, ShardIndex]) -> None:
    """Refuse parts whose sample rate, normalisation, format version or encoding differ from most parts'."""
    settings = {part: describe_settings(index) for part, index in indexes.items()}
    common, _ = Counter(settings.values()).most_common(1)[0]
    odd = [f"{part.name} has {value}" for part, value in settings.items() if value != common]
    if odd:
        raise ValueError(
            f"{root}: parts were prepared differently: most have {common}, but {'; '.join(odd)}. Rebuild the "
            "odd part(s) with the same data_prep flags as the others (delete the part folder first)"
        )


def describe_settings(index: ShardIndex) -> str:
    """The settings all parts must share, readably."""
    return (
        f"{index.sample_rate} Hz, normalisation {index.normalisation!r}, format v{index.format_version} "
        f"{index.encoding}"
    )


def part_report_rows(part: Path, index: ShardIndex) -> list[list[str]]:
    """A part's report rows, shards renamed relative to DIR; refuses a report an interrupted task left."""
    path = part / REPORT_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; its array task probably did not finish. {rerun_hint(part)}")
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        raise ValueError(f"{path}: ends in a cut line: its array task was interrupted. {rerun_hint(part)}")
    records = list(csv.reader(io.StringIO(text)))
    if not records or tuple(records[0]) != COLUMNS:
        raise ValueError(f"{path}: columns are not {list(COLUMNS)}; was it written by data_prep?")
    shard_column = COLUMNS.index("shard")
    indexed = {s.name for s in index.shards}
    rows = records[1:]
    for line, row in enumerate(rows, start=2):
        if len(row) != len(COLUMNS):
            raise ValueError(f"{path}: line {line} has {len(row)} cells, not {len(COLUMNS)}; {rerun_hint(part)}")
        shard = row[shard_column]
        if shard and shard not in indexed:
            raise ValueError(
                f"{path}: line {line} names {shard}, which {part / INDEX_NAME} does not list: its array task "
                f"was interrupted. {rerun_hint(part)}"
            )
        row[shard_column] = f"{part.name}/{shard}" if shard else ""
    return rows


def count_duplicates(rows: list[list[str]]) -> int:
    """How many ok rows repeat the audio hash of an earlier ok row."""
    status, sha1 = COLUMNS.index("status"), COLUMNS.index("audio_sha1")
    hashes = [row[sha1] for row in rows if row[status] == "ok" and row[sha1]]
    return len(hashes) - len(set(hashes))


def rerun_hint(part: Path) -> str:
    """How to finish a part: re-running its array task resumes where it stopped."""
    found = PART_NAME.match(part.name)
    number = int(found.group(1)) if found else "I"
    return (
        "Re-run the part with the array's INPUT and flags (it resumes where it stopped): "
        f"`python -m data_prep INPUT --out {part} --part {number} --parts N` (N: the array size), or "
        "resubmit the whole array (finished parts only re-check their inputs); then merge "
        f"{part.parent} again"
    )
