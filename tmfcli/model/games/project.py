"""The project's own games: resource selection and queueing.

The shipped ``resource_selection`` and ``queueing`` are timed games (MODEL.md section 9): a
decision is instantaneous and time runs per round for every agent, whatever B is, so the game
is the same at every B and comparisons across B measure asynchrony only. Their per-step forms
(MODEL.md section 7), ``resource_selection_per_step`` and ``queueing_per_step``, are kept as
the discrete-time games in which one step is one unit of time for everyone: the classical
setting of the literature at B = N, and the case study of how a per-step game changes with B in
rounds (``experiments/queue-rounds.yaml``).
"""

from __future__ import annotations

import math
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
from tmfcli.model.games.timed import TimedGame, TimedPotential, discounted_time


def _check_length(name: str, values: tuple[float, ...], size: int, what: str) -> None:
    if len(values) != size:
        raise ParamError(name, f"has {len(values)} entries but {what} is {size}",
                         f"give exactly {size} values, one per {name[:-1] or name}")


@dataclass(frozen=True)
class ResourceSelectionPerStep(Game):
    """K resources with congestion: r(o,a,mu) = c_o - kappa mu(o) - lam [a != o]; o' = a."""

    name = "resource_selection_per_step"
    summary = "resource selection on the step clock: idle agents are paid every step"
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
        self._set(**_resource_arrays(self.K, self.c, self.lam))

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
class QueueingPerStep(Game):
    """K queues (MODEL.md section 7): O = {0 out, k waiting in queue k}, A = {0 stay, k go to k}.

    Within a step an agent that starts in queue q and stays there (active with a in {0, q}, or
    idle) is served with probability p_q(mu) = s_q / (s_q + mu(q)) and returns to 0; otherwise
    it stays in q. An active agent that joins (from 0) or switches (from q != k) moves to queue k
    and is not served in that step; idle agents at 0 stay. Expected rewards of one step: staying
    in q earns R p_q(mu) - h, switching pays -h - lam, joining and staying out earn 0.
    """

    name = "queueing_per_step"
    summary = "queueing on the step clock: idle agents are served every step"
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


def _resource_arrays(K: int, c: tuple[float, ...], lam: float) -> dict[str, Any]:
    """The arrays shared by both forms of resource selection: P (K, K, K) moves to a,
    the switching cost lam [a != o] (K, K), the values c_o (K,)."""
    if c == (1.0, 0.8, 0.6) and K != 3:  # default values extended to any K
        c = tuple(1.0 - 0.2 * k for k in range(K))
    _check_length("c", c, K, "K")
    P = np.zeros((K, K, K))
    P[:, np.arange(K), np.arange(K)] = 1.0
    return {"n_obs": K, "n_act": K, "mu0": one_hot(0, K), "_P": P,
            "_switch": lam * (1.0 - np.eye(K)), "_value": np.asarray(c, dtype=float),
            "obs_labels": tuple(f"r{k}" for k in range(K)),
            "act_labels": tuple(f"to_r{k}" for k in range(K))}


@dataclass(frozen=True)
class ResourceSelection(TimedGame):
    """K resources with congestion, timed (MODEL.md section 9): a decision moves the agent to
    the resource a (x = a) and costs lam when it switches; every agent earns the flow
    c_o - kappa mu(o) per round at its resource (G = 0: time moves nobody)."""

    name = "resource_selection"
    summary = "congestion over K resources, paid per round; switching costs lam"
    static_decisions = True
    time_moves = False
    period = 2

    K: int = param(3, "number of resources", low=1)
    c: tuple[float, ...] = param((1.0, 0.8, 0.6), "value c_o per round of each resource "
                                 "(K entries); default: 1.0, 0.8, 0.6, then 0.2 less each")
    kappa: float = param(1.0, "congestion cost per round per unit of mass on a resource", low=0)
    lam: float = param(0.02, "cost lambda of switching resource (paid at the decision)", low=0)

    _P: Array = internal()
    _switch: Array = internal()
    _value: Array = internal()

    def build(self) -> None:
        self._set(**_resource_arrays(self.K, self.c, self.lam))

    def decision(self, mu: Array, t: int) -> Array:
        return static(self._P, mu)

    def decision_reward(self, mu: Array, t: int) -> Array:
        return static(-self._switch, mu)

    def generator(self, mu: Array) -> Array:
        return np.zeros((*mu.shape, mu.shape[-1]))

    def flow_reward(self, mu: Array) -> Array:
        return self._value - self.kappa * mu

    def potential(self) -> Potential:
        """Decisions do not depend on mu; a time step pays the flow -kappa mu(o) over the
        stage, credited as F / gamma^(dt/2): curvature -kappa int_0^dt gamma^s ds /
        gamma^(dt/2)."""
        slope = -self.kappa * discounted_time(self.dt, self.gamma) / self.step_discount

        def zero(mu: Array) -> Array:
            return np.zeros(mu.shape)

        return TimedPotential(curvature=zero, idle_curvature=zero,
                              time_idle_curvature=lambda mu: np.full(mu.shape, slope))

    def lipschitz(self) -> Lipschitz:
        return Lipschitz(L_P=0.0, L_0=0.0)


