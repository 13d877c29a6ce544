"""From a spec to the numbers the engine uses: horizon T in steps, alpha_t, per-step discount.

Time units (MODEL.md section 1): a horizon of H rounds is T = ceil(H / alpha) steps, so each
agent acts about H times whatever B is; the discount is then per round, i.e. gamma^alpha per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tmfcli.errors import SpecError
from tmfcli.games import Game
from tmfcli.games.base import Array
from tmfcli.spec import Batch, Spec, batch_size


@dataclass(frozen=True)
class Setting:
    """A mean-field problem: game, active fractions alpha (T,), per-step discount, entropy tau.

    ``agents`` and ``batches`` (B_t, shape (T,)) are set when the spec defines a finite
    population; the mean field itself only uses alpha_t = B_t / N.
    """

    game: Game
    alpha: Array
    gamma: float
    tau: float = 0.0
    agents: int | None = None
    batches: np.ndarray | None = None

    @property
    def T(self) -> int:
        return int(self.alpha.shape[0])


def _steps(spec: Spec, game: Game, alpha_value: float, agents: int | None,
           batch: int | None) -> int:
    horizon = spec.horizon
    if horizon.rounds is not None:
        if agents is not None and batch is not None:
            return -(-horizon.rounds * agents // batch)  # exact integer ceil(H N / B)
        return max(1, math.ceil(horizon.rounds / alpha_value - 1e-9))
    if horizon.steps is not None:
        return horizon.steps
    if game.default_horizon is None:
        raise SpecError("horizon", f"missing, and {game.name} has no default horizon",
                        "add horizon: {steps: 30} or horizon: {rounds: 10}", spec.source)
    return game.default_horizon


def setting(spec: Spec, agents: int | None = None, batch: Batch | None = None) -> Setting:
    """Resolve the spec (optionally with another N and batch, as in bound-check sweeps)."""
    game = spec.build_game()
    pop = spec.population
    agents = agents if agents is not None else pop.agents
    batch = batch if batch is not None else pop.batch
    batches = None
    if agents is None:  # mean field only: alpha, a fraction, or synchronous
        value = pop.alpha if pop.alpha is not None else \
            (batch if isinstance(batch, float) else 1.0)
        alpha = np.full(_steps(spec, game, value, None, None), value)
    else:
        sizes = batch_size("all" if batch is None else batch, agents)
        if isinstance(sizes, tuple):  # a cyclic schedule (steps only)
            batches = np.resize(np.asarray(sizes, dtype=np.int64),
                                _steps(spec, game, 1.0, None, None))
        else:
            batches = np.full(_steps(spec, game, sizes / agents, agents, sizes), sizes,
                              dtype=np.int64)
        alpha = batches / agents
    gamma = spec.discount
    if spec.horizon.rounds is not None:
        gamma = gamma ** float(alpha[0])
    return Setting(game=game, alpha=alpha, gamma=gamma, tau=spec.entropy, agents=agents,
                   batches=batches)
