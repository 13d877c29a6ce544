"""Registry of games by name, with validation of their parameters from a spec."""

from __future__ import annotations

from typing import Any

from tmfcli.errors import SpecError
from tmfcli.model.games.base import Game, Lipschitz
from tmfcli.model.games.classic import SIS, BeachBar, LeftRight, RockPaperScissors
from tmfcli.model.games.project import Queueing, ResourceSelection
from tmfcli.model.params import build

GAMES: dict[str, type[Game]] = {
    cls.name: cls
    for cls in (ResourceSelection, Queueing, LeftRight, RockPaperScissors, BeachBar, SIS)
}

__all__ = ["GAMES", "Game", "Lipschitz", "make_game"]


def make_game(name: str, params: dict[str, Any] | None = None, source: str = "",
              prefix: str = "game") -> Game:
    """Build the game ``name`` with ``params`` validated; errors name ``<prefix>.params.<key>``."""
    if name not in GAMES:
        raise SpecError(f"{prefix}.name", f"unknown game {name!r}",
                        f"use one of: {', '.join(GAMES)}", source)
    return build(GAMES[name], params, f"{prefix}.params", source, name)
