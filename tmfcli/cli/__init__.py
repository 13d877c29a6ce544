"""The ``tmf`` command line: one module per command, each thin (load a spec, call one core
function, write tables, summarise); ``common`` holds what they share."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from tmfcli.cli import (  # noqa: F401  (registers commands)
    bound_check,
    games,
    report,
    runs,
    simulate,
    solve,
    spec,
    train,
    validate,
)
from tmfcli.cli.common import app, out
from tmfcli.errors import interrupted_at_start
from tmfcli.version import __version__

__all__ = ["app", "main"]


def version_callback(value: bool) -> None:
    if value:
        out.print(f"tmf {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=version_callback,
                                               is_eager=True, help="show the version")] = False
         ) -> None:
    """Asynchronous mean-field learning: learn policies from N-agent samples, solve mean-field
    equilibria, simulate N agents, check finite-population bounds."""


def main() -> None:
    """Run the typer app. Until a command starts (its arguments parsed), Ctrl-C ends with
    one line and exit code 130 (``tmfcli.errors.interrupted_at_start``); from then on the
    command's own handling applies (``common.command``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupted_at_start)
    app()
