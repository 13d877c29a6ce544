"""The ``tmf`` console script and ``python -m tmfcli``.

Only the standard library (and ``tmfcli.errors``, which imports nothing else) is imported
before ``main`` runs: Ctrl-C while the command line
loads (typer and rich here, then the command's own imports) ends like any interrupt, with one
line ``Error: interrupted ...`` and exit code 130, never a traceback.
"""

from __future__ import annotations

import signal

from tmfcli.errors import interrupted_at_start


def main() -> None:
    """Entry point: the start-up handler, then the typer app (``tmfcli.cli.main``)."""
    signal.signal(signal.SIGINT, interrupted_at_start)
    from tmfcli.cli import main as run  # imported after the handler: see the module's doc

    run()


if __name__ == "__main__":
    main()
