"""`python -m data_prep.demo --out DIR`: a small corpus of synthetic music as real audio files + manifest.csv.

Tracks differ in tempo, key/mode, instrument and rhythm and keep them throughout, so augmented crops of one
track resemble each other more than crops of another: a tiny SSL model has something to learn. Four tag
families are audible and balanced: tempo (`slow` 70-95 / `fast` 125-160 BPM), mode (`major` / `minor`),
instrument (`piano`, `organ`, `bell`, `strings`) and `drums` / `no_drums`. Splits are about 70/15/15
train/valid/test, assigned in a cycle over tracks sorted by their tag combination (stratified-ish).
Files rotate through flac, mp3, ogg (Vorbis) and wav, so data preparation meets several decoders.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from data_prep.audio_files import write_audio
from data_prep.synth import DRUM_PATTERNS, INSTRUMENTS, MODES, RHYTHMS, TrackRecipe, render

DEMO_SAMPLE_RATE = 22050  # serves both the 16 kHz and the 22.05 kHz presets without upsampling
DEMO_FORMATS = (".flac", ".mp3", ".flac", ".ogg", ".wav", ".flac")  # lossy ones are slow to encode: fewer
TEMPI = {"slow": (70.0, 95.0), "fast": (125.0, 160.0)}
SPLIT_CYCLE = ("train", "train", "valid", "train", "train", "test", "train")  # 5/7 train, 1/7 valid, 1/7 test
MANIFEST_NAME = "manifest.csv"
# 160 short tracks rather than a few dozen long ones: the same hour of audio, but a test split of ~24 tracks, so
# the demo's probes (pre-trained against random weights) are compared on more than a handful of tracks.
DEMO_TRACKS, DEMO_MIN_SECONDS, DEMO_MAX_SECONDS = 160, 15.0, 30.0


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


@dataclass
class DemoTrack:
    """One corpus entry: its recipe and the manifest fields derived from it."""

    track_id: str
    file_name: str
    recipe: TrackRecipe
    tempo_class: str

    @property
    def tags(self) -> list[str]:
        """The audible tags of the track."""
        r = self.recipe
        return [self.tempo_class, r.mode, r.instrument, "drums" if r.drums else "no_drums"]


def plan_corpus(tracks: int, seed: int, min_seconds: float, max_seconds: float) -> list[DemoTrack]:
    """Recipes with every tag family balanced across tracks (shuffled independently)."""
    if tracks < 1 or not 0 < min_seconds <= max_seconds:
        raise ValueError(f"{tracks} tracks of {min_seconds}-{max_seconds} s: need >= 1 track, 0 < min <= max")
    rng = np.random.default_rng(seed)

    def balanced(options: tuple) -> list:
        return list(rng.permutation(np.resize(np.arange(len(options)), tracks)))

    tempo_classes = balanced(tuple(TEMPI))
    modes, instruments, drums = balanced(tuple(MODES)), balanced(INSTRUMENTS), balanced((False, True))
    planned = []
    for i in range(tracks):
        tempo_class = tuple(TEMPI)[tempo_classes[i]]
        recipe = TrackRecipe(
            tempo_bpm=float(rng.uniform(*TEMPI[tempo_class])),
            key=int(rng.integers(12)),
            mode=tuple(MODES)[modes[i]],
            instrument=INSTRUMENTS[instruments[i]],
            drums=bool(drums[i]),
            rhythm=int(rng.integers(len(RHYTHMS))),
            drum_pattern=int(rng.integers(len(DRUM_PATTERNS))),
            seconds=float(rng.uniform(min_seconds, max_seconds)),
            seed=int(rng.integers(2**31)),
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
) -> Path:
    """Render and encode the corpus into `out`; returns the manifest's path."""
    planned = plan_corpus(tracks, seed, min_seconds, max_seconds)
    splits = assign_splits(planned)
    out.mkdir(parents=True, exist_ok=True)
    for track in planned:
        write_audio(out / track.file_name, render(track.recipe, sample_rate), sample_rate)
    manifest = out / MANIFEST_NAME
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "track_id", "tags", "split", "tempo_bpm", "key"])
        for t in planned:
            row = [t.file_name, t.track_id, ";".join(t.tags), splits[t.track_id]]
            writer.writerow([*row, f"{t.recipe.tempo_bpm:.1f}", str(t.recipe.key)])
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: write the corpus and say where."""
    args = tyro.cli(DemoArgs, args=argv)
    manifest = make_demo_corpus(args.out, args.tracks, args.seed, args.min_seconds, args.max_seconds, args.sample_rate)
    print(f"{args.tracks} demo tracks written; manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
