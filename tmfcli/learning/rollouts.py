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

Every step is ``tmfcli.simulation.chain``'s. Sequential path (every B_t in {0, 1}, subset
activation, a policy given as data and kernels the chain can compile): the whole loop is the
compiled ``chain.sequential``: the one active agent is at o with probability n_t(o) / N, then
a ~ pi(. | o, mu_hat_t) and o' ~ P(. | o, a, mu_hat_t), three categorical draws by inverse CDF
from streams drawn up front (the same law, fewer operations; it consumes randomness differently
from the general path). ``pi`` is then filled only at the active agent's row (the only row
with c > 0). Otherwise the numpy ``chain.step`` runs once per step (``method="numpy"`` forces
it, also at B = 1, as the reference). The rewards are evaluated after the loop, on the
recorded counts, in one batched call when the game is time-homogeneous.

Nothing here follows an agent: every array is a count or a total, so memory and time are
O(R T |O|^2 |A|), whatever N is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tmfcli.errors import NumericalError, SpecError
from tmfcli.model.flow import rewards_at
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.simulation import chain
from tmfcli.simulation.counts import initial_counts

# decide(t, mu_hat (R, O), a_bar_prev (R, A + 1)) -> pi (R, O, A)
Decide = Callable[[int, Array, Array], Array]
# n, m, c, X, Y (or None), pi: the recorded chain
Recorded = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]


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

    @functools.cached_property
    def a_bar(self) -> Array:
        """The mean action (R, T, A + 1), idle agents as the no-op A (computed when asked)."""
        N = self.agents
        return np.concatenate([self.c.sum(axis=2), (N - self.m.sum(axis=2))[..., None]],
                              axis=2) / N

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


def _decide_of(policy: Policy | Decide) -> Decide:
    if isinstance(policy, (PopulationPolicy, TabularPolicy)):
        return lambda t, mu, prev: policy.probs(mu, t)
    return policy  # type: ignore[return-value]


class MeanActionDecide:
    """mf-q's Boltzmann policy as a ``Decide`` callable that the compiled chain can also read
    as data (``chain.MEAN_ACTION``): pi(. | o) = softmax_a(theta[k(t), o, a] + sum_l W[o, a, l]
    a_bar_prev(l)) over the real actions, scale and temperature folded into theta and W."""

    def __init__(self, theta: Array, W: Array, index: np.ndarray) -> None:
        self.theta, self.W, self.index = theta, W, index

    def __call__(self, t: int, mu: Array, prev: Array) -> Array:
        z = self.theta[self.index[t]] + np.einsum("oal,rl->roa", self.W, prev)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def chain_policy(self) -> chain.ChainPolicy:
        return chain.ChainPolicy(chain.MEAN_ACTION, np.zeros((1, 1, 1)),
                                 np.ascontiguousarray(self.theta, dtype=np.float64),
                                 np.ascontiguousarray(self.W, dtype=np.float64),
                                 np.ascontiguousarray(self.index, dtype=np.int64))


def compiled_path(setting: Setting, policy: Policy | Decide, activation: str,
                  mean_action: bool = False) -> bool:
    """Whether ``sample`` runs the compiled sequential chain (module docstring)."""
    batches = np.asarray(setting.batches)
    known = isinstance(policy, MeanActionDecide) if mean_action \
        else isinstance(policy, (PopulationPolicy, TabularPolicy))
    return (activation == "subset" and bool(np.all(batches <= 1)) and known
            and chain.can_compile(setting.game))


