"""`python -m downstream.neighbours`: build + query round trips (exact and HNSW), queries by audio, clear errors."""

import json
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicssl.data_prep.audio_files import write_audio
from musicssl.downstream.embed import SETTINGS_NAME
from musicssl.downstream.embed_files import embed_files
from musicssl.downstream.extract_task import ExtractionSettings
from musicssl.downstream.neighbour_index import IDS_NAME, INDEX_NAME, NeighbourIndex, search
from musicssl.downstream.neighbours import main
from musicssl.trainer.export import load_backbone
from tests.support.audio_factory import TEST_RATE, chord

NUM_TRACKS, DIM = 300, 16


def write_parquet(path: Path, track_ids: list[str], vectors: np.ndarray) -> Path:
    """Embeddings as `downstream.embed` and `embed_files` write them: track_id and a fixed-size list."""
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"track_id": pa.array(track_ids, pa.string()), "embedding": embedding}), path)
    return path


@pytest.fixture
def embeddings(tmp_path: Path) -> Path:
    """Random tracks t0..t299, and t7's near-duplicate `twin` (a scaled copy plus a little noise)."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((NUM_TRACKS, DIM)).astype(np.float32)
    twin = 3.0 * vectors[7] + 0.01 * rng.standard_normal(DIM).astype(np.float32)
    ids = [f"t{i}" for i in range(NUM_TRACKS)] + ["twin"]
    return write_parquet(tmp_path / "embeddings.parquet", ids, np.vstack([vectors, twin]))


def query(index: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> list[dict]:
    """The neighbours a `query --json` prints (what was printed before is dropped)."""
    capsys.readouterr()
    assert main(["query", str(index), *flags, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["neighbours"]


@pytest.mark.parametrize(("exact_below", "kind"), [(1_000_000, "exact"), (10, "hnsw")])
def test_a_track_finds_its_near_duplicate_first_and_never_itself(
    embeddings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], exact_below: int, kind: str
) -> None:
    index = tmp_path / "index"
    assert main(["build", str(embeddings), "--out", str(index), "--exact-below", str(exact_below)]) == 0
    assert f"indexed {NUM_TRACKS + 1} tracks ({DIM}-d, cosine, {kind})" in capsys.readouterr().out
    settings = json.loads((index / "index.json").read_text())
    assert settings["kind"] == kind and settings["dim"] == DIM and settings["metric"] == "cosine"
    assert (settings["hnsw"] is None) == (kind == "exact")

    found = query(index, capsys, "--track", "t7", "-k", "5")
    neighbours = [row["track_id"] for row in found]
    assert neighbours[0] == "twin" and len(found) == 5
    assert found[0]["score"] == pytest.approx(1.0, abs=1e-3)  # cosine: the scale does not matter
    scores = [row["score"] for row in found]
    assert scores == sorted(scores, reverse=True)
    assert "t7" not in neighbours
    assert query(index, capsys, "--track", "twin", "-k", "1")[0]["track_id"] == "t7"

    # exact search by numpy: the same 5 neighbours (an HNSW graph of 301 tracks searched with ef 128 is exact)
    vectors = np.vstack(pq.read_table(embeddings).column("embedding").to_pylist())
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit[7]
    similarity[7] = -np.inf
    assert neighbours[1:] == [f"t{i}" for i in np.argsort(-similarity)[1:5]]
    np.testing.assert_allclose(scores, np.sort(similarity)[::-1][:5], atol=1e-5)

    assert main(["query", str(index), "--track", "t7", "-k", "3"]) == 0  # the table
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "nearest to t7:" and table[2].split()[:2] == ["1", "twin"] and len(table) == 5


def test_a_track_is_left_out_even_when_duplicates_outrank_it() -> None:
    rows = np.ones((5, 4), dtype=np.float32)
    index = faiss.IndexFlatIP(4)
    index.add(rows)
    found, _ = search(index, rows[[4, 0]], 1, exclude=[4, 0])
    assert 4 not in found[0] and 0 not in found[1]


def test_a_rebuild_replaces_the_index_and_dot_keeps_the_scale(
    embeddings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["build", str(embeddings), "--out", str(index)]) == 0
    assert main(["build", str(embeddings), "--out", str(index), "--metric", "dot"]) == 0
    assert json.loads((index / "index.json").read_text())["metric"] == "dot"
    found = query(index, capsys, "--track", "t7", "-k", "1")
    assert found[0]["track_id"] == "twin" and found[0]["score"] > 2 * DIM  # 3 |t7|^2, |t7|^2 ~ DIM
    assert sorted(path.name for path in index.iterdir()) == sorted(["index.json", INDEX_NAME, IDS_NAME])


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three files of two 1 s windows each, a chord then another: their windows differ, so max and mean pooling do."""
    folder = tmp_path_factory.mktemp("audio")
    for name, first, second in (("low", 110.0, 146.8), ("mid", 261.6, 523.2), ("high", 880.0, 659.3)):
        wave = np.concatenate([chord(1.0, first), chord(1.0, second)])
        write_audio(folder / f"{name}.wav", wave, TEST_RATE)
    return folder


