"""Shared helpers: build specs and settings from small dicts."""

from __future__ import annotations

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
