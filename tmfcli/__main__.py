"""The ``tmf`` console script and ``python -m tmfcli``.

Only the standard library is imported before ``main`` runs: Ctrl-C while the command line
loads (typer and rich here, then the command's own imports) ends like any interrupt, with one
line ``Error: interrupted ...`` and exit code 130, never a traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

INTERRUPTED_AT_START = 130  # 128 + SIGINT, as for any interrupted command


def interrupted_at_start(signum: int, frame: Any) -> None:
    """SIGINT before a command has started: nothing ran, nothing was written."""
    sys.stderr.write("Error: interrupted before the command started — nothing was run; rerun the "
                     "same command\n")
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED_AT_START)


def main() -> None:
    """Entry point: the start-up handler, then the typer app (``tmfcli.cli.main``)."""
    signal.signal(signal.SIGINT, interrupted_at_start)
    from tmfcli.cli import main as run  # imported after the handler: see the module's doc

    run()


if __name__ == "__main__":
    main()