def sample(setting: Setting, policy: Policy | Decide, replicas: int, rng: np.random.Generator,
           activation: str = "subset", init: str = "iid", mean_action: bool = False,
           method: str = "auto") -> Batch:
    """R rollouts of the N-agent system under ``policy`` (a ``PopulationPolicy``, a
    ``TabularPolicy`` or a ``Decide`` callable), with the counts a critic needs.

    A callable receives the previous mean action only with ``mean_action`` (else zeros).
    ``method``: "auto" (the compiled chain where it applies) or "numpy" (the reference loop).
    """

    if setting.agents is None or setting.batches is None:
        raise SpecError("population.agents", "missing (training needs a finite population)",
                        "add population.agents and population.batch")
    if method not in ("auto", "numpy"):
        raise ValueError(f"unknown method {method!r}")
    game, T, N, R = setting.game, setting.T, int(setting.agents), replicas
    n = np.empty((R, T + 1, game.n_obs), dtype=np.int64)
    n[:, 0] = initial_counts(rng, game.mu0, N, R, init)
    if method == "auto" and compiled_path(setting, policy, activation, mean_action):
        n, m, c, X, Y, pi_all = _compiled(setting, policy, rng, n)  # type: ignore[arg-type]
    else:
        n, m, c, X, Y, pi_all = _numpy(setting, _decide_of(policy), rng, n, activation,
                                       mean_action)
    reward, idle_reward = rewards_along(setting, n, m, c)
    if not (np.all(np.isfinite(reward)) and np.all(np.isfinite(idle_reward))):
        raise NumericalError("the sampled rewards are not finite",
                             "check the game's rewards on empirical distributions (e.g. log 0)")
    return Batch(agents=N, gamma=setting.gamma, n=n, m=m, c=c, X=X, Y=Y, reward=reward,
                 idle_reward=idle_reward, pi=pi_all)


def rewards_along(setting: Setting, n: np.ndarray, m: np.ndarray,
                  c: np.ndarray) -> tuple[Array, Array]:
    """The rewards the agents received, totals per (t, o, a) and per (t, o) for the idle
    ones: c r(o, a, mu_hat_t) (R, T, O, A) and (n - m) r0(o, mu_hat_t) (R, T, O)."""
    game, T, N = setting.game, setting.T, int(setting.agents or 1)
    mu = n[:, :T] / N
    r, r0 = rewards_at(game, mu, np.arange(T))
    chain.check_rewards(game, r, r0, mu, np.arange(T))
    idle = n[:, :T] - m
    return c * r, np.where(idle > 0, idle * r0, 0.0)


def _compiled(setting: Setting, policy: Policy | MeanActionDecide, rng: np.random.Generator,
              n: np.ndarray) -> Recorded:
    """The compiled sequential chain (every B_t in {0, 1}): the same uniforms as the numpy
    loop drew (who, then the two uniforms of every step, up front), the idle agents' moves
    from ``rng`` inside the loop."""
    game, T, N = setting.game, setting.T, int(setting.agents or 1)
    R, O, A = n.shape[0], game.n_obs, game.n_act
    batches = np.ascontiguousarray(setting.batches, dtype=np.int64)
    who = rng.integers(0, N, size=(T, R))
    u_act, u_next = rng.random((T, R)), rng.random((T, R))
    m = np.zeros((R, T, O), dtype=np.int64)
    c = np.zeros((R, T, O, A), dtype=np.int64)
    X = np.zeros((R, T, O, A, O), dtype=np.int64)
    Y = None if game.idle_stays else np.zeros((R, T, O, O), dtype=np.int64)
    pi_all = np.zeros((R, T, O, A))
    actor = np.empty((R, T, 3), dtype=np.int64)
    cp = policy.chain_policy() if isinstance(policy, MeanActionDecide) \
        else chain_policy(policy, T)
    kernel, params, dynamic, P, P0 = chain.kernels_of(game)
    bad = np.full(2, -1, dtype=np.int64)  # (t, replica) of a defective kernel (chain.rows_ok)
    chain.sequential(rng, batches, who, u_act, u_next, N, cp.mode, cp.table, cp.theta, cp.W,
                     cp.index, kernel, params, dynamic, game.idle_stays, P, P0, 0, True, n, m, c,
                     X,
                     np.zeros((1, 1, 1, 1), dtype=np.int64) if Y is None else Y,
                     pi_all if cp.mode != chain.TABLE else np.zeros((1, 1, 1, 1)), actor, bad)
    chain.raise_bad_kernel(game, bad, n[bad[1], bad[0]] / N, kernel, params,
                           not game.idle_stays)
    if cp.mode == chain.TABLE:  # the behaviour policy is the table
        pi_all[...] = cp.table[None]
    return n, m, c, X, Y, pi_all


