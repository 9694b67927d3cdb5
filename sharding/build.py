"""Build a shard set from audio: find inputs, resume from report and index, decode in parallel, shard.

data_prep turns each input into checked int16 PCM or a reason; this stage, right of it in the data flow, makes
ok tracks into TrackMeta and shards. Every input ends with exactly one report row. Failed and skipped rows are
written as soon as they are known; ok rows when their shard is committed (see sharding.writer). Rerunning the
same command skips inputs that already have a row, so a killed run continues where it stopped.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from musicssl.data_prep.atomic import remove_temporaries
from musicssl.data_prep.inputs import InputTrack, find_inputs
from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.parallel import map_in_order
from musicssl.data_prep.pcm import PCM_SHA1_KEY
from musicssl.data_prep.progress import progress_bar
from musicssl.data_prep.report import Report, ReportRow
from musicssl.data_prep.track import PrepSettings, TrackResult, prepare_track
from musicssl.sharding.format import TrackMeta
from musicssl.sharding.layout import PCM_LAYOUT, Layout, payload_sha1
from musicssl.sharding.recover import load_or_rebuild_index, reconcile_report
from musicssl.sharding.writer import DEFAULT_SHARD_SIZE, ShardSetWriter

SECONDS_PER_HOUR = 3600.0


@dataclass
class Summary:
    """Outcome counts over all inputs of a run (earlier runs into the same folder included)."""

    inputs: int
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, reason category)
    processed_now: int = 0
    audio_hours_now: float = 0.0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary; the status counts add up to the number of inputs."""
        counts = ", ".join(f"{s} {self.statuses[s]}" for s in ("ok", "skipped", "failed"))
        out = [f"{self.inputs} inputs: {counts}"]
        out += [f"  {status:8s} {reason}: {n}" for (status, reason), n in sorted(self.reasons.items())]
        out.append(
            f"this run: {self.processed_now} files, {self.audio_hours_now:.2f} h of audio in "
            f"{self.seconds:.1f} s; {self.inputs - self.processed_now} already done earlier"
        )
        return out


def prepare_shards(
    source: Path,
    out: Path,
    settings: PrepSettings,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int = 1,
    part: tuple[int, int] = (0, 1),
    progress: bool = True,
    layout: Layout = PCM_LAYOUT,
) -> Summary:
    """Decode and check every input of `source` (or one `(part, parts)` share) into `out` in `layout`, resuming
    there; `out` is held for the whole run, so a second writer is refused at start naming this one."""
    inputs = select_part(find_inputs(source), *part)
    with exclusive_folder(out, f"python -m data_prep {source} --out {out}"):
        remove_temporaries(out)
        return _prepare_held(inputs, out, settings, shard_size, workers, progress, layout)


def _prepare_held(
    inputs: list[InputTrack],
    out: Path,
    settings: PrepSettings,
    shard_size: int,
    workers: int,
    progress: bool,
    layout: Layout,
) -> Summary:
    """prepare_shards once `out` is held; the index and the report's ok rows are rebuilt from the shards where
    either is missing or damaged, so a rerun neither deletes nor repeats stored tracks."""
    load_or_rebuild_index(out, settings.sample_rate, settings.normalisation, layout)
    writer: ShardSetWriter[ReportRow] = ShardSetWriter.open(
        out, settings.sample_rate, settings.normalisation, shard_size, layout=layout
    )
    report = Report.open(out, writer.committed_names)
    reconcile_report(report, out, writer.index)
    writer.on_shard_ready = lambda name, rows: report.append([replace(r, shard=name) for r in rows])
    todo = [t for t in inputs if str(t.path) not in report.rows]
    known = {r.audio_sha1: r.path for r in report.rows.values() if r.status == "ok"}
    started = time.perf_counter()
    audio_s = 0.0
    bar = progress_bar(total=len(todo), unit="file", disable=not progress, smoothing=0.1)
    outcomes: Counter[str] = Counter()
    with writer, bar:
        # log-mel is computed in the decoding workers, so it scales with them; PCM workers do not import torch
        work = (
            partial(prepare_encoded, settings=settings, layout=layout)
            if layout.is_mel
            else partial(prepare_track, settings=settings)
        )
        for outcome in map_in_order(work, todo, workers):
            result, encoded = outcome if layout.is_mel else (outcome, None)
            status = _record(result, encoded, settings, writer, report, known)
            audio_s += result.duration_s or 0.0
            outcomes[status] += 1
            bar.update()
            hours_per_s = audio_s / SECONDS_PER_HOUR / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(audio_h_per_s=f"{hours_per_s:.3f}", skipped=outcomes["skipped"], failed=outcomes["failed"])
    return _summarise(inputs, report, len(todo), audio_s, time.perf_counter() - started)