def catalogue(folder: Path, audio: Path, backbone_file: Path, pooling: str) -> Path:
    """An embedding folder as `downstream.embed` leaves it: a part and `_embedding.json`, with 20 random others."""
    backbone, _ = load_backbone(str(backbone_file))
    files = [(path.stem, path) for path in sorted(audio.glob("*.wav"))]
    embedded = embed_files(backbone, files, ExtractionSettings(device="cpu", cache_dir=None, progress=False), pooling)
    others = np.random.default_rng(1).standard_normal((20, embedded.embeddings.shape[1])).astype(np.float32)
    ids = embedded.track_ids + [f"other{i}" for i in range(20)]
    write_parquet(folder / "part-00000-00000.parquet", ids, np.vstack([embedded.embeddings, others]))
    (folder / SETTINGS_NAME).write_text(json.dumps({"backbone": str(backbone_file), "pooling": pooling}))
    return folder


def test_an_audio_file_finds_its_own_track_with_the_recorded_backbone_and_pooling(
    backbone_file: Path, audio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["build", str(catalogue(tmp_path / "max", audio, backbone_file, "max")), "--out", str(index)]) == 0
    assert json.loads((index / "index.json").read_text())["source"]["pooling"] == "max"
    capsys.readouterr()
    found = query(index, capsys, "--audio", str(audio / "mid.wav"), "-k", "3", "--device", "cpu")
    assert found[0]["track_id"] == "mid" and found[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(found) == 3


def test_errors_are_one_line_and_name_the_fix(
    backbone_file: Path, audio: Path, embeddings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["build", str(embeddings), "--out", str(index)]) == 0
    capsys.readouterr()

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        return lines[0]

    assert "'t9999' is not in the index" in error("query", str(index), "--track", "t9999")
    assert "no similarity index there" in error("query", str(tmp_path / "missing"), "--track", "t1")
    assert "exactly one of --track" in error("query", str(index))
    small = write_parquet(tmp_path / "small.parquet", ["a", "b"], np.eye(2, dtype=np.float32))
    assert main(["build", str(small), "--out", str(tmp_path / "small")]) == 0
    capsys.readouterr()
    low = str(audio / "low.wav")
    mismatch = error("query", str(tmp_path / "small"), "--audio", low, "--backbone", str(backbone_file))
    assert f"backbone {backbone_file} gives 16-d embeddings but the index {tmp_path / 'small'} holds 2-d" in mismatch
    assert "records no backbone" in error("query", str(tmp_path / "small"), "--audio", low)
    empty = write_parquet(tmp_path / "empty.parquet", [], np.zeros((0, 4), dtype=np.float32))
    assert "no embeddings in it" in error("build", str(empty), "--out", str(tmp_path / "x"))
    twice = write_parquet(tmp_path / "twice.parquet", ["a", "a"], np.eye(2, dtype=np.float32))
    assert "more than once" in error("build", str(twice), "--out", str(tmp_path / "x"))
    assert "no such embeddings" in error("build", str(tmp_path / "nothing"), "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_a_loaded_index_maps_ids_to_rows(embeddings: Path, tmp_path: Path) -> None:
    assert main(["build", str(embeddings), "--out", str(tmp_path / "index")]) == 0
    loaded = NeighbourIndex.load(tmp_path / "index")
    assert loaded.row_of("twin") == NUM_TRACKS and loaded.track_ids[:2] == ["t0", "t1"]
    assert loaded.settings.tracks == NUM_TRACKS + 1
