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
