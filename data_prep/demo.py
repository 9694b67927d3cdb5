"""`python -m data_prep.demo --out DIR`: a small corpus of synthetic music as real audio files + manifest.csv.

Tracks differ in tempo, rhythm, drum groove and instrument and keep them throughout; key and mode change every
bar (`--modulation-bars`). Four tag families are balanced: tempo (`slow` 70-90, `medium` 100-120, `fast`
130-155 BPM), the melody's rhythm (RHYTHM_TAGS), the drum groove (DRUM_TAGS, or `no_drums`) and the instrument
(`piano`, `organ`, `bell`, `strings`). Key and mode are not tags (the first bar's are manifest columns): the
demo asks what pre-training on temporal pairs learns in a few CPU minutes, and that is what stays the same
across a track. A key held for a whole track would be the easiest way to tell two of its 320 tracks apart (24
keys and modes, and random convolutional features already separate them), a shortcut that a catalogue of
millions, where thousands of tracks share each key, does not offer (see docs/benchmarks.md, "Demo margin").
Splits are 50/12.5/37.5 train/valid/test, assigned in a cycle over tracks sorted by their tag combination,
so that the paired comparison of the demo's probes rests on over a hundred test tracks.
Files rotate through flac, mp3, ogg (Vorbis) and wav, so data preparation meets several decoders.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from musicssl.data_prep.audio_files import write_audio
from musicssl.data_prep.entry import run_command
from musicssl.data_prep.synth import DRUM_PATTERNS, INSTRUMENTS, MODES, RHYTHMS, TrackRecipe, render

DEMO_SAMPLE_RATE = 22050  # serves both the 16 kHz and the 22.05 kHz presets without upsampling
DEMO_FORMATS = (".flac", ".mp3", ".flac", ".ogg", ".wav", ".flac")  # lossy ones are slow to encode: fewer
TEMPI = {"slow": (70.0, 90.0), "medium": (100.0, 120.0), "fast": (130.0, 155.0)}
RHYTHM_TAGS = ("quarter_notes", "eighth_notes", "dotted", "syncopated", "long_short")  # synth.RHYTHMS, in order
DRUM_TAGS = ("rock_beat", "pushed_kick", "late_kick")  # synth.DRUM_PATTERNS, in order
NO_DRUMS = "no_drums"
SPLIT_CYCLE = ("train", "test", "train", "valid", "train", "test", "train", "test")  # 4/8, 1/8, 3/8
MANIFEST_NAME = "manifest.csv"
# 320 tracks of 8-14 s (about an hour, data_prep's minimum length is 8 s): a test split of 120 tracks, so that
# the demo's paired comparison (pre-trained against random weights) has an interval of a few points.
DEMO_TRACKS, DEMO_MIN_SECONDS, DEMO_MAX_SECONDS = 320, 8.0, 14.0
DEMO_MODULATION_BARS = 1  # a new key and mode every bar, so that only the tags' families identify a track


@dataclass
class DemoArgs:
    """Write a demo corpus of structured synthetic music and its manifest."""

    out: Path
    """Folder for the audio files and manifest.csv."""
    tracks: int = DEMO_TRACKS
    """Number of tracks."""
    seed: int = 0
    """Random seed: the same seed gives the same corpus."""
    min_seconds: float = DEMO_MIN_SECONDS
    """Shortest track length."""
    max_seconds: float = DEMO_MAX_SECONDS
    """Longest track length."""
    sample_rate: int = DEMO_SAMPLE_RATE
    """Sample rate of the written files."""
    modulation_bars: int = DEMO_MODULATION_BARS
    """Bars between changes of key and mode within a track (0: one key per track)."""


@dataclass
class DemoTrack:
    """One corpus entry: its recipe and the manifest fields derived from it."""

    track_id: str
    file_name: str
    recipe: TrackRecipe
    tempo_class: str

    @property
    def tags(self) -> list[str]:
        """The track's tags: tempo class, melody rhythm, drum groove, instrument."""
        r = self.recipe
        groove = DRUM_TAGS[r.drum_pattern] if r.drums else NO_DRUMS
        return [self.tempo_class, RHYTHM_TAGS[r.rhythm], groove, r.instrument]