@dataclass(frozen=True)
class Queueing(TimedGame):
    """K queues, timed (MODEL.md section 9): O = {0 out, k in queue k}, A = {0 stay, k go to k}.

    A decision moves the agent at once: from 0, a = k joins queue k; from q, a = k != q switches
    to k and costs lam; a = 0 or a = q stays. Over time an agent in queue q is served at rate
    g_q(mu) = s_q / (s_q + mu(q)) per round and returns to 0, and earns the flow
    R g_q(mu) - h per round while it waits. Joiners count in mu^+(q) before anyone is served.
    """

    name = "queueing"
    summary = "join/switch among K queues; service at rate s/(s + mu) per round; -h per round"
    static_decisions = True
    period = 2

    K: int = param(3, "number of servers (queues)", low=1)
    s: tuple[float, ...] = param((0.3, 0.2, 0.1), "service capacity s_q of each queue per round "
                                 "(K entries)", low=0, low_open=True)
    h: float = param(0.1, "holding cost per round in a queue", low=0)
    R: float = param(1.0, "reward for being served", low=0)
    lam: float = param(0.05, "cost lambda of switching between queues (at the decision)", low=0)

    _D: Array = internal()         # (O, A, O): where a decision moves the agent
    _switches: Array = internal()  # (O, A): 1 where an agent in a queue switches to another
    _speed: Array = internal()

    def build(self) -> None:
        _check_length("s", self.s, self.K, "K")
        O = self.K + 1
        o = np.arange(O)[:, None]
        a = np.arange(O)[None, :]
        dest = np.where(a == 0, o, a)  # stay (a = 0), join, switch, or stay in q (a = q)
        D = np.zeros((O, O, O))
        D[o, a, dest] = 1.0
        self._set(n_obs=O, n_act=O, mu0=one_hot(0, O), _D=D,
                  _switches=((o >= 1) & (a >= 1) & (a != o)).astype(float),
                  _speed=np.asarray(self.s, dtype=float),
                  obs_labels=("out", *(f"queue{k}" for k in range(1, O))),
                  act_labels=("stay", *(f"join_queue{k}" for k in range(1, O))))

    def rates(self, mu: Array) -> Array:
        """Service rates g (..., O) per round at each observation; 0 at 'out'."""
        served = self._speed / (self._speed + mu[..., 1:])
        return np.concatenate([np.zeros((*mu.shape[:-1], 1)), served], axis=-1)

    def decision(self, mu: Array, t: int) -> Array:
        return static(self._D, mu)

    def decision_reward(self, mu: Array, t: int) -> Array:
        return static(-self.lam * self._switches, mu)

    def generator(self, mu: Array) -> Array:
        g = self.rates(mu)
        O = self.n_obs
        G = np.zeros((*g.shape, O))
        idx = np.arange(O)
        G[..., idx, idx] = -g
        G[..., :, 0] += g
        return G

    def flow_reward(self, mu: Array) -> Array:
        g = self.rates(mu)
        return np.where(np.arange(self.n_obs) >= 1, self.R * g - self.h, 0.0)

    def time_stage(self, mu: Array) -> tuple[Array, Array]:
        """Closed form: a waiting agent is still in q after dt w.p. exp(-g dt), else out, so
        E(q, q) = exp(-g dt), E(q, 0) = 1 - exp(-g dt), and
        F(q) = f(q) int_0^dt gamma^s exp(-g s) ds = f(q) (1 - exp(-(g + l) dt)) / (g + l),
        l = -log gamma (g + l > 0 in a queue; F(0) = 0)."""
        g = self.rates(mu)
        dt, rate = self.dt, -math.log(self.gamma)
        stay = np.exp(-g * dt)
        O = self.n_obs
        E = np.zeros((*g.shape, O))
        idx = np.arange(O)
        E[..., idx, idx] = stay
        E[..., :, 0] += 1.0 - stay
        total = g + rate
        weight = np.where(total > 0, -np.expm1(-total * dt) / np.where(total > 0, total, 1.0),
                          dt)
        return E, self.flow_reward(mu) * weight

    def compiled_dynamics(self) -> tuple[Any, Array]:
        from tmfcli.model.games.kernels import timed_queueing  # lazy: numba at first use

        return timed_queueing, np.concatenate([[self.dt], self._speed])

    def lipschitz(self) -> Lipschitz:
        # |d exp(-g dt)| <= dt |dg|, |dg_q / dmu(q)| <= 1 / s_q; a row of E moves 2 dt |dg| in
        # L1 and |dmu(q)| <= ||mu - nu||_1 / 2; D does not depend on mu
        return Lipschitz(L_P=0.0, L_0=self.dt / min(self.s))
