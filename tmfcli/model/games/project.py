"""The project's own games (MODEL.md section 7): resource selection and queueing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tmfcli.model.games.base import (
    Array,
    Game,
    Lipschitz,
    ParamError,
    Potential,
    internal,
    one_hot,
    param,
    static,
)


def _check_length(name: str, values: tuple[float, ...], size: int, what: str) -> None:
    if len(values) != size:
        raise ParamError(name, f"has {len(values)} entries but {what} is {size}",
                         f"give exactly {size} values, one per {name[:-1] or name}")


@dataclass(frozen=True)
class ResourceSelection(Game):
    """K resources with congestion: r(o,a,mu) = c_o - kappa mu(o) - lam [a != o]; o' = a."""

    name = "resource_selection"
    summary = "congestion over K resources; switching costs lam; Wardrop split when lam = 0"
    static_dynamics = True
    time_homogeneous = True

    K: int = param(3, "number of resources", low=1)
    c: tuple[float, ...] = param((1.0, 0.8, 0.6), "value c_o of each resource (K entries); "
                                 "default: 1.0, 0.8, 0.6, then 0.2 less each")
    kappa: float = param(1.0, "congestion cost per unit of mass on a resource", low=0)
    lam: float = param(0.02, "cost lambda of switching resource", low=0)

    _P: Array = internal()
    _switch: Array = internal()
    _value: Array = internal()

    def build(self) -> None:
        c = self.c
        if c == (1.0, 0.8, 0.6) and self.K != 3:  # default values extended to any K
            c = tuple(1.0 - 0.2 * k for k in range(self.K))
        _check_length("c", c, self.K, "K")
        K = self.K
        P = np.zeros((K, K, K))
        P[:, np.arange(K), np.arange(K)] = 1.0
        switch = self.lam * (1.0 - np.eye(K))
        self._set(n_obs=K, n_act=K, mu0=one_hot(0, K), _P=P, _switch=switch,
                  _value=np.asarray(c, dtype=float),
                  obs_labels=tuple(f"r{k}" for k in range(K)),
                  act_labels=tuple(f"to_r{k}" for k in range(K)))

    def transition(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def idle_reward(self, mu: Array, t: int) -> Array:
        return self._value - self.kappa * mu

    def reward(self, mu: Array, t: int) -> Array:
        return self.idle_reward(mu, t)[..., None] - self._switch

    def potential(self) -> Potential:
        """f(o, mu) = -kappa mu(o) for active and idle agents alike: curvature -kappa (the
        potential -kappa/2 sum_o mu(o)^2)."""
        def slope(mu: Array) -> Array:
            return np.full(mu.shape, -self.kappa)

        return Potential(curvature=slope, idle_curvature=slope)

    def lipschitz(self) -> Lipschitz:
        return Lipschitz(L_P=0.0, L_0=0.0)


@dataclass(frozen=True)
class Queueing(Game):
    """K queues (MODEL.md section 7): O = {0 out, k waiting in queue k}, A = {0 stay, k go to k}.

    Within a step an agent that starts in queue q and stays there (active with a in {0, q}, or
    idle) is served with probability p_q(mu) = s_q / (s_q + mu(q)) and returns to 0; otherwise
    it stays in q. An active agent that joins (from 0) or switches (from q != k) moves to queue k
    and is not served in that step; idle agents at 0 stay. Expected rewards of one step: staying
    in q earns R p_q(mu) - h, switching pays -h - lam, joining and staying out earn 0.
    """

    name = "queueing"
    summary = "join/switch among K queues; congestion slows service; -h per step queued"
    idle_stays = False
    time_homogeneous = True

    K: int = param(3, "number of servers (queues)", low=1)
    s: tuple[float, ...] = param((0.3, 0.2, 0.1), "service speed s_q of each queue (K entries)",
                                 low=0, low_open=True)
    h: float = param(0.1, "holding cost per step in a queue", low=0)
    R: float = param(1.0, "reward for being served", low=0)
    lam: float = param(0.05, "cost lambda of switching between queues", low=0)

    _waits: Array = internal()    # (O, A) 1 where the agent stays in its queue q >= 1
    _moves: Array = internal()    # (O, A, O) where an agent that does not wait goes
    _switches: Array = internal()  # (O, A) 1 where an agent in a queue switches to another
    _queued: Array = internal()   # (O,) 1 at queues, 0 at 'out'
    _speed: Array = internal()

    def build(self) -> None:
        _check_length("s", self.s, self.K, "K")
        O = self.K + 1
        o = np.arange(O)[:, None]
        a = np.arange(O)[None, :]
        waits = (o >= 1) & ((a == 0) | (a == o))
        dest = np.where(a == 0, o, a)  # where a mover ends up (join, switch, or stay out)
        moves = np.zeros((O, O, O))
        moves[o, a, dest] = 1.0
        moves[waits] = 0.0
        self._set(n_obs=O, n_act=O, mu0=one_hot(0, O), _waits=waits.astype(float),
                  _moves=moves, _switches=((o >= 1) & (a >= 1) & (a != o)).astype(float),
                  _queued=(np.arange(O) >= 1).astype(float),
                  _speed=np.asarray(self.s, dtype=float),
                  obs_labels=("out", *(f"queue{k}" for k in range(1, O))),
                  act_labels=("stay", *(f"join_queue{k}" for k in range(1, O))))

    def service(self, mu: Array) -> Array:
        """Service probability p (..., O) of an agent that waits at each observation; 0 at 0."""
        speed = self._speed
        served = speed / (speed + mu[..., 1:])
        return np.concatenate([np.zeros((*mu.shape[:-1], 1)), served], axis=-1)

    def _wait(self, mu: Array) -> Array:
        """Waiting: from q to 0 w.p. p_q, else stay (..., O, O); 'out' stays out."""
        p = self.service(mu)
        O = self.n_obs
        S = np.zeros((*p.shape[:-1], O, O))
        idx = np.arange(O)
        S[..., idx, idx] = 1.0 - p
        S[..., :, 0] += p
        return S

    def idle_transition(self, mu: Array, t: int) -> Array:
        return self._wait(mu)

    def compiled_dynamics(self) -> tuple[Any, Array]:
        from tmfcli.model.games.kernels import queueing

        return queueing, self._speed

    def transition(self, mu: Array, t: int) -> Array:
        wait = self._wait(mu)[..., :, None, :]                        # (..., O, 1, O)
        return self._waits[..., None] * wait + self._moves          # (..., O, A, O)

    def idle_reward(self, mu: Array, t: int) -> Array:
        return self._queued * (self.R * self.service(mu) - self.h)

    def reward(self, mu: Array, t: int) -> Array:
        waiting = self.idle_reward(mu, t)[..., :, None]               # (..., O, 1)
        return self._waits * waiting - (self.h + self.lam) * self._switches

    def lipschitz(self) -> Lipschitz:
        # |dp_q/dmu(q)| <= 1/s_q; a row moves 2|dp| in L1; |dmu(q)| <= ||mu - nu||_1 / 2
        bound = 1.0 / min(self.s)
        return Lipschitz(L_P=bound, L_0=bound)
