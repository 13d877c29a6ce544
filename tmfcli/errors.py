"""Errors raised by the tmf core; the CLI turns each into one line and exit code 1."""

from __future__ import annotations


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
