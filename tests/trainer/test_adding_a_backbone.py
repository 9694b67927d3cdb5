"""docs/adding-a-backbone.md works as written: its file and registry line, applied to a copy of the project, give a
backbone that its run snippet builds by flag and that passes the registry-driven contract test."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from musicssl.trainer.backbones import BACKBONES
from tests.support.paths import REPO as ROOT
from tests.support.project_copy import copy_project

PAGE = ROOT / "docs" / "adding-a-backbone.md"


def python_blocks(text: str) -> list[str]:
    """The page's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def apply_registry_lines(init: Path, lines: str) -> None:
    """Add the page's imports after the registry module's last backbone import and replace its BACKBONES line."""
    source = init.read_text().splitlines()
    for line in filter(None, lines.splitlines()):
        if line.startswith("BACKBONES"):
            source = [line if old.startswith("BACKBONES") else old for old in source]
        else:
            last_import = max(i for i, old in enumerate(source) if old.startswith("from musicssl.trainer.backbones."))
            source.insert(last_import + 1, line)
    init.write_text("\n".join(source) + "\n")


@pytest.mark.slow
def test_the_page_adds_a_backbone_in_one_file_and_one_registry_line(tmp_path: Path) -> None:
    module, registry, run = python_blocks(PAGE.read_text())
    name = re.search(r'name = "(\w+)"', module)[1]
    assert f"`trainer/backbones/{name}.py`" in PAGE.read_text()
    backbones = copy_project(tmp_path / "musicssl") / "trainer" / "backbones"
    (backbones / f"{name}.py").write_text(module)
    apply_registry_lines(backbones / "__init__.py", registry)
    contract = (
        ROOT / "tests" / "trainer" / "test_backbones.py::test_every_backbone_keeps_the_contract_as_train_py_builds_it"
    )
    pytest_args = ["-v", "-p", "no:cacheprovider", str(contract)]
    check = f"{run}\nimport pytest\n\nraise SystemExit(pytest.main({pytest_args!r}))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}  # the copy first: it is musicssl
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"[{name}]" in done.stdout and f"{len(BACKBONES) + 1} passed" in done.stdout  # the new one too
