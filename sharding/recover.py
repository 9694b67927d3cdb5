"""Rebuild a shard set's state from its tars, so that no lost or damaged state file deletes or duplicates audio.

The shards on disk are the truth: the index is rebuilt from every readable `shard-NNNNNN.tar` (a shard with
damaged tracks is rewritten without them, one with none left is set aside as `.damaged`), and the report's ok rows
from the tracks the shards hold. data_prep does this on resume when index.json or report.csv is missing or
damaged; `python -m sharding repair` does it on demand.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webdataset import TarWriter

from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.pcm import PCM_SHA1_KEY
from musicssl.data_prep.report import Report, ReportRow
from musicssl.sharding.format import INDEX_NAME, DamagedIndex, ShardIndex, ShardInfo, TrackMeta, read_meta
from musicssl.sharding.layout import Layout
from musicssl.sharding.merge import PART_NAME
from musicssl.sharding.tracks import build_track_table
from musicssl.sharding.verify import check_sample, iter_samples
from musicssl.sharding.writer import PARTIAL_SUFFIX, SHARD_NAME, fsync_file, sha256_file

DAMAGED_SUFFIX = ".damaged"


@dataclass
class ShardScan:
    """The sound tracks of one shard file, in tar order, and what could not be read."""

    path: Path
    metas: list[TrackMeta] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # why each unreadable track (or the unreadable rest) is lost


@dataclass
class Rebuilt:
    """An index rebuilt from the shards, with the tracks of every indexed shard and what was lost on the way."""

    index: ShardIndex
    metas: dict[str, list[TrackMeta]]
    lost: list[str]


def load_or_rebuild_index(directory: Path, sample_rate: int, normalisation: str, layout: Layout) -> ShardIndex:
    """The set's index; rebuilt from the shard files when it is missing or damaged (set aside as
    index.json.damaged), a new empty one for a folder without shards."""
    try:
        return ShardIndex.load_local(directory)
    except DamagedIndex:
        os.replace(directory / INDEX_NAME, directory / (INDEX_NAME + DAMAGED_SUFFIX))
    except FileNotFoundError:
        pass
    index = rebuild_index(directory, sample_rate, normalisation, layout).index
    index.save(directory)
    return index


def rebuild_index(directory: Path, sample_rate: int, normalisation: str, layout: Layout) -> Rebuilt:
    """An index of every readable shard file in `directory`, damaged ones rewritten without their bad tracks."""
    index = ShardIndex.new(sample_rate, normalisation, layout)
    metas: dict[str, list[TrackMeta]] = {}
    lost: list[str] = []
    for path in sorted(p for p in directory.iterdir() if SHARD_NAME.match(p.name)):
        scan = scan_shard_file(path, index)
        lost += scan.lost
        if scan.lost:
            rewrite_without_lost(scan)
        if not scan.metas:
            os.replace(path, path.with_name(path.name + DAMAGED_SUFFIX))
            continue
        metas[path.name] = scan.metas
        index.shards.append(
            ShardInfo(
                name=path.name,
                samples=len(scan.metas),
                duration_s=round(sum(m.duration_s for m in scan.metas), 3),
                bytes=path.stat().st_size,
                sha256=sha256_file(path),
            )
        )
    return Rebuilt(index, metas, lost)


def scan_shard_file(path: Path, index: ShardIndex) -> ShardScan:
    """Read every track of a shard with verify's checks; refuses tracks prepared with other settings than the
    index's."""
    scan = ShardScan(path)
    layout = index.layout
    try:
        for sample in read_samples(path):
            refuse_other_settings(path, sample, index)
            problems, _ = check_sample(path.name, sample, index.sample_rate, layout)
            if problems:
                scan.lost.append(f"{path.name}: {sample['__key__']}: {'; '.join(p.message for p in problems)}")
                continue
            scan.metas.append(read_meta(sample))
            scan.keys.append(sample["__key__"])
    except (OSError, tarfile.TarError, EOFError) as err:
        last = f" after {scan.keys[-1]}" if scan.keys else ""
        scan.lost.append(f"{path.name}: every track{last} ({type(err).__name__}: {err})")
    return scan


def refuse_other_settings(path: Path, sample: dict[str, Any], index: ShardIndex) -> None:
    """Stop before anything is rewritten when a readable track was prepared at another rate, levelling or layout
    than the set's (a track of an older set, which did not store its levelling, is taken as the set's)."""
    sample_rate, normalisation = index.sample_rate, index.normalisation
    try:
        meta = read_meta(sample)
    except ValueError:
        return  # unreadable: check_sample names it
    if Layout.from_json(meta.layout) != index.layout:
        raise ValueError(
            f"{path}: holds tracks in layout {Layout.from_json(meta.layout).describe()}, the set has "
            f"{index.layout.describe()}; use the same settings to resume, or a new output folder"
        )
    if meta.sample_rate != sample_rate:
        raise ValueError(
            f"{path}: holds tracks at {meta.sample_rate} Hz, the set has {sample_rate} Hz; use the same settings "
            "to resume, or a new output folder"
        )
    if meta.normalisation not in (None, normalisation):
        raise ValueError(
            f"{path}: holds tracks levelled with --normalise {meta.normalisation}, this run has {normalisation}; "
            f"pass --normalise {meta.normalisation} to resume, or use a new output folder"
        )


