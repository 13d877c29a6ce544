"""Shared helpers: build specs and settings from small dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tmfcli.io import spec as specs
from tmfcli.io.spec import setting
from tmfcli.model.setting import Setting


def make_setting(game: str, alpha: float = 1.0, steps: int | None = None,
                 params: dict[str, Any] | None = None, **extra: Any) -> Setting:
    """The mean-field setting of ``game`` at active fraction ``alpha`` (extra top-level keys)."""
    data: dict[str, Any] = {"name": "t", "game": {"name": game, "params": params or {}},
                            "population": {"alpha": alpha}}
    if steps is not None:
        data["horizon"] = {"steps": steps}
    data.update(extra)
    return setting(specs.from_dict(data))


def random_policy(rng: np.random.Generator, s: Setting) -> np.ndarray:
    return rng.dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def interrupt_cells(monkeypatch: pytest.MonkeyPatch, after: int = 2) -> Callable[..., Any]:
    """Make bound-check's ``run_cell`` raise KeyboardInterrupt at call ``after + 1`` (as a
    Ctrl-C during a sweep would); returns the real function, to restore it."""
    from tmfcli.commands import bound_check as bc

    real = bc.run_cell
    calls: list[int] = []

    def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == after + 1:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(bc, "run_cell", flaky)
    return real
