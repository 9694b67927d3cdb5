"""The adapters' split sizes against the paper's Table 1: the published sizes load, differences are named."""

from pathlib import Path

from musicssl.data_prep.datasets import ADAPTERS, build_manifest
from musicssl.data_prep.datasets.published import PublishedSplits, published_splits, split_size_differences
from tests.support.mtat_factory import make_mtat


def test_table_1_sizes_are_held_for_adapters_that_exist() -> None:
    published = published_splits()
    assert set(published) == {"mtat", "msd100", "jamendo-top50", "jamendo-instrument", "jamendo-moodtheme"}
    assert set(published) <= set(ADAPTERS)
    assert published["mtat"].sizes == {"train": 15244, "valid": 1529, "test": 4332}
    assert published["msd100"].sizes == {"train": 71388, "valid": 15618, "test": 15281}
    assert published["jamendo-moodtheme"].sizes == {"train": 9949, "valid": 3802, "test": 4231}
    assert published["mtat"].source == "paper Table 1, row MTAT"


def test_a_missing_track_is_named_and_a_shorter_split_file_is_told_apart() -> None:
    published = PublishedSplits("paper Table 1, row toy", {"train": 3, "valid": 2, "test": 1})
    found = {"train": 3, "valid": 1}
    differences = split_size_differences(published, found, {"test": ("clip-9",)})
    assert len(differences) == 2  # train is as published
    valid, test = differences
    assert valid.startswith("valid: 1 tracks in the manifest, 2 in paper Table 1, row toy")
    assert "the split files list 1 (1 fewer than published" in valid and "no audio" not in valid
    assert test == (
        "test: 0 tracks in the manifest, 1 in paper Table 1, row toy; "
        "1 listed tracks have no audio: clip-9 (all in missing.csv)"
    )
    assert split_size_differences(published, {"train": 3, "valid": 2, "test": 1}, {}) == []


def test_mtat_adapter_reports_the_missing_clip_against_table_1(tmp_path: Path) -> None:
    root, meta = make_mtat(tmp_path)  # 2 / 1 / 1 clips listed, the test clip (id 13) without audio
    summary = build_manifest("mtat", root, tmp_path / "out", meta)
    assert summary.missing_per_split == {"test": ("13",)}
    by_split = {difference.split(":")[0]: difference for difference in summary.size_differences}
    assert set(by_split) == {"train", "valid", "test"}
    assert "2 tracks in the manifest, 15,244 in paper Table 1, row MTAT" in by_split["train"]
    assert by_split["test"].endswith("1 listed tracks have no audio: 13 (all in missing.csv)")
