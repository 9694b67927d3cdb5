"""The installed project: every package folder is in the wheel, and the wheel works outside the checkout.

pyproject.toml installs the checkout's root as the package `musicssl` (trainer/ is musicssl.trainer, configs/ is
package data in musicssl/configs), so that no installed name collides with PyPI's trainer, sharding or downstream
and presets, sweeps and references are found wherever the wheel was installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import tiny_run
from tests.support.labelled_shard_factory import balanced_tracks, write_labelled_set
from tests.support.paths import REPO
from tests.support.project_copy import PACKAGES, copy_project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

shards = tiny_run.shards  # the tiny runs' shard set fixture
SCRIPTS = (
    "train",
    "evaluate",
    "prep",
    "datasets",
    "shards",
    "compare",
    "sweeps",
    "embed",
    "pretrained",
    "catalogue",
    "neighbours",
)


def test_every_package_folder_is_installed() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        "musicssl." + ".".join(init.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for init in (REPO / package).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == {"musicssl", *folders}, "list these in pyproject.toml [tool.setuptools]"
    assert setuptools["package-dir"] == {"musicssl": "."}


def dependency_paths() -> list[str]:
    """This interpreter's import path without the checkout: where the fresh environment finds the locked
    dependencies. A path line in a .pth file runs no other .pth file, so the project's editable finder stays out."""
    checkout = {REPO, REPO / "tests"}
    return [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() not in checkout]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel built from this checkout, then, through a .pth file, the
    dependencies installed here (no index needed); returns its bin folder."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"  # what the wheel is built from, copied: no build/ in the checkout, no stale files
    copy_project(source)
    for path in (REPO / "pyproject.toml", REPO / "README.md"):
        shutil.copy2(path, source / path.name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w"]
    subprocess.run([*build, str(root / "wheel"), str(source)], check=True, timeout=300, cwd=root)
    (wheel,) = (root / "wheel").glob("musicssl-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet"]
    subprocess.run([*install, str(wheel)], check=True, timeout=300, cwd=root)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "zz_dependencies.pth").write_text("".join(f"{path}\n" for path in dependency_paths()))
    return venv / "bin"


def run(command: list[str | Path], cwd: Path) -> str:
    """Run outside the checkout: another folder, no PYTHONPATH, MLflow in a sqlite file there."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_trains_and_evaluates_outside_the_checkout(installed: Path, shards: str, tmp_path: Path) -> None:
    where = "import musicssl.trainer.presets as p, importlib.util as u; print(p.PRESET_DIR, u.find_spec('trainer'))"
    presets, other = run([installed / "python", "-c", where], tmp_path).split()
    assert Path(presets).is_relative_to(installed.parent) and Path(presets).is_dir()  # the package data
    assert other == "None"  # no top-level `trainer`: the checkout is not on the path
    assert {f"musicssl-{name}" for name in SCRIPTS} <= {path.name for path in installed.iterdir()}
    assert "thesis-batch-size" in run([installed / "musicssl-sweeps", "list", "thesis-batch-size"], tmp_path)

    output = tmp_path / "run"
    tiny = [
        "--preset", "demo", "--pretext", "contrastive", "--output-dir", output, "--no-mlflow", "--data", shards,
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--monitor.data", "None",
        "--pairs.crop-seconds", "1", "--pairs.min-gap-seconds", "1", "--pairs.max-gap-seconds", "3",
        "--pairs.num-workers", "0", "--pairs.pair-shuffle", "16",
    ]  # fmt: skip
    run([installed / "musicssl-train", *tiny], tmp_path)
    assert (output / "backbone.safetensors").is_file()

    write_labelled_set(tmp_path / "toyset", balanced_tracks({"train": 8, "valid": 4, "test": 4}))
    probes = ["--epochs", "2", "--steps", "3", "--bootstrap-resamples", "5", "--device", "cpu"]
    evaluate = [installed / "musicssl-evaluate", "--backbone", output / "backbone.safetensors"]
    printed = run([*evaluate, "--data", tmp_path / "toyset", "--cache-dir", tmp_path / "cache", *probes], tmp_path)
    assert "ROC-AUC tag" in printed
