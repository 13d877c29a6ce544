"""A validated spec resolved into the engine's numbers: T in steps, the batches B_t, alpha_t and
the per-step discount of a ``Setting`` (MODEL.md sections 1 and 9)."""

from __future__ import annotations

import math

import numpy as np

from tmfcli.errors import SpecError
from tmfcli.io.spec_types import Spec
from tmfcli.model.games import Game
from tmfcli.model.games.base import Array
from tmfcli.model.games.timed import TimedGame
from tmfcli.model.setting import ALL, Batch, Setting


def _steps(spec: Spec, game: Game, alpha_value: float, agents: int | None,
           batch: int | None) -> int:
    """The number of decision steps (a timed game runs two per-step indices for each)."""
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


def _decisions(spec: Spec, game: Game, agents: int | None,
               batch: Batch | None) -> tuple[int, float, tuple[int, ...] | None]:
    """The batch resolved, without building an array: the number of decision steps T, alpha
    of a constant batch (or of a mean field) and B per step of the batch's cycle (None for a
    mean field without agents). ``agents`` and ``batch`` default to the spec's."""
    pop = spec.population
    agents = agents if agents is not None else pop.agents
    batch = batch if batch is not None else pop.batch
    if agents is None:  # mean field only: alpha, a fraction, or synchronous
        value = pop.alpha if pop.alpha is not None else \
            (batch.value if batch is not None and isinstance(batch.value, float) else 1.0)
        return _steps(spec, game, value, None, None), value, None
    form = batch if batch is not None else ALL
    sizes = form.sizes(agents)
    if form.kind == "schedule":  # a cyclic schedule (steps only)
        return _steps(spec, game, 1.0, None, None), 1.0, sizes
    return _steps(spec, game, sizes[0] / agents, agents, sizes[0]), sizes[0] / agents, sizes


def steps_of(spec: Spec, game: Game, agents: int | None = None,
             batch: Batch | None = None) -> int:
    """T of ``setting(spec, agents, batch)`` for the spec's built ``game``, without building
    any array of the run (for the size checks of ``tmfcli.io.budget``)."""
    stages = 2 if isinstance(game, TimedGame) else 1
    return stages * _decisions(spec, game, agents, batch)[0]


def setting(spec: Spec, agents: int | None = None, batch: Batch | None = None) -> Setting:
    """Resolve the spec (optionally with another N and batch, as in bound-check sweeps)."""
    game = spec.build_game()
    T, value, sizes = _decisions(spec, game, agents, batch)
    agents = agents if agents is not None else spec.population.agents
    batches = None
    if sizes is None or agents is None:
        alpha = np.full(T, value)
    else:
        batches = np.resize(np.asarray(sizes, dtype=np.int64), T)
        alpha = batches / agents
    if isinstance(game, TimedGame):
        return _timed(spec, game, alpha, batches, agents)
    gamma = spec.discount
    if spec.horizon.rounds is not None:
        gamma = gamma ** float(alpha[0])
    return Setting(game=game, alpha=alpha, gamma=gamma, tau=spec.entropy, agents=agents,
                   batches=batches)


def _timed(spec: Spec, game: TimedGame, alpha: Array, batches: np.ndarray | None,
           agents: int | None) -> Setting:
    """The per-step setting of a timed game (MODEL.md section 9): its clock bound (dt = alpha
    in rounds, ``clock.dt`` in steps; the discount per round) and two per-step indices per
    decision step, the decision (B_t agents act) and the time stage (B = 0)."""
    dt = float(alpha[0]) if spec.horizon.rounds is not None else spec.clock.dt
    bound = game.at(dt, spec.discount)
    T = alpha.shape[0]
    stepped = np.zeros(2 * T)
    stepped[0::2] = alpha
    if batches is not None:
        counts = np.zeros(2 * T, dtype=np.int64)
        counts[0::2] = batches
        batches = counts
    return Setting(game=bound, alpha=stepped, gamma=bound.step_discount, tau=spec.entropy,
                   agents=agents, batches=batches, stages=2)
