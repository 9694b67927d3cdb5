"""The on-disk shard format: one tar sample per track (its payload + JSON metadata) and the set's index.

A track's payload is raw int16 PCM (`pcm` member) or, in a log-mel set, its log-mel frames (`mel` member); the
index names the layout (`sharding.layout`): `encoding`, and for log-mel the front-end settings under `mel`.

Every other module reads and writes shards through the helpers here, so the format lives in one place. The
PCM conversions (`data_prep.pcm`) and atomic writes (`data_prep.atomic`) live left of sharding in the data flow;
import them from there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicssl.data_prep.atomic import write_atomic
from musicssl.sharding.layout import PCM_ENCODING, Layout
from musicssl.sharding.mel import MelSettings

FORMAT_VERSION = 1
MEL_FORMAT_VERSION = 2  # log-mel sets: code that reads only PCM (version 1) refuses them instead of misreading
INDEX_NAME = "index.json"
TRACKS_NAME = "tracks.parquet"  # every track's byte offsets: sharding/tracks.py
SHARD_PATTERN = "shard-%06d.tar"
META_KEY = "json"  # TrackMeta as JSON


class DamagedIndex(ValueError):
    """index.json exists but does not hold a shard index."""


def repair_hint(index_origin: str) -> str:
    """How to rebuild a set's damaged index (or shard) from its shards."""
    folder = index_origin.removesuffix(INDEX_NAME).rstrip("/") or "."
    return f"rebuild it from the shards with `python -m sharding repair {folder}`"


@dataclass
class TrackMeta:
    """Metadata stored next to each track's audio."""

    track_id: str
    source: str
    duration_s: float
    sample_rate: int
    num_samples: int
    tags: list[str] = field(default_factory=list)
    split: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    normalisation: str | None = None
    """How the audio was levelled (peak, rms, none): with the rate, what a lost index.json is rebuilt from; None
    in sets written before it was stored."""
    layout: dict[str, Any] | None = None
    """The set's layout (`Layout.to_json`) for log-mel sets, so a lost index.json is rebuilt from the tracks too;
    None for PCM."""


@dataclass
class ShardInfo:
    """One complete shard as listed in the index."""

    name: str
    samples: int
    duration_s: float
    bytes: int
    sha256: str


@dataclass
class ShardIndex:
    """What a shard set holds, so epoch sizes and consistency checks need no scan of the tars."""

    sample_rate: int
    normalisation: str
    shards: list[ShardInfo] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    encoding: str = PCM_ENCODING
    mel: dict[str, Any] | None = None
    """Log-mel sets: the front-end settings (`sharding.mel.MelSettings`) the stored mel was computed with."""

    @classmethod
    def new(cls, sample_rate: int, normalisation: str, layout: Layout) -> ShardIndex:
        """An empty index of a set in `layout`."""
        mel = layout.mel.to_json() if layout.mel is not None else None
        version = MEL_FORMAT_VERSION if layout.is_mel else FORMAT_VERSION
        return cls(sample_rate, normalisation, format_version=version, encoding=layout.encoding, mel=mel)

    @property
    def layout(self) -> Layout:
        """What each track's payload holds."""
        return Layout(self.encoding, MelSettings.from_json(self.mel) if self.mel is not None else None)

    @property
    def num_tracks(self) -> int:
        """Tracks in the set (one tar sample each); index.json of sets before it called this total_samples."""
        return sum(s.samples for s in self.shards)

    @property
    def total_duration_s(self) -> float:
        return sum(s.duration_s for s in self.shards)

    def to_json(self) -> str:
        body = asdict(self)
        body["num_tracks"] = self.num_tracks
        body["total_duration_s"] = round(self.total_duration_s, 3)
        return json.dumps(body, indent=1)

    @classmethod
    def from_json(cls, text: str, origin: str = "index") -> ShardIndex:
        """The index in `text`; a ValueError naming `origin` and the repair command for anything else."""
        try:
            body = json.loads(text)
        except ValueError as err:
            raise DamagedIndex(f"{origin}: not a shard index ({err}); {repair_hint(origin)}") from None
        version = body.get("format_version") if isinstance(body, dict) else None
        if isinstance(body, dict) and version not in (FORMAT_VERSION, MEL_FORMAT_VERSION, None):
            raise ValueError(
                f"{origin}: shard format version {version!r}, this code reads {FORMAT_VERSION} and "
                f"{MEL_FORMAT_VERSION}; re-run data_prep with this version to rebuild the shards"
            )
        try:
            return cls(
                sample_rate=int(body["sample_rate"]),
                normalisation=str(body["normalisation"]),
                shards=[ShardInfo(**s) for s in body["shards"]],
                format_version=int(version),
                encoding=body.get("encoding", PCM_ENCODING),
                mel=body.get("mel"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DamagedIndex(
                f"{origin}: not a shard index ({type(err).__name__}: {err}); {repair_hint(origin)}"
            ) from None

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write index.json atomically (temporary file, fsync, rename)."""
        path = Path(directory) / INDEX_NAME
        write_atomic(path, self.to_json().encode())
        return path

    @classmethod
    def load_local(cls, directory: str | os.PathLike[str]) -> ShardIndex:
        path = Path(directory) / INDEX_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path}: no shard index; build the shard set with `python -m data_prep`")
        return cls.from_json(path.read_bytes().decode("utf-8", errors="replace"), origin=str(path))


def encode_track(key: str, payload: bytes, meta: TrackMeta, layout: Layout) -> dict[str, Any]:
    """A webdataset sample for one track; `payload` is `layout.encode` of its int16 PCM."""
    expected = layout.payload_bytes(meta.num_samples)
    if len(payload) != expected:
        raise ValueError(f"{meta.source}: {len(payload)} payload bytes, {layout.encoding} needs {expected}")
    return {"__key__": key, layout.member: payload, META_KEY: json.dumps(asdict(meta)).encode()}


def read_meta(sample: dict[str, Any]) -> TrackMeta:
    """The metadata of a raw webdataset sample; ValueError naming the sample when it is missing or unreadable."""
    try:
        return TrackMeta(**json.loads(sample[META_KEY]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"sample {sample.get('__key__', '?')}: missing or unreadable member ({err})") from err


def decode_track(sample: dict[str, Any], layout: Layout) -> tuple[np.ndarray, TrackMeta]:
    """The payload (`layout.decode`: samples or frames) and metadata of a raw webdataset sample; raises
    ValueError on a corrupt member."""
    key = sample.get("__key__", "?")
    meta = read_meta(sample)
    try:
        raw = sample[layout.member]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"sample {key}: missing or unreadable member ({err})") from err
    if len(raw) != layout.payload_bytes(meta.num_samples):
        raise ValueError(
            f"sample {key}: {len(raw)} {layout.member} bytes, metadata says {meta.num_samples} samples "
            f"({layout.payload_bytes(meta.num_samples)} bytes in {layout.encoding})"
        )
    return layout.decode(raw), meta
