"""Errors raised by the tmf core; the CLI turns each into one line and exit code 1."""

from __future__ import annotations

import sys
from typing import Any

INTERRUPTED_AT_START = 130  # 128 + SIGINT, as for any interrupted command


def interrupted_at_start(signum: int, frame: Any) -> None:
    """SIGINT before a command has started: nothing ran, nothing was written (the handler of
    ``tmfcli.__main__`` and ``tmfcli.cli.main`` until a command starts)."""
    sys.stderr.write("Error: interrupted before the command started — nothing was run; rerun the "
                     "same command\n")
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED_AT_START)


class TmfError(Exception):
    """Base class: a problem the user can fix, with a hint saying how."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def message(self) -> str:
        """The one-line message shown after ``Error:``."""
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class SpecError(TmfError):
    """A spec (YAML file or ``--set`` override) is invalid at a given key."""

    def __init__(self, key: str, problem: str, fix: str, source: str = "") -> None:
        super().__init__(problem, fix)
        self.key = key
        self.source = source

    def message(self) -> str:
        where = ":".join(part for part in (self.source, self.key) if part)
        return f"{where}: {self.problem} — {self.fix}"


class ResultsError(TmfError):
    """A result or policy directory is missing, incomplete or does not fit the spec."""


class NumericalError(TmfError):
    """A computation produced non-finite numbers or left the simplex."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) received while a command runs: its clean-up runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
