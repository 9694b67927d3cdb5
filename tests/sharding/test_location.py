"""Tests for sharding.location: local folders, pipe: templates, http base URLs, and clear errors."""

import functools
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from musicssl.sharding.format import INDEX_NAME, ShardIndex
from musicssl.sharding.location import iter_tar_members, load_index, resolve, shard_urls
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks
from tests.support.shard_factory import write_shard_set


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("set")
    tracks = [np.full(50 + 10 * i, i, dtype=np.int16) for i in range(5)]
    write_shard_set(directory, tracks, sample_rate=100, tracks_per_shard=2)
    return directory


@pytest.fixture
def http_base(shard_set: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(shard_set))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_local_folder_lists_existing_shards_in_index_order(shard_set: Path) -> None:
    index = load_index(shard_set)
    assert index.num_tracks == 5
    urls = shard_urls(shard_set, index)
    assert [Path(u).name for u in urls] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert all(Path(u).is_file() for u in urls)


def test_index_names_its_track_count_and_reads_sets_written_before_the_name(shard_set: Path) -> None:
    body = json.loads((shard_set / INDEX_NAME).read_text())
    assert body["num_tracks"] == 5 and "total_samples" not in body
    old = {key: value for key, value in body.items() if key != "num_tracks"} | {"total_samples": 5}
    assert ShardIndex.from_json(json.dumps(old)).num_tracks == 5


def test_templates_and_base_urls_name_each_file() -> None:
    assert resolve("pipe:aws s3 cp s3://bucket/set/{} -", "index.json") == "pipe:aws s3 cp s3://bucket/set/index.json -"
    assert resolve("https://host/sets/a/", "shard-000001.tar") == "https://host/sets/a/shard-000001.tar"
    assert resolve("https://host/sets/a", "index.json") == "https://host/sets/a/index.json"


def test_pipe_template_reads_the_index_and_every_track(shard_set: Path) -> None:
    location = f"pipe:cat {shard_set}/{{}}"
    assert load_index(location) == load_index(shard_set)
    assert shard_urls(location, load_index(location))[0] == f"pipe:cat {shard_set}/shard-000000.tar"
    through_pipe = [(meta.track_id, wave.tolist()) for wave, meta in iter_tracks(ShardSet.open(location))]
    from_folder = [(meta.track_id, wave.tolist()) for wave, meta in iter_tracks(ShardSet.open(shard_set))]
    assert through_pipe == from_folder
    assert len(through_pipe) == 5


@pytest.mark.skipif(shutil.which("curl") is None, reason="webdataset opens http URLs with curl")
def test_http_base_url_reads_the_index_and_every_track(shard_set: Path, http_base: str) -> None:
    assert load_index(http_base) == load_index(shard_set)
    assert [meta.track_id for _, meta in iter_tracks(ShardSet.open(http_base))] == [f"track{i:06d}" for i in range(5)]


@pytest.mark.parametrize("template", ["{folder}/missing", "pipe:cat {folder}/missing/{{}}"])
def test_missing_index_is_reported_with_the_location(tmp_path: Path, template: str) -> None:
    location = template.format(folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="shard index") as raised:
        load_index(location)
    assert location in str(raised.value)


def test_unsupported_scheme_suggests_a_pipe_template() -> None:
    with pytest.raises(ValueError, match="pipe:aws s3 cp"):
        load_index("ftp://host/set")


def test_object_store_urls_resolve_and_name_the_missing_package() -> None:
    assert resolve("s3://bucket/set/", "index.json") == "s3://bucket/set/index.json"
    with pytest.raises(FileNotFoundError, match="s3fs"):  # the optional extra is not installed in the test venv
        load_index("s3://bucket/set")


def write_tar(path: Path, members: dict[str, bytes], tar_format: int) -> None:
    with tarfile.open(path, "w", format=tar_format) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1.5  # a float mtime makes PAX_FORMAT write an extended header
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("a-folder")
        folder.type = tarfile.DIRTYPE  # not a regular file: skipped
        tar.addfile(folder)


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_members_match_python_tarfile(tmp_path: Path, tar_format: int) -> None:
    long_name = "x" * (130 if tar_format != tarfile.USTAR_FORMAT else 90) + ".pcm"
    members = {"a.json": b"{}", long_name: bytes(range(256)) * 3, "empty.pcm": b"", "é.json": b"1"}
    write_tar(tmp_path / "s.tar", members, tar_format)
    with open(tmp_path / "s.tar", "rb") as stream:
        assert {m.name: m.data for m in iter_tar_members(stream)} == members


def test_truncated_and_damaged_tars_raise_read_errors(tmp_path: Path) -> None:
    write_tar(tmp_path / "s.tar", {"a.pcm": b"\1" * 3000}, tarfile.USTAR_FORMAT)
    whole = (tmp_path / "s.tar").read_bytes()
    with pytest.raises(tarfile.ReadError, match=r"ends inside member a\.pcm"):
        list(iter_tar_members(io.BytesIO(whole[:1000])))
    with pytest.raises(tarfile.ReadError, match="ends inside a header"):
        list(iter_tar_members(io.BytesIO(whole[:300])))
    damaged = bytearray(whole)
    damaged[10] ^= 0xFF  # inside the name: the header checksum no longer matches
    with pytest.raises(tarfile.HeaderError):
        list(iter_tar_members(io.BytesIO(bytes(damaged))))
