"""The GPU suite (`python -m benchmarks.gpu_suite`) cannot rot: its smoke mode runs every section on CPU with figures,
it imports nothing the GPU machine lacks beyond its carried wheels, and those wheels' versions resolve from the lock."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from benchmarks import gpu_wheels
from benchmarks.gpu.trainer_sections import SOURCES
from tests.support.paths import REPO as ROOT

SUITE = "benchmarks.gpu_suite"  # run from ROOT, as docs/benchmarks.md runs it
SECTIONS = {"step", "memory", "samplecnn", "loader", "sync", "deepspeed", "embed"}
PRETEXTS = {"contrastive", "byol", "clustering", "barlow_twins", "vicreg"}


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and value > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One smoke run of the whole suite: its JSON report and its printed table."""
    root = tmp_path_factory.mktemp("gpu-suite")
    command = [sys.executable, "-m", SUITE, "--smoke", "--device", "cpu", "--out", str(root / "out")]
    done = subprocess.run(
        [*command, "--work", str(root / "work")], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((root / "out" / "gpu_suite.json").read_text())
    return report, (root / "out" / "gpu_suite.txt").read_text()


@pytest.mark.slow
def test_smoke_runs_every_section_without_error(smoke: tuple[dict[str, Any], str]) -> None:
    report, table = smoke
    assert set(report["sections"]) == SECTIONS
    assert {name: s["status"] for name, s in report["sections"].items()} == dict.fromkeys(SECTIONS, "ok")
    assert all(positive(s["seconds"]) for s in report["sections"].values())
    assert report["smoke"] and report["machine"]["device"] == "cpu"
    assert all(f"== {name}: ok" in table for name in SECTIONS)


@pytest.mark.slow
def test_smoke_step_section_times_every_pretext_format_and_a_compiled_backbone(
    smoke: tuple[dict[str, Any], str],
) -> None:
    step = smoke[0]["sections"]["step"]
    eager = [r for r in step["rows"] if not r["compiled"]]
    assert {(r["pretext"], r["memory_format"]) for r in eager} == {
        (p, f) for p in PRETEXTS for f in ("contiguous", "channels_last")
    }
    assert all(positive(r["pairs_per_s"]) and positive(r["seconds_per_step"]) for r in step["rows"])
    (compiled,) = [r for r in step["rows"] if r["compiled"]]
    assert compiled["graphs_compiled"] > 0 and isinstance(compiled["compile_s"], float)
    assert set(step["best"]) == PRETEXTS
    assert all(positive(b["speedup_over_default"]) for b in step["best"].values())


@pytest.mark.slow
def test_smoke_memory_section_runs_bf16_and_fp16_with_loss_scaling(smoke: tuple[dict[str, Any], str]) -> None:
    memory = smoke[0]["sections"]["memory"]
    assert {r["precision"] for r in memory["rows"]} == {"bf16", "fp16"}
    assert all(positive(r["seconds_per_step"]) for r in memory["rows"])
    assert all(positive(r["loss_scale"]) == (r["precision"] == "fp16") for r in memory["rows"])
    assert all(r["peak_allocated_gib"] is None for r in memory["rows"]) and memory["note"]  # CPU: no allocator


@pytest.mark.slow
def test_smoke_samplecnn_section_times_both_thesis_presets_with_the_chain(smoke: tuple[dict[str, Any], str]) -> None:
    rows = smoke[0]["sections"]["samplecnn"]["rows"]
    assert [(r["preset"], r["pretext"]) for r in rows] == [("thesis-vicreg", "vicreg"), ("thesis-clmr", "contrastive")]
    assert all(r["views"] == "augmented_crop" for r in rows)
    assert all(positive(r["pairs_per_s"]) and 0 < r["augment_share"] < 1 for r in rows)


@pytest.mark.slow
def test_smoke_trainer_sections_measure_steps_data_wait_and_say_why_cuda_parts_skip(
    smoke: tuple[dict[str, Any], str],
) -> None:
    sections = smoke[0]["sections"]
    loader = sections["loader"]
    assert loader["data"]["shards"] > 1 and loader["readers"][0] == "stream"
    assert {(r["layout"], r["reader"], r["workers"]) for r in loader["rows"]} == {(*s, 1) for s in SOURCES}
    assert {"convert_logmel_f16_s", "convert_logmel_u8_s"} <= set(loader["data"])
    runs = [*loader["rows"], sections["sync"], *sections["deepspeed"]["rows"]]
    assert all(r["timed_steps"] == r["steps"] - 1 and positive(r["pairs_per_s"]) for r in runs)
    assert all(0 <= r["data_wait_fraction"] < 1 for r in runs)
    assert "nvidia-smi" in loader["rows"][0]["gpu_utilisation"]["skipped"]
    assert "CUDA" in sections["sync"]["syncs"]["skipped"]
    assert [r["launcher"] for r in sections["deepspeed"]["rows"]] == ["single_gpu"]
    (zero2,) = sections["deepspeed"]["skipped"]
    assert zero2["launcher"] == "deepspeed_zero2" and "DeepSpeed" in zero2["reason"]


@pytest.mark.slow
def test_smoke_embed_section_embeds_every_track_of_the_small_set(smoke: tuple[dict[str, Any], str]) -> None:
    (row,) = smoke[0]["sections"]["embed"]["rows"]
    assert row["tracks"] == 3 and row["bf16"] is False
    assert positive(row["tracks_per_s"]) and positive(row["audio_hours_per_s"])


def test_the_suite_imports_neither_pyav_nor_mlflow() -> None:
    """Neither is carried to the GPU machine (benchmarks/gpu_wheels.py): importing either there would fail."""
    probe = f"import sys; sys.argv = ['{SUITE}']; import {SUITE}; "
    probe += "print(sorted({'av', 'mlflow'} & {name.split('.')[0] for name in sys.modules}))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_every_carried_wheel_has_a_locked_version_for_python_3_12() -> None:
    pins = gpu_wheels.locked_pins(gpu_wheels.LOCK.read_text(), gpu_wheels.LOCKED)
    assert [pin.split("==")[0] for pin in pins] == list(gpu_wheels.LOCKED)
    assert all(pin.split("==")[1][0].isdigit() for pin in pins)
    lock = "numpy==2.2.6 ; python_full_version < '3.11' \\\nnumpy==2.5.5 ; python_full_version >= '3.12' \\\n"
    assert gpu_wheels.locked_pins(lock, ("numpy",)) == ["numpy==2.5.5"]
    with pytest.raises(KeyError, match="numpy"):
        gpu_wheels.locked_pins(lock, ("numpy",), python="3.11")
