from __future__ import annotations

import io

from genofed.cli._console import TerminalProgress
from genofed.sim import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress__draws_one_updating_line_per_stage() -> None:
    terminal = Terminal()
    progress = TerminalProgress(terminal)
    for done in range(3):
        progress(Progress("writing genotypes", done * 256, 512))
    text = terminal.getvalue()
    assert text.count("\r") == 3
    assert "writing genotypes: 512/512 (100%)" in text
    assert text.endswith("\n")


def test_terminal_progress__stays_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()
    TerminalProgress(stream)(Progress("simulating chromosomes", 1, 10))
    assert stream.getvalue() == ""
