"""The install's smoke check: passes on the locked set, and names the fix when torchaudio does not load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "check_install.py")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def test_the_installed_set_passes_the_smoke_check() -> None:
    done = check(dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "check_install: ok (torch 2.11." in done.stdout and "log-mel of 1 s: (1, 1, 128, 32)" in done.stdout


def test_a_torchaudio_that_does_not_load_fails_with_the_fix(tmp_path: Path) -> None:
    broken = tmp_path / "torchaudio"
    broken.mkdir()
    (broken / "__init__.py").write_text(  # what torchaudio 2.11.1 raises beside torch 2.11.0
        "raise OSError('Could not load this library: libtorchaudio.so: undefined symbol: "
        "torch_exception_get_what_without_backtrace')\n"
    )
    done = check({**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1
    (verdict,) = [line for line in done.stderr.splitlines() if line.startswith("check_install: FAILED")]
    assert "undefined symbol" in verdict and "torchaudio 2.11.0" in verdict  # the versions installed
    assert "make install" in done.stderr and "--require-hashes -r requirements.lock" in done.stderr
