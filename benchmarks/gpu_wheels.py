"""Wheels for the GPU machine: what benchmarks/gpu_suite.py imports there that its image lacks, into `.whl/`.

    .venv/bin/python -m benchmarks.gpu_wheels       # or: make gpu-wheels   (needs the package index)

The GPU machine's Python 3.12 has torch 2.11.0+cu130, torchaudio 2.11.0, accelerate 1.15.0, numpy, tqdm,
safetensors, PyYAML, psutil, msgpack, ninja and einops, no package index and none of the packages below. The
suite imports train.py's command line (tyro), the shard stream (webdataset) and, for its ZeRO-2 section,
DeepSpeed; not PyAV or MLflow (the demo corpus and tracking import them only when used). Versions come from
requirements.lock for Python 3.12 (DeepSpeed and hjson included: the lock's dev set holds the deepspeed extra);
DeepSpeed has no wheel on PyPI, so its source release is built here into a pure-Python wheel (no compiled ops;
ZeRO-2 with the trainer's own optimiser needs none). Not fetched yet: transformers and its dependencies, which
Accelerate's DeepSpeed plugin imports: the suite's deepspeed section needs them added here to run there.
`.whl/` is ignored by git; the device command installs it with
`pip install --no-index --no-deps --target /tmp/site .whl/*.whl` (docs/benchmarks.md, GPU figures).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
DEST = ROOT / ".whl"
PYTHON = "3.12"  # the GPU machine's python3 (3.12.3)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
LOCKED = (
    "tyro",
    "docstring-parser",
    "typeguard",
    "typing-extensions",  # the image has one of unknown version; tyro, typeguard and pydantic need a recent one
    "webdataset",
    "braceexpand",
    "pydantic",  # pydantic and below: DeepSpeed's
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "hjson",  # DeepSpeed's configuration parser
)
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked_pins(lock_text: str, names: tuple[str, ...], python: str = PYTHON) -> list[str]:
    """`name==version` of each name as the lock pins it for `python` (markers evaluated); KeyError if absent."""
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    pins: dict[str, str] = {}
    for line in lock_text.splitlines():
        match = PIN.match(line.strip())
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate(environment):
            pins[name.lower()] = f"{name}=={version}"
    missing = [name for name in names if name not in pins]
    if missing:
        raise KeyError(f"{LOCK.name} pins no version of {missing} for Python {python}")
    return [pins[name] for name in names]


def download(requirements: list[str]) -> None:
    """Binary wheels for the GPU machine's Python and platform, without their dependencies."""
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", PYTHON, "--implementation", "cp", *platforms, "-d", str(DEST)]
    subprocess.run([*command, *requirements], check=True)


def build_deepspeed(pin: str) -> None:
    """DeepSpeed's source release as a pure-Python wheel (DS_BUILD_OPS=0; its setup imports the local torch)."""
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    environment = {**os.environ, "DS_BUILD_OPS": "0"}
    subprocess.run([*command, "-w", str(DEST), pin], check=True, env=environment)


def main() -> None:
    """Fill .whl/ afresh and print what it holds."""
    DEST.mkdir(exist_ok=True)
    for old in DEST.glob("*.whl"):
        old.unlink()
    download(locked_pins(LOCK.read_text(), LOCKED))
    build_deepspeed(*locked_pins(LOCK.read_text(), ("deepspeed",)))
    wheels = sorted(DEST.glob("*.whl"))
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    print(f"{sum(w.stat().st_size for w in wheels) / 2**20:7.2f} MiB  in {len(wheels)} wheels, {DEST}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
