"""Registry of games by name, with validation of their parameters from a spec.

Three sources of games (docs/games.md): the shipped games of ``GAMES``; installed plugins,
i.e. entry points of the group ``tmf.games`` whose object is a ``Game`` subclass or a factory
returning a ``Game``; and any importable ``module`` with a ``factory`` named in a spec.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tmfcli.errors import SpecError, TmfError
from tmfcli.model.games.base import Game, Lipschitz
from tmfcli.model.games.classic import SIS, BeachBar, LeftRight, RockPaperScissors
from tmfcli.model.games.project import (
    Queueing,
    QueueingPerStep,
    ResourceSelection,
    ResourceSelectionPerStep,
)
from tmfcli.model.params import ParamError, build

GAMES: dict[str, type[Game]] = {
    cls.name: cls
    for cls in (ResourceSelection, Queueing, LeftRight, RockPaperScissors, BeachBar, SIS,
                ResourceSelectionPerStep, QueueingPerStep)
}
ENTRY_POINTS = "tmf.games"

__all__ = ["ENTRY_POINTS", "GAMES", "Game", "Lipschitz", "available_games", "from_factory",
           "from_module", "make_game", "plugins"]


def plugins() -> dict[str, EntryPoint]:
    """Installed plugin games (entry points of ``tmf.games``); a shipped name wins."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS) if ep.name not in GAMES}


def available_games() -> list[str]:
    """Names a spec may give as ``game.name``: shipped games, then plugins."""
    return [*GAMES, *plugins()]


def load_plugin(name: str, source: str = "", prefix: str = "game") -> Any:
    """The object an installed plugin points at (errors name the plugin, never a traceback)."""
    ep = plugins()[name]
    try:
        return ep.load()
    except Exception as err:  # a broken plugin is the user's input, reported on one line
        raise SpecError(f"{prefix}.name", f"plugin game {name!r} ({ep.value}) failed to load: "
                        f"{type(err).__name__}: {err}",
                        "fix or reinstall the package that provides it", source) from None


def from_factory(factory: Any, params: dict[str, Any] | None, what: str, source: str = "",
                 prefix: str = "game") -> Game:
    """Build a game from a ``Game`` subclass (parameters validated as for shipped games) or
    from a callable ``factory(**params)`` returning a ``Game``."""
    params = params or {}
    if isinstance(factory, type) and issubclass(factory, Game):
        return build(factory, params, f"{prefix}.params", source, what)
    if not callable(factory):
        raise SpecError(f"{prefix}.factory", f"{what} is not callable",
                        "point at a Game subclass or a function returning a Game", source)
    try:
        game = factory(**params)
    except TmfError:
        raise
    except ParamError as err:
        raise SpecError(f"{prefix}.params.{err.name}", err.problem, err.fix, source) from None
    except Exception as err:  # the factory refused the parameters
        raise SpecError(f"{prefix}.params", f"{what} failed: {type(err).__name__}: {err}",
                        "give the parameters its signature accepts", source) from None
    if not isinstance(game, Game):
        raise SpecError(f"{prefix}.factory", f"{what} returned {type(game).__name__}, not a "
                        "Game", "return an instance of a tmfcli.model.games.base.Game "
                        "subclass (docs/games.md)", source)
    return game


def from_module(module: str, factory: str, params: dict[str, Any] | None, source: str = "",
                prefix: str = "game") -> Game:
    """``game: {module: m, factory: f, params: ...}``: import m and build f(**params)."""
    try:
        mod = importlib.import_module(module)
    except Exception as err:
        raise SpecError(f"{prefix}.module", f"cannot import {module!r}: "
                        f"{type(err).__name__}: {err}",
                        "install the package, or add its directory to PYTHONPATH", source
                        ) from None
    if not hasattr(mod, factory):
        raise SpecError(f"{prefix}.factory", f"module {module!r} has no {factory!r}",
                        "name a Game subclass or a function of that module", source)
    return from_factory(getattr(mod, factory), params, f"{module}:{factory}", source, prefix)


def make_game(name: str, params: dict[str, Any] | None = None, source: str = "",
              prefix: str = "game") -> Game:
    """Build the game ``name`` with ``params`` validated; errors name ``<prefix>.params.<key>``."""
    if name in GAMES:
        return build(GAMES[name], params, f"{prefix}.params", source, name)
    if name in plugins():
        return from_factory(load_plugin(name, source, prefix), params, name, source, prefix)
    raise SpecError(f"{prefix}.name", f"unknown game {name!r}",
                    f"use one of: {', '.join(available_games())}", source)