def plan_corpus(
    tracks: int, seed: int, min_seconds: float, max_seconds: float, modulation_bars: int = DEMO_MODULATION_BARS
) -> list[DemoTrack]:
    """Recipes with every tag family balanced across tracks (shuffled independently)."""
    if tracks < 1 or not 0 < min_seconds <= max_seconds:
        raise ValueError(f"{tracks} tracks of {min_seconds}-{max_seconds} s: need >= 1 track, 0 < min <= max")
    rng = np.random.default_rng(seed)

    def balanced(options: tuple) -> list:
        return list(rng.permutation(np.resize(np.arange(len(options)), tracks)))

    tempo_classes = balanced(tuple(TEMPI))
    rhythms, grooves, instruments = balanced(RHYTHMS), balanced((*DRUM_TAGS, NO_DRUMS)), balanced(INSTRUMENTS)
    modes = balanced(tuple(MODES))
    planned = []
    for i in range(tracks):
        tempo_class = tuple(TEMPI)[tempo_classes[i]]
        drums = grooves[i] < len(DRUM_TAGS)
        recipe = TrackRecipe(
            tempo_bpm=float(rng.uniform(*TEMPI[tempo_class])),
            key=int(rng.integers(12)),
            mode=tuple(MODES)[modes[i]],
            instrument=INSTRUMENTS[instruments[i]],
            drums=bool(drums),
            rhythm=int(rhythms[i]),
            drum_pattern=int(grooves[i]) if drums else int(rng.integers(len(DRUM_PATTERNS))),
            seconds=float(rng.uniform(min_seconds, max_seconds)),
            seed=int(rng.integers(2**31)),
            modulation_bars=modulation_bars,
        )
        name = f"demo_{i:03d}"
        planned.append(DemoTrack(name, name + DEMO_FORMATS[i % len(DEMO_FORMATS)], recipe, tempo_class))
    return planned


def assign_splits(tracks: list[DemoTrack]) -> dict[str, str]:
    """Split per track id, cycling through SPLIT_CYCLE over tracks sorted by tag combination."""
    ordered = sorted(tracks, key=lambda t: (t.tags, t.track_id))
    return {t.track_id: SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i, t in enumerate(ordered)}


def make_demo_corpus(
    out: Path,
    tracks: int = DEMO_TRACKS,
    seed: int = 0,
    min_seconds: float = DEMO_MIN_SECONDS,
    max_seconds: float = DEMO_MAX_SECONDS,
    sample_rate: int = DEMO_SAMPLE_RATE,
    modulation_bars: int = DEMO_MODULATION_BARS,
) -> Path:
    """Render and encode the corpus into `out`; returns the manifest's path."""
    planned = plan_corpus(tracks, seed, min_seconds, max_seconds, modulation_bars)
    splits = assign_splits(planned)
    out.mkdir(parents=True, exist_ok=True)
    for track in planned:
        write_audio(out / track.file_name, render(track.recipe, sample_rate), sample_rate)
    manifest = out / MANIFEST_NAME
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "track_id", "tags", "split", "tempo_bpm", "key", "mode"])
        for t in planned:
            row = [t.file_name, t.track_id, ";".join(t.tags), splits[t.track_id]]
            writer.writerow([*row, f"{t.recipe.tempo_bpm:.1f}", str(t.recipe.key), t.recipe.mode])
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: write the corpus and say where."""
    args = tyro.cli(DemoArgs, args=argv)
    manifest = make_demo_corpus(
        args.out, args.tracks, args.seed, args.min_seconds, args.max_seconds, args.sample_rate, args.modulation_bars
    )
    print(f"{args.tracks} demo tracks written; manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
