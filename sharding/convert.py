"""`python -m sharding convert PCM_SET --out MEL_SET`: the log-mel layout of an existing PCM set, without decoding
the audio again.

Shard i of the new set holds the tracks of shard i of the source, in the same order, with the same keys and
metadata (plus the layout and the sha1 of the stored mel). Shards are written by `ShardSetWriter`, so each is
committed atomically into the index; a killed run, rerun, starts after the last committed shard (the index says
how many there are). Works from any location the source can be read from (local, http(s), object stores).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from musicssl.data_prep.atomic import remove_temporaries
from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.progress import progress_bar
from musicssl.sharding.format import ShardIndex
from musicssl.sharding.layout import Layout, payload_sha1
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import shard_tracks
from musicssl.sharding.writer import ShardSetWriter

SECONDS_PER_HOUR = 3600.0
ONE_SHARD = 1 << 62  # the writer never rotates on its own: every source shard ends its target shard


@dataclass
class Converted:
    """What a conversion wrote (this run and earlier ones) and how fast this run went."""

    index: ShardIndex
    shards_now: int
    audio_hours_now: float
    seconds: float

    def lines(self) -> list[str]:
        rate = self.audio_hours_now / max(self.seconds, 1e-9) * SECONDS_PER_HOUR
        return [
            f"{self.index.num_tracks} tracks in {len(self.index.shards)} shards, {self.index.layout.describe()}",
            f"this run: {self.shards_now} shards, {self.audio_hours_now:.2f} h of audio in {self.seconds:.1f} s "
            f"({rate:.0f} audio-hours per hour)",
        ]


def convert_set(source: ShardSet, out: Path, layout: Layout, progress: bool = True) -> Converted:
    """Write the tracks of the PCM set `source` into `out` in `layout`, resuming after the shards `out` holds."""
    source.require_pcm("conversion computes log-mel from the audio")
    if not layout.is_mel:
        raise ValueError(f"{source.location} is PCM already; convert it to a log-mel layout")
    if layout.mel.sample_rate != source.sample_rate:
        raise ValueError(
            f"{source.location}: audio at {source.sample_rate} Hz, the log-mel settings are for "
            f"{layout.mel.sample_rate} Hz; give the set's rate"
        )
    with exclusive_folder(out, f"python -m sharding convert {source.location} --out {out}"):
        remove_temporaries(out)
        writer: ShardSetWriter[None] = ShardSetWriter.open(
            out, source.sample_rate, source.index.normalisation, ONE_SHARD, layout=layout
        )
        done = check_converted_prefix(source, writer.index, out)
        started, audio_s = time.perf_counter(), 0.0
        todo = list(zip(source.urls, source.index.shards, strict=True))[done:]
        total = sum(info.samples for _, info in todo)
        with writer, progress_bar(total=total, unit="track", desc="converting", disable=not progress) as bar:
            for url, info in todo:
                for key, pcm, meta in shard_tracks(url, info):
                    encoded = layout.encode(pcm)
                    extra = {**meta.extra, layout.hash_key: payload_sha1(encoded)}
                    writer.add(key, pcm, dataclasses.replace(meta, layout=layout.to_json(), extra=extra), None, encoded)
                    audio_s += meta.duration_s
                    bar.update()
                    bar.set_postfix(audio_h_per_h=f"{audio_s / max(time.perf_counter() - started, 1e-9):.0f}")
                writer.end_shard()
        return Converted(writer.index, len(todo), audio_s / SECONDS_PER_HOUR, time.perf_counter() - started)


def check_converted_prefix(source: ShardSet, converted: ShardIndex, out: Path) -> int:
    """How many source shards `out` holds already; refuses an `out` that is not a conversion of `source`."""
    done = len(converted.shards)
    ours = [(info.samples, info.duration_s) for info in converted.shards]
    theirs = [(info.samples, info.duration_s) for info in source.index.shards[:done]]
    if done > len(source.index.shards) or ours != theirs:
        raise ValueError(
            f"{out}: holds {done} shards that are not a conversion of the first shards of {source.location}; "
            "convert into a new folder"
        )
    return done
