"""The demo corpus: balanced audible tags, real files in several formats, splits, reproducibility."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from musicssl.data_prep.decode import decode_file
from musicssl.data_prep.demo import (
    DEMO_MODULATION_BARS,
    DRUM_TAGS,
    NO_DRUMS,
    RHYTHM_TAGS,
    assign_splits,
    main,
    plan_corpus,
)
from musicssl.data_prep.synth import INSTRUMENTS, TrackRecipe, render

RATE = 8000


def recipe(**changes: object) -> TrackRecipe:
    base = dict(tempo_bpm=120.0, key=0, mode="major", instrument="piano", drums=False, rhythm=0, drum_pattern=0)
    return TrackRecipe(**{**base, "seconds": 8.0, "seed": 3, **changes})  # type: ignore[arg-type]


def onset_rate(wave: np.ndarray) -> float:
    """Rises of the 10 ms energy envelope per second: a crude tempo proxy."""
    frames = np.sqrt(np.mean(wave[: len(wave) // 80 * 80].reshape(-1, 80) ** 2, axis=1))
    rises = np.diff(frames) > 0.5 * frames[:-1] + 1e-3
    return float(np.sum(rises[1:] & ~rises[:-1])) / (len(wave) / RATE)


def test_plan_balances_every_tag_family_and_splits_half_eighth_three_eighths() -> None:
    planned = plan_corpus(40, seed=0, min_seconds=8, max_seconds=14)
    families = [Counter(t.tags[i] for t in planned) for i in range(4)]
    assert families[0] == {"slow": 14, "medium": 13, "fast": 13}
    assert families[1] == dict.fromkeys(RHYTHM_TAGS, 8)
    assert families[2] == dict.fromkeys((*DRUM_TAGS, NO_DRUMS), 10)
    assert families[3] == dict.fromkeys(INSTRUMENTS, 10)
    assert all((t.tags[2] == NO_DRUMS) == (not t.recipe.drums) for t in planned)
    assert all(8 <= t.recipe.seconds <= 14 for t in planned)
    assert Counter(assign_splits(planned).values()) == {"train": 20, "valid": 5, "test": 15}
    assert {Path(t.file_name).suffix for t in planned} == {".flac", ".mp3", ".ogg", ".wav"}


def test_rendering_is_reproducible_and_tracks_differ() -> None:
    a, b = render(recipe(), RATE), render(recipe(), RATE)
    assert np.array_equal(a, b) and len(a) == 8 * RATE and np.max(np.abs(a)) == pytest.approx(0.9)
    other = render(recipe(instrument="bell", key=5), RATE)
    assert abs(np.corrcoef(a, other)[0, 1]) < 0.2


def test_tempo_and_drums_are_audible() -> None:
    slow, fast = render(recipe(tempo_bpm=75.0), RATE), render(recipe(tempo_bpm=150.0), RATE)
    assert onset_rate(fast) > 1.5 * onset_rate(slow)
    no_drums, drums = render(recipe(), 16000), render(recipe(drums=True), 16000)
    power = [np.abs(np.fft.rfft(w)) ** 2 for w in (no_drums, drums)]
    high = slice(len(power[0]) * 5 // 8, None)  # 5-8 kHz: hi-hat and snare noise, above the piano's partials
    assert power[1][high].sum() / power[1].sum() > 3 * power[0][high].sum() / power[0].sum()


def pitch_classes(wave: np.ndarray) -> np.ndarray:
    """Spectral energy per pitch class (50 Hz-2 kHz): which key a passage is in."""
    power = np.abs(np.fft.rfft(wave)) ** 2
    hz = np.fft.rfftfreq(len(wave), 1 / RATE)
    audible = (hz > 50) & (hz < 2000)
    classes = np.round(12 * np.log2(hz[audible] / 440.0)).astype(int) % 12
    return np.bincount(classes, weights=power[audible], minlength=12) / power[audible].sum()


def test_modulation_changes_the_key_every_few_bars_and_nothing_else() -> None:
    bar = 2 * RATE  # 4 beats at 120 BPM; bars 0 and 4 hold the same chord of the progression
    steady, modulating = render(recipe(seconds=10.0), RATE), render(recipe(seconds=10.0, modulation_bars=1), RATE)
    for wave in (steady, modulating):
        assert onset_rate(wave) == pytest.approx(onset_rate(steady), rel=0.2)

    def key_change(wave: np.ndarray) -> float:
        first, later = pitch_classes(wave[:bar]), pitch_classes(wave[4 * bar : 5 * bar])
        return float(np.abs(first - later).sum())

    assert key_change(modulating) > 2 * key_change(steady)
    assert {t.recipe.modulation_bars for t in plan_corpus(8, 0, 8, 9)} == {DEMO_MODULATION_BARS} == {1}
    assert {t.recipe.modulation_bars for t in plan_corpus(8, 0, 8, 9, modulation_bars=0)} == {0}
    assert {t.recipe.modulation_bars for t in plan_corpus(8, 0, 8, 9, modulation_bars=2)} == {2}


def test_command_writes_decodable_files_and_a_manifest(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "--tracks", "6", "--min-seconds", "9", "--max-seconds", "10"]
    assert main([*argv, "--sample-rate", str(RATE)]) == 0
    with (tmp_path / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["track_id"] for r in rows] == [f"demo_{i:03d}" for i in range(6)]
    assert all(len(r["tags"].split(";")) == 4 and r["split"] in {"train", "valid", "test"} for r in rows)
    for row in rows:
        audio = decode_file(tmp_path / row["path"], RATE)
        assert 8.9 < len(audio.wave) / RATE < 10.2
