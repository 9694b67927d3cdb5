"""Progress in a log: plain lines, no carriage returns (data_prep.progress)."""

from __future__ import annotations

import io

from musicssl.data_prep.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_outside_a_terminal_progress_is_whole_lines() -> None:
    log = io.StringIO()
    with progress_bar(stream=log, total=4, desc="training", mininterval=0, miniters=1) as bar:
        for _ in range(4):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 4 and all(line.startswith("training:") for line in lines)
    assert "4/4" in lines[-1]


def test_on_a_terminal_it_is_tqdms_bar() -> None:
    terminal = Terminal()
    with progress_bar(stream=terminal, total=2, mininterval=0, miniters=1) as bar:
        bar.update(2)
    assert "\r" in terminal.getvalue()
