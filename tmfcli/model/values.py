"""One backward pass for policy evaluation and best response (MODEL.md section 3).

A representative agent is active at step t with probability alpha_t on a frozen flow:

    Q_t(o,a) = r(o,a,mu_t)  + gamma sum_o' P(o'|o,a,mu_t) V_{t+1}(o')
    W_t(o)   = r0(o,mu_t)   + gamma sum_o' P0(o'|o,mu_t)  V_{t+1}(o')
    V_t(o)   = alpha_t C_t(o) + (1 - alpha_t) W_t(o),     V_T = 0

The continuation C_t is sum_a pi_t(a|o) [Q_t(o,a) - tau log pi_t(a|o)] for a policy, and
max_a Q_t(o,a) (tau = 0) or tau logsumexp(Q_t(o,.)/tau) (tau > 0) for the best response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.model.flow import Flow
from tmfcli.model.games.base import Array


@dataclass(frozen=True)
class Values:
    """Q (T, O, A) and V (T+1, O); ``policy`` (T, O, A) is the evaluated or best-response one."""

    Q: Array
    V: Array
    policy: Array


# numpy reduces along a short last axis (the actions) slowly, up to 30x slower than a loop
# over its slices on (100, 100, 3) arrays; the solvers reduce over actions at every iteration.
_SHORT = 16


def rowsum(x: Array) -> Array:
    """sum over the last axis (..., A) -> (...)."""
    if x.shape[-1] > _SHORT:
        return np.asarray(x.sum(axis=-1))
    out = x[..., 0].copy()
    for a in range(1, x.shape[-1]):
        out += x[..., a]
    return out


def rowmax(x: Array) -> Array:
    """max over the last axis (..., A) -> (...)."""
    if x.shape[-1] > _SHORT:
        return np.asarray(x.max(axis=-1))
    out = x[..., 0].copy()
    for a in range(1, x.shape[-1]):
        np.maximum(out, x[..., a], out=out)
    return out


def softmax(x: Array) -> Array:
    """softmax over the last axis."""
    e = np.exp(x - rowmax(x)[..., None])
    return e / rowsum(e)[..., None]


def entropy_term(pi: Array) -> Array:
    """sum_a pi log pi (..., O), with 0 log 0 = 0."""
    safe = np.where(pi > 0, pi, 1.0)
    return rowsum(pi * np.log(safe))


def greedy(Q: Array) -> Array:
    """Deterministic best response: all mass on the first maximising action."""
    if Q.shape[-1] > _SHORT:
        pi = np.zeros_like(Q)
        np.put_along_axis(pi, Q.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return pi
    top = rowmax(Q)
    pi = np.empty_like(Q)
    taken = np.zeros(Q.shape[:-1], dtype=bool)
    for a in range(Q.shape[-1]):
        first = (Q[..., a] == top) & ~taken
        pi[..., a] = first
        taken |= first
    return pi


def backward(flow: Flow, gamma: float, policy: Array | None = None, tau: float = 0.0) -> Values:
    """Evaluate ``policy`` on the frozen flow, or the best response to it when None.

    A flow from the accelerated path (``flow.sparse`` set) is evaluated by the compiled loop,
    any other by the pure-numpy reference loop below.
    """
    if flow.sparse is not None:
        from tmfcli.model import compiled

        Q, V = compiled.backward(flow.sparse, flow.r, flow.r0, flow.alpha, gamma, policy, tau)
    else:
        Q, V = _backward_reference(flow, gamma, policy, tau)
    if policy is None:
        policy = softmax(Q / tau) if tau > 0 else greedy(Q)
    return Values(Q=Q, V=V, policy=policy)


def _backward_reference(flow: Flow, gamma: float, policy: Array | None,
                        tau: float) -> tuple[Array, Array]:
    """Q (T, O, A) and V (T+1, O) by one numpy matrix-vector product per step."""
    T, O, A = flow.r.shape
    Q = np.empty((T, O, A))
    V = np.zeros((T + 1, O))
    for t in range(T - 1, -1, -1):
        q = Q[t]
        np.add(flow.r[t], gamma * (flow.P[t].reshape(O * A, O) @ V[t + 1]).reshape(O, A), out=q)
        if policy is not None:
            cont = (policy[t] * q).sum(axis=-1)
            if tau > 0:
                cont = cont - tau * entropy_term(policy[t])
        elif tau > 0:
            top = q.max(axis=-1)
            cont = top + tau * np.log(np.exp((q - top[:, None]) / tau).sum(axis=-1))
        else:
            cont = q.max(axis=-1)
        a = flow.alpha[t]
        if a == 1.0:
            V[t] = cont
        else:
            W = flow.r0[t] + gamma * (flow.P0[t] @ V[t + 1])
            V[t] = a * cont + (1.0 - a) * W
    return Q, V
