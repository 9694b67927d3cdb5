"""The pure parts of the real-music corpus builder: splits by hash, and which files of an unpacked package become
manifest rows (no apt, no network: a fake package tree of tiny generated wav files)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from benchmarks import real_corpus
from musicssl.data_prep.audio_files import write_audio
from musicssl.data_prep.inputs import find_inputs

RATE = 8000


def test_split_of_is_fixed_per_track_and_near_the_shares() -> None:
    ids = [f"pkg/usr/share/music/track{i}.ogg" for i in range(4000)]
    assert [real_corpus.split_of(i) for i in ids] == [real_corpus.split_of(i) for i in ids]
    assert real_corpus.split_of("supertux-data/usr/share/games/supertux2/music/forest/forest.ogg") == "test"
    for name, share in real_corpus.SPLITS:
        assert sum(real_corpus.split_of(i) == name for i in ids) / len(ids) == pytest.approx(share, abs=0.03)


def _tone(path: Path, seconds: float) -> Path:
    wave = 0.1 * np.sin(np.arange(int(seconds * RATE)) * 0.05).astype(np.float32)
    return write_audio(path, wave, RATE)


def test_manifest_rows_keep_long_music_and_drop_effects_ambiences_and_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(real_corpus, "MIN_MUSIC_SECONDS", 2.0)
    root = tmp_path / "extracted" / "game-data"
    files = [
        _tone(root / "usr/share/game/Music/theme.wav", 3.0),  # kept
        _tone(root / "usr/share/game/Music/jingle.wav", 1.0),  # too short
        _tone(root / "usr/share/game/sounds/wind.wav", 3.0),  # long, but an ambience
        _tone(root / "usr/share/game/music/copy/theme.wav", 3.0),  # the same bytes as theme.wav
    ]
    (root / "usr/share/game/music/broken.ogg").write_bytes(b"not audio")
    files.append(root / "usr/share/game/music/broken.ogg")
    tracks = real_corpus.music_tracks(files, root, "game-data", "1.0-1", seen={})
    assert [t.track_id for t in tracks] == ["game-data/usr/share/game/Music/theme.wav"]
    assert tracks[0].folder == "usr/share/game/Music" and tracks[0].seconds == pytest.approx(3.0, abs=0.05)

    manifest = tmp_path / real_corpus.MANIFEST_NAME
    real_corpus.write_manifest(tracks, manifest)
    (row,) = csv.DictReader(manifest.open(encoding="utf-8"))
    assert row["path"] == "extracted/game-data/usr/share/game/Music/theme.wav"
    assert (row["tags"], row["source"], row["version"]) == ("game-data", "game-data", "1.0-1")
    (track,) = find_inputs(manifest)  # data_prep reads it as written
    assert track.path == files[0].resolve() and track.tags == ["game-data"]
    assert track.split == real_corpus.split_of(track.track_id)


def test_music_outside_a_music_folder_only_where_a_package_keeps_it() -> None:
    snd = "usr/share/games/frozen-bubble/snd"
    assert real_corpus.is_music_path("frozen-bubble-data", PurePosixPath(f"{snd}/introzik.ogg"))
    assert not real_corpus.is_music_path("frozen-bubble-data", PurePosixPath(f"{snd}/applause.ogg"))
    assert not real_corpus.is_music_path("other-data", PurePosixPath(f"{snd}/introzik.ogg"))


def test_audio_members_of_a_music_archive_are_unpacked_beside_it(tmp_path: Path) -> None:
    tone = _tone(tmp_path / "tone.wav", 0.5)
    archive = tmp_path / "game/public.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(tone, "audio/music/theme.wav")
        bundle.writestr("art/texture.png", b"png")
    written = real_corpus.unzip_audio(archive, frozenset({".wav"}))
    assert written == [tmp_path / "game/public.zip.d/audio/music/theme.wav"] and not archive.exists()
    assert written[0].read_bytes() == tone.read_bytes()


def test_genres_are_the_game_facets_of_debtags_folded_over_lines() -> None:
    shown = (
        "Package: ardentryst\nVersion: 1.71-9\nTag: game::rpg, implemented-in::python,\n"
        " interface::graphical, game::arcade\nSize: 24200000\n\nPackage: ardentryst\nVersion: 1.70-1\n"
    )
    fields = real_corpus.parse_control(shown)
    assert (fields["Version"], fields["Size"]) == ("1.71-9", "24200000")
    assert real_corpus.genres_of(fields["Tag"]) == {"genre:rpg", "genre:arcade"}
    assert real_corpus.genres_of("role::app-data, made-of::audio") == set()


def test_a_source_is_dropped_when_its_tracks_leave_too_few_train_or_test_tracks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A soundtrack with fewer than MIN_SPLIT_TRACKS train or test tracks gives a tag too thin to probe."""
    monkeypatch.setattr(real_corpus, "MIN_MUSIC_SECONDS", 2.0)
    monkeypatch.setattr(real_corpus, "MIN_SPLIT_TRACKS", 1)
    names = {real_corpus.split_of(f"game-data/music/t{i}.wav"): f"t{i}.wav" for i in range(40)}
    monkeypatch.setattr(real_corpus, "package_info", lambda package: ("1.0-1", 1.0))
    monkeypatch.setattr(real_corpus, "download", lambda package, debs: debs / "game-data.deb")
    monkeypatch.setattr(real_corpus, "game_genres", lambda package: ("genre:strategy",))

    def unpack(split_names: list[str]) -> None:
        def extract_audio(deb: Path, target: Path, archive: str | None = None) -> list[Path]:
            return [_tone(target / "music" / names[split], 3.0 + i / 10) for i, split in enumerate(split_names)]

        monkeypatch.setattr(real_corpus, "extract_audio", extract_audio)

    unpack(["train", "valid"])
    summary, tracks = real_corpus.collect("game-data", tmp_path, 100.0, seen={})
    assert not summary.used and tracks == [] and "0 test tracks of its 2" in summary.reason
    unpack(["train", "test"])
    summary, tracks = real_corpus.collect("game-data", tmp_path, 100.0, seen={})
    assert summary.used and summary.genres == ("genre:strategy",)
    assert sorted(t.split for t in tracks) == ["test", "train"] and all(t.genres == summary.genres for t in tracks)
    real_corpus.write_manifest(tracks, tmp_path / real_corpus.MANIFEST_NAME)
    assert [t.tags for t in find_inputs(tmp_path / real_corpus.MANIFEST_NAME)] == [["game-data", "genre:strategy"]] * 2
