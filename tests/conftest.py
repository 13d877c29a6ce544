"""Shared helpers: build specs and settings from small dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tmfcli.io.spec import make_setting
from tmfcli.model.setting import Setting

__all__ = ["interrupt_cells", "make_setting", "random_policy"]


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
