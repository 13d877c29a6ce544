"""``tmf games``: the shipped games and the installed plugin games."""

from __future__ import annotations

from tmfcli.cli.common import (
    command,
    out,
)


@command
def games() -> None:
    """List the shipped and plugin games with their parameters and defaults.

    Plugin games are installed packages with an entry point in the group tmf.games; games
    of your own without Python are YAML files (docs/games.md).

    Example:  tmf games
    """
    from rich.markup import escape

    from tmfcli.errors import TmfError
    from tmfcli.model.games import GAMES, from_factory, load_plugin, plugins
    from tmfcli.model.games.base import Game
    from tmfcli.model.params import describe

    def show(name: str, game: Game, kind: type | None, origin: str) -> None:
        horizon = game.default_horizon
        out.print(f"[bold]{escape(name)}[/bold]{escape(origin)}  (O={game.n_obs}, "
                  f"A={game.n_act}{f', default horizon {horizon}' if horizon else ''}): "
                  f"{escape(game.summary)}", markup=True)  # user text escaped
        rows = describe(kind) if kind is not None else []
        for pname, default, doc in rows or [("(none)", "", "")]:
            out.print(f"    {pname:<10} {default:<14} {doc}", markup=False)

    for name, cls in GAMES.items():
        show(name, cls(), cls, "")
    for name, ep in plugins().items():
        origin = f"  [plugin {ep.value}]"
        try:
            factory = load_plugin(name)
            game = from_factory(factory, {}, name)
        except TmfError as error:
            out.print(f"{name}{origin}: cannot be built — {error.message()}", markup=False)
            continue
        kind = factory if isinstance(factory, type) else None
        show(name, game, kind, origin)
