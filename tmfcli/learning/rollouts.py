"""Rollouts of the N-agent system for learning: the exact count chain of MODEL.md section 4,
recording what a critic needs per (t, o, a), at a cost independent of N.

One step for R replicas (mu_hat_t = n_t / N), as in ``tmfcli.simulation.counts``:

1. active counts  m ~ MultivariateHypergeometric(n_t, B_t)  (or Bin(n_t(o), alpha_t))
2. action counts  c(o, .) ~ Multinomial(m(o), pi(. | o, mu_hat_t, a_bar_{t-1}))
3. transitions    X(o, a, .) ~ Multinomial(c(o, a), P(. | o, a, mu_hat_t)),
                  Y(o, .) ~ Multinomial(n_t(o) - m(o), P0(. | o, mu_hat_t)),
                  n_{t+1} = sum_{o,a} X(o, a, .) + sum_o Y(o, .)

Recorded (R replicas, T steps): n (R, T+1, O); m (R, T, O); c (R, T, O, A); X (R, T, O, A, O);
Y (R, T, O, O) (None when idle agents stay: then Y is diag(n - m)); the rewards the agents
received, as totals per (t, o, a) and per (t, o) for the idle ones: ``reward`` (R, T, O, A) =
c r(o, a, mu_hat_t) and ``idle_reward`` (R, T, O) = (n - m) r0(o, mu_hat_t); the behaviour
policy pi (R, T, O, A); the mean action a_bar (R, T, A + 1): the action shares of all N agents
with idle agents counted as the no-op action A (MODEL.md section 6, used by mf-q only).

Sequential path (every B_t = 1, subset activation): the one active agent is at o with
probability n_t(o) / N, then a ~ pi(. | o, mu_hat_t) and o' ~ P(. | o, a, mu_hat_t), three
categorical draws by inverse CDF from streams drawn up front (the same law, fewer operations;
it consumes randomness differently from the general path).

Nothing here follows an agent: every array is a count or a total, so memory and time are
O(R T |O|^2 |A|), whatever N is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tmfcli.errors import NumericalError, SpecError
from tmfcli.model.games.base import Array
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import active_counts, initial_counts, stochastic

# decide(t, mu_hat (R, O), a_bar_prev (R, A + 1)) -> pi (R, O, A)
Decide = Callable[[int, Array, Array], Array]


@dataclass(frozen=True)
class Batch:
    """R rollouts of the count chain (module docstring for the arrays)."""

    agents: int
    gamma: float
    n: np.ndarray
    m: np.ndarray
    c: np.ndarray
    X: np.ndarray
    Y: np.ndarray | None
    reward: Array
    idle_reward: Array
    pi: Array
    a_bar: Array

    @property
    def mu_hat(self) -> Array:
        """n / N (R, T+1, O)."""
        return self.n / self.agents

    @property
    def returns(self) -> Array:
        """Population-average discounted return per replica (R,)."""
        T = self.c.shape[1]
        total = self.reward.sum(axis=(2, 3)) + self.idle_reward.sum(axis=2)   # (R, T)
        return (total @ (self.gamma ** np.arange(T))) / self.agents

    @property
    def decisions(self) -> int:
        """Agent decisions in the batch (sum of active counts)."""
        return int(self.m.sum())


def sample(setting: Setting, decide: Decide, replicas: int, rng: np.random.Generator,
           activation: str = "subset", init: str = "iid", mean_action: bool = False) -> Batch:
    """R rollouts of the N-agent system under ``decide``, with the counts a critic needs.

    ``decide`` receives the previous mean action only with ``mean_action`` (else zeros).
    """

    if setting.agents is None or setting.batches is None:
        raise SpecError("population.agents", "missing (training needs a finite population)",
                        "add population.agents and population.batch")
    game, T, N, R = setting.game, setting.T, int(setting.agents), replicas
    O, A = game.n_obs, game.n_act
    batches = np.asarray(setting.batches, dtype=np.int64)
    n = np.empty((R, T + 1, O), dtype=np.int64)
    m = np.empty((R, T, O), dtype=np.int64)
    c = np.empty((R, T, O, A), dtype=np.int64)
    X = np.empty((R, T, O, A, O), dtype=np.int64)
    Y = None if game.idle_stays else np.zeros((R, T, O, O), dtype=np.int64)
    reward = np.empty((R, T, O, A))
    idle_reward = np.empty((R, T, O))
    pi_all = np.empty((R, T, O, A))
    n[:, 0] = initial_counts(rng, game.mu0, N, R, init)
    prev = np.zeros((R, A + 1))
    prev[:, A] = 1.0  # before the first step: everybody "idle"
    if game.static_dynamics:
        P_static = np.broadcast_to(stochastic(game.transition(game.mu0, 0)), (R, O, A, O))
        P0_static = np.broadcast_to(stochastic(game.idle_transition(game.mu0, 0)), (R, O, O))
    sequential = activation == "subset" and bool(np.all(batches == 1))
    if sequential:  # one agent acts per step: categorical draws from pre-drawn streams
        who = rng.integers(0, N, size=(T, R))
        u_act, u_next = rng.random((T, R)), rng.random((T, R))
        rows = np.arange(R)
        m[...] = 0
        c[...] = 0
        X[...] = 0
    for t in range(T):
        now = n[:, t]
        mu = now / N
        if sequential:
            o = (np.cumsum(now, axis=1) <= who[t, :, None]).sum(axis=1)
            pi = decide(t, mu, prev)
            pi_all[:, t] = pi
            a = np.minimum((np.cumsum(pi[rows, o], axis=1) <= u_act[t, :, None]).sum(axis=1),
                           A - 1)
            P = P_static if game.static_dynamics else game.transition(mu, t)
            o2 = np.minimum((np.cumsum(P[rows, o, a], axis=1) <= u_next[t, :, None]).sum(
                axis=1), O - 1)
            m[rows, t, o] = 1
            c[rows, t, o, a] = 1
            X[rows, t, o, a, o2] = 1
            r = game.reward(mu, t)
            reward[:, t] = 0.0
            reward[rows, t, o, a] = r[rows, o, a]
            idle = now - m[:, t]
            nxt = idle.copy()
            nxt[rows, o2] += 1
            if Y is not None:
                P0 = P0_static if game.static_dynamics else \
                    stochastic(game.idle_transition(mu, t))
                Yt = rng.multinomial(idle, P0)
                Y[:, t] = Yt
                nxt = nxt - idle + Yt.sum(axis=1)
            n[:, t + 1] = nxt
            idle_reward[:, t] = idle * game.idle_reward(mu, t)
            if mean_action:
                prev = np.zeros((R, A + 1))
                prev[rows, a] = 1.0 / N
                prev[:, A] = (N - 1) / N
            continue
        B = int(batches[t])
        active = active_counts(rng, now, B, N, activation)
        m[:, t] = active
        pi = decide(t, mu, prev)
        pi_all[:, t] = pi
        ct = rng.multinomial(active, stochastic(pi))
        c[:, t] = ct
        P = P_static if game.static_dynamics else stochastic(game.transition(mu, t))
        Xt = rng.multinomial(ct, P)
        X[:, t] = Xt
        nxt = Xt.sum(axis=(1, 2))
        reward[:, t] = ct * game.reward(mu, t)
        if B == N:  # nobody idle: P0 and r0 are never used
            n[:, t + 1] = nxt
            idle_reward[:, t] = 0.0
        else:
            idle = now - active
            if Y is None:
                nxt = nxt + idle
            else:
                P0 = P0_static if game.static_dynamics else \
                    stochastic(game.idle_transition(mu, t))
                Yt = rng.multinomial(idle, P0)
                Y[:, t] = Yt
                nxt = nxt + Yt.sum(axis=1)
            n[:, t + 1] = nxt
            idle_reward[:, t] = idle * game.idle_reward(mu, t)
        if mean_action:
            prev = np.concatenate([ct.sum(axis=1), (N - active.sum(axis=1))[:, None]],
                                  axis=1) / N
    if not (np.all(np.isfinite(reward)) and np.all(np.isfinite(idle_reward))):
        raise NumericalError("the sampled rewards are not finite",
                             "check the game's rewards on empirical distributions (e.g. log 0)")
    a_bar = np.concatenate([c.sum(axis=2), (N - m.sum(axis=2))[..., None]], axis=2) / N
    return Batch(agents=N, gamma=setting.gamma, n=n, m=m, c=c, X=X, Y=Y, reward=reward,
                 idle_reward=idle_reward, pi=pi_all, a_bar=a_bar)
