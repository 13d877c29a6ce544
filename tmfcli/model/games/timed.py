"""Timed games (MODEL.md section 9): decisions are instantaneous, time runs per round for all.

A timed game declares its dynamics in two parts, every function batched over mu (..., O):

    decision(mu, t)         -> D (..., O, A, O)   conditional D(x | o, a, mu): a decision's effect
    decision_reward(mu, t)  -> c (..., O, A)      paid at the decision
    generator(mu)           -> G (..., O, O)      rates per round (off-diagonal >= 0, rows sum 0)
    flow_reward(mu)         -> f (..., O)         earned per round

where t is the index of the decision step. A step of duration dt rounds is a decision stage at
mu_t (B_t agents draw a ~ pi_t and move by D; idle agents stay) and then a time stage at the
distribution mu_t^+ after it, frozen over the stage: every agent moves by
E = expm(dt G(mu^+)) and earns F = int_0^dt gamma^s expm(s G(mu^+)) ds f(mu^+)
(``stage``: one block-matrix exponential gives both, Van Loan 1978).

**The engine runs a timed game as a per-step game** (MODEL.md section 9, "in the terms of
sections 1-8") of 2T steps: step 2t is the decision stage (P = D, r = c, P0 = identity,
r0 = 0, B_t agents act), step 2t + 1 the time stage (B = 0: every agent moves by P0 = E and earns
r0 = F). So the flow, the values, the exploitability, the exact N-agent chain, eps_N, the
bound, the solvers and the learners apply unchanged. ``at(dt, gamma)`` binds the clock (the
setting does it: dt = alpha with a horizon in rounds, ``clock.dt`` in steps); the per-step
functions below are those of the bound game, with t the per-step index.

**Discount.** The stage discounts by gamma^dt and the decision by nothing; the per-step engine
applies one discount per step, so each of the two steps is discounted by gamma^(dt/2) and the
time stage credits F gamma^(-dt/2). Then every return, every value and Q at a decision step,
every policy and every exploitability are exactly those of the two-stage step; a value at a
time step is gamma^(-dt/2) times the stage's (``step_discount`` and ``idle_reward``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from tmfcli.model.games.base import Array, Game, Potential

DECISION, TIME = 0, 1  # the stages: the phase t mod 2 of a per-step index t


def stage(G: Array, f: Array, dt: float, gamma: float) -> tuple[Array, Array]:
    """E = expm(dt G) (..., O, O) and F = int_0^dt gamma^s expm(s G) ds f (..., O).

    With l = -log gamma, the block matrix M = [[G - l I, f], [0, 0]] has
    expm(dt M) = [[expm(dt (G - l I)), int_0^dt expm(s (G - l I)) ds f], [0, 1]], so its
    top-right column is F and its top-left block is gamma^dt E (Van Loan 1978).
    """
    import scipy.linalg  # lazy: scipy only when a stage has no closed form (start-up time)

    O = G.shape[-1]
    rate = -math.log(gamma)
    M = np.zeros((*G.shape[:-2], O + 1, O + 1))
    M[..., :O, :O] = G - rate * np.eye(O)
    M[..., :O, O] = f
    X = scipy.linalg.expm(dt * M)
    E = X[..., :O, :O] * math.exp(rate * dt)
    return E, X[..., :O, O]


def discounted_time(dt: float, gamma: float) -> float:
    """int_0^dt gamma^s ds: the flow reward a constant rate of 1 pays over a stage."""
    rate = -math.log(gamma)
    return dt if rate == 0.0 else -math.expm1(-rate * dt) / rate


@dataclass(frozen=True)
class TimedGame(Game):
    """Base class of timed games; subclasses implement ``build`` and the four functions.

    ``static_decisions`` declares that D and c depend neither on mu nor on t, ``time_moves``
    that G is not zero (when False every agent stays over a time stage: E = identity, and the
    game's dynamics are static when its decisions are).
    """

    static_decisions: ClassVar[bool] = False
    time_moves: ClassVar[bool] = True
    period = 0  # a subclass whose decisions do not depend on t declares 2

    dt: float = field(init=False, default=1.0)
    gamma: float = field(init=False, default=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set(static_dynamics=self.static_decisions and not self.time_moves,
                  idle_stays=not self.time_moves)

    # --- what a timed game declares ----------------------------------------------------------
    def decision(self, mu: Array, t: int) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_reward(self, mu: Array, t: int) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def generator(self, mu: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def flow_reward(self, mu: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def time_stage(self, mu: Array) -> tuple[Array, Array]:
        """E (..., O, O) and F (..., O) of a stage of the bound clock at mu^+ (..., O); a game
        with a closed form overrides this (tests hold it to ``stage``)."""
        return stage(self.generator(mu), self.flow_reward(mu), self.dt, self.gamma)

    # --- the clock ---------------------------------------------------------------------------
    def at(self, dt: float, gamma: float) -> TimedGame:
        """The same game with its clock bound: stages of dt rounds, discount gamma per round."""
        clock = dataclasses.replace(self)
        clock._set(mu0=self.mu0, dt=float(dt), gamma=float(gamma))
        return clock

    @property
    def step_discount(self) -> float:
        """The discount of one per-step index: gamma^(dt/2) (two steps per stage)."""
        return float(self.gamma ** (self.dt / 2))

    # --- the per-step game the engine runs (t: the per-step index) ---------------------------
    def transition(self, mu: Array, t: int) -> Array:
        return self.decision(mu, t // 2)  # on a time step nobody decides: P is not used

    def reward(self, mu: Array, t: int) -> Array:
        return self.decision_reward(mu, t // 2)

    def idle_transition(self, mu: Array, t: int) -> Array:
        if t % 2 == DECISION or not self.time_moves:
            return super().idle_transition(mu, t)
        return self.time_stage(mu)[0]

    def idle_reward(self, mu: Array, t: int) -> Array:
        if t % 2 == DECISION:
            return np.zeros(mu.shape)
        if self.time_moves:
            F = self.time_stage(mu)[1]
        else:
            F = self.flow_reward(mu) * discounted_time(self.dt, self.gamma)
        return F / self.step_discount


@dataclass(frozen=True)
class TimedPotential(Potential):
    """The potential of a timed game whose stages differ: curvatures of the decision step
    (``curvature``, ``idle_curvature``) and of the time step (``time_idle_curvature``; the
    active curvature of a time step carries no weight, since nobody acts there)."""

    time_idle_curvature: Callable[[Array], Array] = field(default=lambda mu: np.zeros(mu.shape))

    def along(self, mu: Array, steps: NDArray[np.int64]) -> tuple[Array, Array]:
        active, idle = self.curvature(mu), self.idle_curvature(mu)
        timed = steps % 2 == TIME
        idle = np.where(timed[:, None], self.time_idle_curvature(mu), idle)
        return active, idle