def read_samples(path: Path) -> Iterator[dict[str, Any]]:
    """The webdataset samples of a local shard, members as bytes."""
    with path.open("rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        yield from iter_samples(tar)


def rewrite_without_lost(scan: ShardScan) -> None:
    """Replace the shard, crash-safely, by one holding only its sound tracks."""
    keep = set(scan.keys)
    partial = scan.path.with_name(scan.path.name + PARTIAL_SUFFIX)
    with TarWriter(str(partial)) as sink:
        try:
            for sample in read_samples(scan.path):
                if sample["__key__"] in keep:
                    sink.write({name: value for name, value in sample.items() if name != "__offsets__"})
        except (OSError, tarfile.TarError, EOFError):
            pass  # the unreadable rest is what scan.lost names
    fsync_file(partial)
    os.replace(partial, scan.path)
    fsync_file(scan.path.parent)


def reconcile_report(
    report: Report, directory: Path, index: ShardIndex, known: dict[str, list[TrackMeta]] | None = None
) -> list[ReportRow]:
    """Make the report's ok rows name exactly the tracks the shards hold: every shard in `known` and every one whose
    ok rows do not add up to its track count is read back. Returns the ok rows whose track is no longer stored."""
    known = known or {}
    counts: dict[str, int] = {}
    for row in report.rows.values():
        if row.status == "ok":
            counts[row.shard] = counts.get(row.shard, 0) + 1
    shards = {}
    for info in index.shards:
        if info.name in known or counts.get(info.name, 0) != info.samples:
            metas = known.get(info.name)
            if metas is None:
                metas = scan_shard_file(directory / info.name, index).metas
            shards[info.name] = [row_of(meta, info.name) for meta in metas]
    return report.replace_shards(shards)


def row_of(meta: TrackMeta, shard: str) -> ReportRow:
    """The ok report row of a stored track."""
    return ReportRow(meta.source, "ok", "", meta.duration_s, meta.track_id, shard, meta.extra.get(PCM_SHA1_KEY, ""))


@dataclass
class Repaired:
    """What `python -m sharding repair` rebuilt and what it could not keep."""

    index: ShardIndex
    lost: list[str]
    lost_inputs: list[ReportRow]

    def lines(self) -> list[str]:
        """A readable account: the set, then every lost track and input with how to get it back."""
        out = [f"repaired: {self.index.num_tracks} tracks in {len(self.index.shards)} shards"]
        out += [f"lost {what}" for what in self.lost]
        out += [f"lost input {row.path} (was in {row.shard})" for row in self.lost_inputs]
        if self.lost:
            out.append("rerun `python -m data_prep` with the same input and --out to prepare the lost tracks again")
        return out


def repair_set(directory: Path, normalisation: str | None = None) -> Repaired:
    """Rebuild index.json, the report's ok rows and tracks.parquet of a local set from its shard files, rewriting
    damaged shards without their unreadable tracks; `normalisation` is needed only where the index is lost."""
    if any(PART_NAME.match(p.name) for p in directory.iterdir() if p.is_dir()):
        raise ValueError(f"{directory}: a merged set; repair each part-NNN folder, then merge again")
    with exclusive_folder(directory, f"python -m sharding repair {directory}"):
        try:
            old: ShardIndex | None = ShardIndex.load_local(directory)
        except (DamagedIndex, FileNotFoundError):
            old = None
        if old is not None:
            sample_rate, stored, layout = old.sample_rate, old.normalisation, old.layout
        else:
            first = first_track(directory)
            sample_rate, stored, layout = first.sample_rate, first.normalisation, Layout.from_json(first.layout)
        normalisation = normalisation or stored
        if normalisation is None:
            raise ValueError(
                f"{directory / INDEX_NAME}: lost or damaged, and the set's tracks predate storing their levelling; "
                "pass the --normalise the set was prepared with (peak, rms or none)"
            )
        for partial in directory.glob(f"*{PARTIAL_SUFFIX}"):
            partial.unlink()
        rebuilt = rebuild_index(directory, sample_rate, normalisation, layout)
        rebuilt.index.save(directory)
        report = Report.open(directory, {info.name for info in rebuilt.index.shards})
        gone = reconcile_report(report, directory, rebuilt.index, rebuilt.metas)
        build_track_table(directory)
        return Repaired(rebuilt.index, rebuilt.lost, gone)


def first_track(directory: Path) -> TrackMeta:
    """The metadata of the first readable track of the set's shard files (its rate and levelling are the set's)."""
    for path in sorted(p for p in directory.iterdir() if SHARD_NAME.match(p.name)):
        try:
            for sample in read_samples(path):
                return read_meta(sample)
        except (OSError, tarfile.TarError, EOFError, ValueError):
            continue
    raise FileNotFoundError(f"{directory}: no readable shard; prepare the set again with `python -m data_prep`")
