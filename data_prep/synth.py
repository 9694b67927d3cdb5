"""Structured synthetic music: tempo, timbre and rhythm fixed per track, varied between tracks; key and mode too, or
changing every few bars (`TrackRecipe.modulation_bars`) so that only tempo, timbre and rhythm identify a track.

A track is a recipe (`TrackRecipe`) rendered bar by bar: a chord progression in the track's key and mode
(sustained chords, a bass line, a melody walking over chord tones in the track's rhythm pattern) played by one
instrument family (additive piano, drawbar organ, FM bell, bowed strings), optionally over a drum pattern.
Each distinct note is synthesised once with numpy and then added at every onset, so minutes of audio take
milliseconds per track.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

INSTRUMENTS = ("piano", "organ", "bell", "strings")
MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}  # scale degrees: I-V-vi-IV, i-VI-III-VII
RHYTHMS = (  # melody note lengths in beats, one bar of 4/4 each
    (1.0, 1.0, 1.0, 1.0),
    (0.5,) * 8,
    (1.5, 0.5, 1.0, 1.0),
    (0.75, 0.75, 0.5, 1.0, 1.0),
    (2.0, 0.5, 0.5, 1.0),
)
DRUM_PATTERNS = (  # (kick, snare, hi-hat) onsets in eighth notes of a bar
    ((0, 4), (2, 6), tuple(range(8))),
    ((0, 3, 4), (2, 6), (0, 2, 4, 6)),
    ((0, 5), (2, 6), tuple(range(8))),
)
MELODY_OCTAVE, CHORD_OCTAVE, BASS_OCTAVE = 72, 60, 36  # MIDI note of each voice's tonic (before the key)
MIX = {"melody": 0.30, "chords": 0.12, "bass": 0.30, "drums": 0.50}
PEAK = 0.9
VIBRATO_HZ, VIBRATO_DEPTH = 5.5, 0.005  # strings: rate, and frequency deviation as a fraction of the pitch


@dataclass(frozen=True)
class TrackRecipe:
    """Everything that makes a track sound the way it does."""

    tempo_bpm: float
    key: int  # 0 = C ... 11 = B
    mode: str
    instrument: str
    drums: bool
    rhythm: int  # index into RHYTHMS
    drum_pattern: int  # index into DRUM_PATTERNS
    seconds: float
    seed: int
    modulation_bars: int = 0
    """Bars between changes to a new random key and mode (`key` and `mode` are the first section's); 0: never."""


def midi_to_hz(note: float) -> float:
    """Equal-tempered frequency of a MIDI note number."""
    return 440.0 * 2.0 ** ((note - 69) / 12)


def render(recipe: TrackRecipe, sample_rate: int) -> np.ndarray:
    """The recipe's audio as float32 mono, peak at `PEAK`."""
    rng = np.random.default_rng(recipe.seed)
    total = int(recipe.seconds * sample_rate)
    out = np.zeros(total + sample_rate * 4, dtype=np.float32)  # room for the last notes' tails
    notes = NoteCache(recipe.instrument, sample_rate)
    beat = 60.0 / recipe.tempo_bpm
    key, mode = recipe.key, recipe.mode
    degree = 0
    for bar in range(int(np.ceil(recipe.seconds / (4 * beat)))):
        if recipe.modulation_bars and bar and bar % recipe.modulation_bars == 0:
            key = (key + int(rng.integers(1, 12))) % 12
            mode = str(rng.choice(tuple(MODES)))
        scale, progression = MODES[mode], PROGRESSIONS[mode]
        start = bar * 4 * beat
        chord = progression[bar % len(progression)]
        triad = [_scale_note(scale, chord + step) for step in (0, 2, 4)]
        for pitch in triad:
            _place(out, notes.get(key + CHORD_OCTAVE + pitch, 4 * beat), start, MIX["chords"], sample_rate)
        for half in (0, 2):
            bass = key + BASS_OCTAVE + triad[0]
            _place(out, notes.get(bass, 2 * beat), start + half * beat, MIX["bass"], sample_rate)
        onset = start
        for length in RHYTHMS[recipe.rhythm]:
            degree = _next_degree(rng, degree, chord)
            pitch = key + MELODY_OCTAVE + _scale_note(scale, degree)
            velocity = MIX["melody"] * rng.uniform(0.7, 1.0)
            _place(out, notes.get(pitch, length * beat), onset, velocity, sample_rate)
            onset += length * beat
        if recipe.drums:
            _place_drums(out, DRUM_PATTERNS[recipe.drum_pattern], start, beat, sample_rate, rng)
    wave = out[:total]
    return (wave * (PEAK / max(float(np.max(np.abs(wave))), 1e-9))).astype(np.float32)


class NoteCache:
    """Notes of one instrument, each (pitch, length) synthesised once."""

    def __init__(self, instrument: str, sample_rate: int) -> None:
        if instrument not in INSTRUMENTS:
            raise ValueError(f"instrument {instrument!r} is unknown; use one of {INSTRUMENTS}")
        self.instrument = instrument
        self.sample_rate = sample_rate
        self._notes: dict[tuple[int, int], np.ndarray] = {}

    def get(self, pitch: int, seconds: float) -> np.ndarray:
        """The note's samples (including a short release tail)."""
        length = int(seconds * self.sample_rate)
        if (pitch, length) not in self._notes:
            self._notes[pitch, length] = synth_note(self.instrument, midi_to_hz(pitch), length, self.sample_rate)
        return self._notes[pitch, length]


def synth_note(instrument: str, hz: float, length: int, sample_rate: int) -> np.ndarray:
    """One note of `length` samples plus a release tail, by additive or FM synthesis."""
    tail = int(0.05 * sample_rate)
    t = np.arange(length + tail, dtype=np.float32) / sample_rate
    release = np.clip((length + tail - np.arange(length + tail)) / tail, 0.0, 1.0).astype(np.float32)
    audible = _below_nyquist(hz, sample_rate)
    if instrument == "piano":
        tone = sum(np.sin(2 * np.pi * hz * k * t) / k * np.exp(-t * (2.0 + 1.5 * k)) for k in audible(range(1, 9)))
    elif instrument == "organ":
        drawbars = dict(((1, 1.0), (2, 0.7), (3, 0.5), (4, 0.4), (6, 0.25), (8, 0.2)))
        partials = sum(drawbars[k] * np.sin(2 * np.pi * hz * k * t) for k in audible(drawbars))
        tone = partials * np.minimum(t / 0.01, 1.0)
    elif instrument == "bell":
        index = 4.0 * np.exp(-t * 3.0)
        tone = np.sin(2 * np.pi * hz * t + index * np.sin(2 * np.pi * hz * 3.5 * t)) * np.exp(-t * 2.5)
    else:  # strings: bright sawtooth-like partials, slow bow attack, 5.5 Hz vibrato
        phase = 2 * np.pi * hz * t + (VIBRATO_DEPTH * hz / VIBRATO_HZ) * np.sin(2 * np.pi * VIBRATO_HZ * t)
        tone = sum(np.sin(k * phase) / k for k in audible(range(1, 11))) * np.minimum(t / 0.12, 1.0)
    return (tone * release).astype(np.float32)


def _below_nyquist(hz: float, sample_rate: int) -> Callable[[Iterable[int]], list[int]]:
    """A filter keeping the harmonic numbers whose frequency stays below Nyquist (no aliasing)."""
    return lambda harmonics: [k for k in harmonics if k * hz < sample_rate / 2]


@lru_cache(maxsize=4)
def drum_hits(sample_rate: int) -> dict[str, np.ndarray]:
    """Kick (pitch-swept sine), snare (noise + body tone) and hi-hat (differentiated noise)."""
    noise = np.random.default_rng(12345).standard_normal(sample_rate).astype(np.float32)
    t = np.arange(int(0.3 * sample_rate), dtype=np.float32) / sample_rate
    sweep = 2 * np.pi * (50 * t + 70 * (1 - np.exp(-t * 30)) / 30)
    kick = np.sin(sweep) * np.exp(-t * 12)
    snare = (0.6 * noise[: len(t)] + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t * 20)
    short = t[: int(0.06 * sample_rate)]
    hat = np.diff(noise[: len(short) + 1]) * 0.5 * np.exp(-short * 60)
    return {"kick": kick.astype(np.float32), "snare": snare.astype(np.float32), "hat": hat.astype(np.float32)}


def _place_drums(
    out: np.ndarray,
    pattern: tuple[tuple[int, ...], ...],
    start: float,
    beat: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> None:
    """One bar of the drum pattern."""
    hits = drum_hits(sample_rate)
    for name, onsets, level in zip(("kick", "snare", "hat"), pattern, (1.0, 0.8, 0.5), strict=True):
        for eighth in onsets:
            velocity = MIX["drums"] * level * rng.uniform(0.8, 1.0)
            _place(out, hits[name], start + eighth * beat / 2, velocity, sample_rate)


def _place(out: np.ndarray, sound: np.ndarray, onset_s: float, gain: float, sample_rate: int) -> None:
    """Add a sound into the mix at an onset, cut at the buffer's end."""
    start = int(onset_s * sample_rate)
    stop = min(start + len(sound), len(out))
    if start < stop:
        out[start:stop] += gain * sound[: stop - start]


def _scale_note(scale: tuple[int, ...], degree: int) -> int:
    """Semitones above the tonic of a scale degree (degrees past 7 climb octaves)."""
    octave, step = divmod(degree, len(scale))
    return 12 * octave + scale[step]


def _next_degree(rng: np.random.Generator, degree: int, chord: int) -> int:
    """A melody step: usually to a nearby chord tone, kept within about an octave and a half."""
    targets = [chord + s + 7 * o for s in (0, 2, 4) for o in (-1, 0, 1)]
    near = [d for d in targets if abs(d - degree) <= 4 and -3 <= d <= 9] or [chord]
    return int(rng.choice(near)) if rng.random() < 0.8 else int(np.clip(degree + rng.choice((-1, 1)), -3, 9))