def chain_policy(policy: Policy, T: int) -> chain.ChainPolicy:
    """A tabular or population-aware policy as the compiled chain reads it."""
    return chain.ChainPolicy.of(policy, T)


def _numpy(setting: Setting, decide: Decide, rng: np.random.Generator, n: np.ndarray,
           activation: str, mean_action: bool) -> Recorded:
    """One numpy ``chain.step`` per step (any B_t; the reference). With every B_t = 1 and
    subset activation it draws like the compiled path (who and the uniforms up front)."""
    game, T, N = setting.game, setting.T, int(setting.agents or 1)
    R, O, A = n.shape[0], game.n_obs, game.n_act
    batches = np.asarray(setting.batches, dtype=np.int64)
    m = np.zeros((R, T, O), dtype=np.int64)
    c = np.zeros((R, T, O, A), dtype=np.int64)
    X = np.zeros((R, T, O, A, O), dtype=np.int64)
    Y = None if game.idle_stays else np.zeros((R, T, O, O), dtype=np.int64)
    pi_all = np.empty((R, T, O, A))
    prev = np.zeros((R, A + 1))
    prev[:, A] = 1.0  # before the first step: everybody "idle"
    if game.static_dynamics:
        P_static = np.broadcast_to(chain.stochastic(game.transition(game.mu0, 0)), (R, O, A, O))
        P0_static = np.broadcast_to(chain.stochastic(game.idle_transition(game.mu0, 0)),
                                    (R, O, O))
    sequential = activation == "subset" and bool(np.all(batches <= 1))
    if sequential:  # one agent acts per step: categorical draws from pre-drawn streams
        who = rng.integers(0, N, size=(T, R))
        u_act, u_next = rng.random((T, R)), rng.random((T, R))
        rows = np.arange(R)
    for t in range(T):
        now = n[:, t]
        mu = now / N
        B = int(batches[t])
        P0 = None
        if not game.idle_stays:
            P0 = P0_static if game.static_dynamics else chain.kernel_at(game, "P0", mu, t)
        if sequential:
            nxt = now.copy()
            if B == 1:
                o = (np.cumsum(now, axis=1) <= who[t, :, None]).sum(axis=1)
                pi = decide(t, mu, prev)
                pi_all[:, t] = pi
                a = np.minimum((np.cumsum(pi[rows, o], axis=1) <= u_act[t, :, None]).sum(
                    axis=1), A - 1)
                P = P_static if game.static_dynamics else game.transition(mu, t)
                o2 = np.minimum((np.cumsum(P[rows, o, a], axis=1) <= u_next[t, :, None]).sum(
                    axis=1), O - 1)
                m[rows, t, o] = 1
                c[rows, t, o, a] = 1
                X[rows, t, o, a, o2] = 1
                nxt[rows, o] -= 1
            else:
                pi_all[:, t] = decide(t, mu, prev)
            if Y is not None:
                assert P0 is not None
                Yt = rng.multinomial(now - m[:, t], P0)
                Y[:, t] = Yt
                nxt = Yt.sum(axis=1)
            if B == 1:
                nxt[rows, o2] += 1
            n[:, t + 1] = nxt
            if mean_action:
                prev = np.zeros((R, A + 1))
                if B == 1:
                    prev[rows, a] = 1.0 / N
                prev[:, A] = (N - B) / N
            continue
        active = chain.active_counts(rng, now, B, N, activation)
        pi = decide(t, mu, prev)
        pi_all[:, t] = pi
        P = P_static if game.static_dynamics else chain.kernel_at(game, "P", mu, t)
        out = chain.step(rng, now, active, chain.stochastic(pi), P, P0)
        m[:, t], c[:, t], X[:, t] = out.m, out.c, out.X
        if Y is not None and out.Y is not None:
            Y[:, t] = out.Y
        n[:, t + 1] = out.next
        if mean_action:
            prev = np.concatenate([out.c.sum(axis=1), (N - active.sum(axis=1))[:, None]],
                                  axis=1) / N
    return n, m, c, X, Y, pi_all
