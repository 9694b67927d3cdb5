"""One writer per folder (data_prep.locks) and one-line errors for expected failures (data_prep.entry)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from musicssl.data_prep.entry import UserError, run_command
from musicssl.data_prep.locks import LOCK_NAME, FolderInUseError, exclusive_folder

HOLD = """import sys, time
from pathlib import Path
from musicssl.data_prep.locks import exclusive_folder
with exclusive_folder(Path(sys.argv[1]), "a test holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = pytest.raises(FolderInUseError, match=rf"in use by pid {holder.pid} on .*a test holder, since")
        with refused, exclusive_folder(tmp_path, "the second"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive_folder(tmp_path, "after the holder died"):  # kill -9 freed the lock: taken over
        assert json.loads((tmp_path / LOCK_NAME).read_text())["what"] == "after the holder died"


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "what": "x", "since": "then"}))
    with exclusive_folder(tmp_path, "new"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != 999999


def test_expected_failures_are_one_line_and_bugs_keep_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def refuses(args: list[str]) -> int:
        raise ValueError(f"bad input {args}: pass a good one")

    assert run_command(refuses, ["--x"]) == 2
    assert capsys.readouterr().err == "error: bad input ['--x']: pass a good one\n"

    def disk_full(args: list[str]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.tar")

    assert run_command(disk_full, []) == 2
    assert "error: no space left writing /data/out.tar: free space or write elsewhere" in capsys.readouterr().err

    def user_error(args: list[str]) -> int:
        raise UserError("the server is down: start it")

    assert run_command(user_error, []) == 2
    with pytest.raises(UserError):
        run_command(user_error, ["--debug"])  # --debug keeps the traceback, and is not passed on

    def bug(args: list[str]) -> int:
        return 1 // len(args)

    with pytest.raises(ZeroDivisionError):
        run_command(bug, [])
    with pytest.raises(ValueError, match="Expecting"):  # raised inside a library, not by this project's checks
        run_command(lambda args: json.loads("{"), [])
