"""Find the input tracks: every audio file under a folder, or the rows of a CSV manifest.

A manifest needs a `path` column (relative paths are resolved against the manifest's folder). Optional
columns: `track_id` (default: derived from the path), `tags` (";"-separated), `split`; any other column is
kept in TrackMeta.extra. Each input also gets a tar key: the track id made safe for a tar member name
(letters, digits, "_" and "-" only; no dots) and unique within the run, so reruns give the same keys.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from musicssl.data_prep.audio_files import AUDIO_EXTENSIONS
from musicssl.data_prep.pcm import PCM_SHA1_KEY

MANIFEST_COLUMNS = ("path", "track_id", "tags", "split")
RESERVED_EXTRA = (PCM_SHA1_KEY,)  # set by data_prep in TrackMeta.extra
TAG_SEPARATOR = ";"


@dataclass
class InputTrack:
    """One file to prepare, with the metadata it carries into the shards."""

    path: Path
    track_id: str
    key: str = ""
    derived_id: bool = True  # the id came from the path, so it becomes the unique key
    tags: list[str] = field(default_factory=list)
    split: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def find_inputs(source: Path) -> list[InputTrack]:
    """The inputs named by a folder or a CSV manifest, each with a unique tar key."""
    if source.is_dir():
        tracks = _scan_folder(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        tracks = _read_manifest(source)
    else:
        raise ValueError(f"{source}: not a folder nor a .csv manifest; pass a folder of audio or a manifest")
    _assign_unique_keys(tracks)
    return tracks


def safe_key(text: str) -> str:
    """A tar-key-safe form of an id: anything but letters, digits, '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "track"


def _scan_folder(root: Path) -> list[InputTrack]:
    """Audio files under `root` by extension, sorted so that runs are reproducible."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.is_dir())
    return [InputTrack(path=p.resolve(), track_id=_id_from_path(p.relative_to(root))) for p in files]


def _read_manifest(manifest: Path) -> list[InputTrack]:
    """Rows of a CSV manifest as inputs; duplicate paths are an error since each input gets one report row."""
    tracks: list[InputTrack] = []
    first_line: dict[Path, int] = {}
    for line, row in _manifest_rows(manifest):
        if not row.get("path"):
            raise ValueError(f"{manifest}:{line}: empty path; every row must name an audio file")
        relative = Path(row["path"])
        path = (relative if relative.is_absolute() else manifest.parent / relative).resolve()
        if path in first_line:
            raise ValueError(f"{manifest}:{line}: {row['path']} already listed on line {first_line[path]}")
        first_line[path] = line
        tags = [t.strip() for t in (row.get("tags") or "").split(TAG_SEPARATOR) if t.strip()]
        extra = {k: v for k, v in row.items() if k not in MANIFEST_COLUMNS and k is not None and v}
        tracks.append(
            InputTrack(
                path=path,
                track_id=row.get("track_id") or _id_from_path(relative),
                derived_id=not row.get("track_id"),
                tags=tags,
                split=row.get("split") or None,
                extra=extra,
            )
        )
    return tracks


def _manifest_rows(manifest: Path) -> list[tuple[int, dict[str, str]]]:
    """(first line number, row) of every record; refuses text that is not UTF-8 (a UTF-8 byte-order mark is fine)
    and a field running over lines, which is what an unbalanced quote makes of the rows after it."""
    data = manifest.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{manifest}:{line}: not UTF-8 (byte {data[err.start]:#04x}; Latin-1 or another legacy encoding?); "
            "re-save it as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    if "path" not in columns:
        raise ValueError(f"{manifest}: no 'path' column (columns: {columns}); add one naming each audio file")
    clashes = [c for c in columns if c in RESERVED_EXTRA]
    if clashes:
        raise ValueError(f"{manifest}: column(s) {clashes} are reserved by data_prep; rename them")
    rows: list[tuple[int, dict[str, str]]] = []
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        if any("\n" in value or "\r" in value for value in row.values() if isinstance(value, str)):
            raise ValueError(
                f'{manifest}:{start}: a field runs over several lines: an unbalanced quote (") swallows lines '
                f"{start + 1}-{end} into this row; close the quote, or remove it"
            )
        rows.append((start, row))
    return rows


def _id_from_path(relative: Path) -> str:
    """A readable track id from a path relative to the input root: folders joined by '_', no extension."""
    return safe_key("_".join(relative.with_suffix("").parts))


def _assign_unique_keys(tracks: list[InputTrack]) -> None:
    """Give each input a safe key (later collisions get '_2', '_3', ...); path-derived ids become the key."""
    used: set[str] = set()
    for track in tracks:
        base = safe_key(track.track_id)
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}_{n}"
        used.add(key)
        track.key = key
        if track.derived_id:
            track.track_id = key
