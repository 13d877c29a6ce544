"""The aggregated critic: the mean return-to-go of the agents at (t, o, a), from counts only.

Let G^i_t be agent i's discounted return from step t on. For one rollout define, backwards
from S_T = 0 (all arrays per replica):

    V_{t+1}(o')  = S_{t+1}(o') / n_{t+1}(o')                     (0 where nobody is)
    cQ_t(o, a)   = reward_t(o, a) + gamma sum_o' X_t(o, a, o') V_{t+1}(o')
    idle_t(o)    = idle_reward_t(o) + gamma sum_o' Y_t(o, o') V_{t+1}(o')
    S_t(o)       = sum_a cQ_t(o, a) + idle_t(o),     Q_t(o, a) = cQ_t(o, a) / c_t(o, a)

S_t(o) is the total, and V_t(o) the mean, of G^i_t over the n_t(o) agents at o; Q_t(o, a) the
mean over the c_t(o, a) active agents at (o, a). Why: given the path of counts (n, m, c, X, Y),
which agent went where is a uniformly random labelling (agents are exchangeable and draw
independently given the counts), so the agents that land at o' at t+1 have, in conditional
expectation, the mean future return of all agents at o'. Hence Q_t(o, a) =
E[mean of G^i_t over the agents at (o, a) | counts], the Rao-Blackwellisation of the returns of
individually followed agents: no agent is followed, and nothing depends on N but the counts.

Advantage of an active agent at (o, a): Q_t(o, a) - b_t(o, a), with the leave-one-out baseline

    b_t(o, a) = (S_t(o) - Q_t(o, a)) / (n_t(o) - 1)   (0 when n_t(o) = 1),

the mean return-to-go of the *other* agents at o, active or idle (at B = 1 the idle ones, at
B = N the policy's average). It depends on the agent's own action only through that action's
effect on mu_hat (one agent of N), so the bias it adds to the gradient is O(1/N).

Centring across rollouts. When few agents act (B = 1) the other agents at o are mostly idle and
the advantage above is acting-minus-idling, whose mean over actions is not 0; that mean only adds
noise. With ``index`` (k(t), (T,)) and R >= 2 rollouts, each advantage is further centred by the
mean advantage per decision at (k, o) over the *other* R - 1 rollouts, which are independent of
this one, so the centring adds no bias.

``aggregate`` runs the compiled loop (``tmfcli.learning.compiled.critic``);
``aggregate_reference`` is the numpy form of the same sums, kept for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.learning.rollouts import Batch
from tmfcli.model.games.base import Array


@dataclass(frozen=True)
class Critic:
    """Q (R, T, O, A) (nan where c = 0), S (R, T, O), advantage (R, T, O, A) (0 where c = 0)."""

    Q: Array
    S: Array
    advantage: Array


def aggregate(batch: Batch, index: np.ndarray | None = None) -> Critic:
    """The aggregated critic of one batch of rollouts (module docstring); ``index`` k(t) (T,)
    turns on the leave-one-rollout-out centring per (k, o). Compiled."""
    from tmfcli.learning import compiled

    R, T, O, A = batch.c.shape
    CQ = np.empty((R, T, O, A))
    S = np.empty((R, T, O))
    Q = np.empty((R, T, O, A))
    advantage = np.empty((R, T, O, A))
    Y = batch.Y if batch.Y is not None else np.zeros((1, 1, 1, 1), dtype=np.int64)
    K = 0 if index is None else int(index.max()) + 1
    idx = np.zeros(1, dtype=np.int64) if index is None else \
        np.ascontiguousarray(index, dtype=np.int64)
    compiled.critic(np.ascontiguousarray(batch.reward, dtype=np.float64),
                    np.ascontiguousarray(batch.idle_reward, dtype=np.float64),
                    np.ascontiguousarray(batch.X), np.ascontiguousarray(Y), batch.Y is not None,
                    np.ascontiguousarray(batch.n), np.ascontiguousarray(batch.m),
                    np.ascontiguousarray(batch.c), float(batch.gamma), idx, K, CQ, S, Q,
                    advantage)
    return Critic(Q=Q, S=S, advantage=advantage)


def aggregate_reference(batch: Batch, index: np.ndarray | None = None) -> Critic:
    """``aggregate`` in numpy (one matrix product per step): the reference."""
    R, T, O, A = batch.c.shape
    gamma = batch.gamma
    CQ = np.empty((R, T, O, A))                 # totals over the agents at (t, o, a)
    S = np.empty((R, T, O))
    idle = batch.n[:, :T] - batch.m
    n = batch.n[:, :T]
    inv_n = np.divide(1.0, n, out=np.zeros((R, T, O)), where=n > 0)
    X = batch.X.reshape(R, T, O * A, O)
    V_next = np.zeros((R, O, 1))
    for t in range(T - 1, -1, -1):
        cQ = batch.reward[:, t] + gamma * np.matmul(X[:, t], V_next).reshape(R, O, A)
        if batch.Y is None:
            rest = batch.idle_reward[:, t] + gamma * idle[:, t] * V_next[..., 0]
        else:
            rest = batch.idle_reward[:, t] + gamma * np.matmul(batch.Y[:, t], V_next)[..., 0]
        CQ[:, t] = cQ
        S[:, t] = cQ.sum(axis=-1) + rest
        V_next = (S[:, t] * inv_n[:, t])[..., None]
    Q = np.divide(CQ, batch.c, out=np.full((R, T, O, A), np.nan), where=batch.c > 0)
    n4 = n[..., None]
    others = np.where(n4 > 1, (S[..., None] - np.nan_to_num(Q)) / np.maximum(n4 - 1, 1), 0.0)
    advantage = np.where(batch.c > 0, np.nan_to_num(Q) - others, 0.0)
    if index is not None and R > 1:
        K = int(index.max()) + 1
        total = np.zeros((R, K, O))
        count = np.zeros((R, K, O))
        for r in range(R):  # sums over the steps of each time row k
            np.add.at(total[r], index, (batch.c[r] * advantage[r]).sum(axis=-1))
            np.add.at(count[r], index, batch.c[r].sum(axis=-1))
        rest_total, rest_count = total.sum(axis=0) - total, count.sum(axis=0) - count
        mean = np.divide(rest_total, rest_count, out=np.zeros_like(rest_total),
                         where=rest_count > 0)                            # (R, K, O)
        advantage = np.where(batch.c > 0, advantage - mean[:, index, :, None], 0.0)
    return Critic(Q=Q, S=S, advantage=advantage)
