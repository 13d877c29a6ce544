"""``tmf games``: the registered games."""

from __future__ import annotations

from tmfcli.cli.common import (
    command,
    out,
)


@command
def games() -> None:
    """List the registered games with their parameters and defaults.

    Example:  tmf games
    """
    from tmfcli.model.games import GAMES
    from tmfcli.model.params import describe

    for name, cls in GAMES.items():
        game = cls()
        out.print(f"[bold]{name}[/bold]  (O={game.n_obs}, A={game.n_act}"
                  f"{f', default horizon {cls.default_horizon}' if cls.default_horizon else ''})"
                  f": {cls.summary}")
        for pname, default, doc in describe(cls) or [("(none)", "", "")]:
            out.print(f"    {pname:<10} {default:<14} {doc}", markup=False)