def prepare_encoded(track: InputTrack, settings: PrepSettings, layout: Layout) -> tuple[TrackResult, bytes | None]:
    """`prepare_track`, then the ok track's payload in `layout`: runs in a decoding worker, so the log-mel of a
    track is computed where it was decoded (such workers import torch; PCM workers run `prepare_track` alone)."""
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)  # one decoding worker per core already
    result = prepare_track(track, settings)
    return result, layout.encode(result.pcm) if result.pcm is not None else None


def select_part(inputs: list[InputTrack], part: int, parts: int) -> list[InputTrack]:
    """Every `parts`-th input starting at `part`, so that array tasks share the work evenly."""
    if parts < 1 or not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}: need parts >= 1 and 0 <= part < parts")
    return inputs[part::parts]


def track_meta(
    track: InputTrack, pcm: np.ndarray, audio_sha1: str, settings: PrepSettings, layout: Layout, encoded: bytes | None
) -> TrackMeta:
    """Shard metadata of an ok track: its input's id, tags, split and extras, its length, audio (and log-mel)
    hash and the settings and layout it was prepared with."""
    hashes = {PCM_SHA1_KEY: audio_sha1} | ({layout.hash_key: payload_sha1(encoded)} if encoded is not None else {})
    return TrackMeta(
        track_id=track.track_id,
        source=str(track.path),
        duration_s=round(len(pcm) / settings.sample_rate, 3),
        sample_rate=settings.sample_rate,
        num_samples=len(pcm),
        tags=list(track.tags),
        split=track.split,
        extra={**track.extra, **hashes},
        normalisation=settings.normalisation,
        layout=layout.to_json(),
    )


def _record(
    result: TrackResult,
    encoded: bytes | None,
    settings: PrepSettings,
    writer: ShardSetWriter[ReportRow],
    report: Report,
    known: dict[str, str],
) -> str:
    """Route one result: shard an ok track (its row follows at commit) or write its skip/fail row now."""
    track = result.track
    row = ReportRow(str(track.path), result.status, result.reason, result.duration_s, track.track_id)
    if result.status != "ok" or result.pcm is None:
        report.append([row])
        return row.status
    original = known.get(result.audio_sha1)
    if original is not None:
        report.append([replace(row, status="skipped", reason=f"duplicate: same audio as {original}")])
        return "skipped"
    known[result.audio_sha1] = row.path
    meta = track_meta(track, result.pcm, result.audio_sha1, settings, writer.layout, encoded)
    writer.add(track.key, result.pcm, meta, replace(row, audio_sha1=result.audio_sha1), encoded)
    return "ok"


def _summarise(inputs: list[InputTrack], report: Report, processed: int, audio_s: float, seconds: float) -> Summary:
    """Counts over the current inputs, read back from the report so they reflect what is on disk."""
    paths = [str(t.path) for t in inputs]
    reasons: Counter[tuple[str, str]] = Counter(
        (report.rows[p].status, report.rows[p].category)
        for p in paths
        if p in report.rows and report.rows[p].status != "ok"
    )
    return Summary(
        inputs=len(inputs),
        statuses=report.status_counts(paths),
        reasons=reasons,
        processed_now=processed,
        audio_hours_now=audio_s / SECONDS_PER_HOUR,
        seconds=seconds,
    )
