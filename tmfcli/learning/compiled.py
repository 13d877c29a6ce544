"""The learning loops compiled (numba): the count critic, the sampled and exact gradients,
and mf-q's TD gradient and its policy along its own mean-field flow (the population-aware
policy's is ``simulation.chain.population_on_flow``).

Each computes what the numpy function of the same name in ``critic.py``, ``tmf_pg.py`` and
``mf_q.py`` computes (those stay as the reference; tests compare them to 1e-12), without
one numpy call per step: the loops visit only the (replica, step, observation) rows where
somebody acted, so at B = 1 a decision costs O(|A| |O|) flops in the gradient, and the critic
O(|O|^2 |A|) per step. Explicit signatures, compiled once and cached beside the module.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from numba import types

from tmfcli.model.compiled import KERNEL
from tmfcli.model.games.base import Array
from tmfcli.simulation.chain import flow_step, policy_row

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_f4 = types.float64[:, :, :, ::1]
_i1 = types.int64[::1]
_i3 = types.int64[:, :, ::1]
_i4 = types.int64[:, :, :, ::1]
_i5 = types.int64[:, :, :, :, ::1]


@nb.njit(types.void(_f4, _f3, _i5, _i4, types.boolean, _i3, _i3, _i4, types.float64, _i1,
                    types.int64, _f4, _f3, _f4, _f4), cache=True)
def critic(reward: Array, idle_reward: Array, X: Any, Y: Any, has_Y: bool, n: Any, m: Any,
           c: Any, gamma: float, index: Any, K: int, CQ: Array, S: Array, Q: Array,
           advantage: Array) -> None:  # pragma: no cover - compiled
    """The count critic of ``critic.aggregate`` (its docstring has the maths).

    Fills CQ (R, T, O, A), S (R, T, O), Q (R, T, O, A) (nan where c = 0) and the advantage
    (R, T, O, A) (0 where c = 0). With K > 0 and R > 1 each advantage is centred by the mean
    advantage per decision at (k(t), o) over the other R - 1 rollouts.
    """
    R, T, O, A = c.shape
    V = np.zeros(O)
    nxt = np.zeros(O)
    for r in range(R):
        V[:] = 0.0
        for t in range(T - 1, -1, -1):
            for o in range(O):
                total = 0.0
                for a in range(A):
                    s = 0.0
                    if c[r, t, o, a] > 0:
                        for q in range(O):
                            x = X[r, t, o, a, q]
                            if x != 0:
                                s += x * V[q]
                    v = reward[r, t, o, a] + gamma * s
                    CQ[r, t, o, a] = v
                    total += v
                idle = n[r, t, o] - m[r, t, o]
                if has_Y:
                    s = 0.0
                    for q in range(O):
                        y = Y[r, t, o, q]
                        if y != 0:
                            s += y * V[q]
                    rest = idle_reward[r, t, o] + gamma * s
                else:
                    rest = idle_reward[r, t, o] + gamma * idle * V[o]
                S[r, t, o] = total + rest
            for o in range(O):
                nxt[o] = S[r, t, o] / n[r, t, o] if n[r, t, o] > 0 else 0.0
            V[:] = nxt
    for r in range(R):
        for t in range(T):
            for o in range(O):
                k = n[r, t, o]
                for a in range(A):
                    if c[r, t, o, a] > 0:
                        q = CQ[r, t, o, a] / c[r, t, o, a]
                        Q[r, t, o, a] = q
                        others = (S[r, t, o] - q) / (k - 1) if k > 1 else 0.0
                        advantage[r, t, o, a] = q - others
                    else:
                        Q[r, t, o, a] = np.nan
                        advantage[r, t, o, a] = 0.0
    if K == 0 or R < 2:
        return
    total_k = np.zeros((R, K, O))
    count_k = np.zeros((R, K, O))
    for r in range(R):
        for t in range(T):
            k = index[t]
            for o in range(O):
                for a in range(A):
                    if c[r, t, o, a] > 0:
                        total_k[r, k, o] += c[r, t, o, a] * advantage[r, t, o, a]
                        count_k[r, k, o] += c[r, t, o, a]
    all_total = total_k.sum(axis=0)
    all_count = count_k.sum(axis=0)
    for r in range(R):
        for t in range(T):
            k = index[t]
            for o in range(O):
                rest_count = all_count[k, o] - count_k[r, k, o]
                if rest_count <= 0:
                    continue
                mean = (all_total[k, o] - total_k[r, k, o]) / rest_count
                for a in range(A):
                    if c[r, t, o, a] > 0:
                        advantage[r, t, o, a] -= mean


@nb.njit(types.void(_f3, _f3, _i1, _f3, _i4, _f4, _f4, _i3, types.float64, types.float64,
                    _f3, _f3), cache=True)
def sampled_gradient(theta: Array, W3: Array, index: Any, mu: Array, c: Any, pi_b: Array,
                     advantage: Array, m: Any, scale: float, beta: float, d_theta: Array,
                     d_W: Array) -> None:  # pragma: no cover - compiled
    """``tmf_pg.sampled_gradient`` on the rows where somebody acted (m > 0): per (r, t, o),

        g(o, .) = sum_a u_a (e_a - pi(.|o, mu_t)),  u_a = scale c(o, a) rho(o, a) A(o, a),
        rho = pi / pi_behaviour (1 where pi_behaviour = 0),

    plus beta times the entropy gradient with weight scale m(o); accumulated into
    d_theta[k(t), o] and d_W[o] (+= g mu_t^T). mu (R, T', O), T' >= T; outputs zeroed here.
    """
    R, T, O, A = c.shape
    W = W3.reshape(O * A, O)
    d_theta[:] = 0.0
    d_W[:] = 0.0
    z = np.empty(A)
    pi = np.empty(A)
    g = np.empty(A)
    for r in range(R):
        for t in range(T):
            k = index[t]
            for o in range(O):
                if m[r, t, o] == 0:
                    continue
                policy_row(theta, W, mu[r, t], index, t, o, z, pi)
                total = 0.0
                for a in range(A):
                    u = 0.0
                    if c[r, t, o, a] > 0:
                        b = pi_b[r, t, o, a]
                        rho = pi[a] / b if b > 0 else 1.0
                        u = scale * c[r, t, o, a] * rho * advantage[r, t, o, a]
                    g[a] = u
                    total += u
                for a in range(A):
                    g[a] = g[a] - pi[a] * total
                if beta > 0:
                    H = 0.0
                    for a in range(A):
                        lp = np.log(max(pi[a], 1e-300))
                        H -= pi[a] * lp
                    w = scale * m[r, t, o]
                    for a in range(A):
                        lp = np.log(max(pi[a], 1e-300))
                        g[a] += beta * w * (-pi[a] * (lp + H))
                for a in range(A):
                    d_theta[k, o, a] += g[a]
                    for j in range(O):
                        d_W[o, a, j] += g[a] * mu[r, t, j]


@nb.njit(types.void(_f3, _f3, _i1, _f2, _f1, types.float64, _f3, _f2, _f2, _f2,
                    types.float64, _f3, _f3), cache=True)
def exact_gradient(theta: Array, W3: Array, index: Any, mu: Array, alpha: Array, gamma: float,
                   r: Array, r0: Array, Pv: Array, P0v: Array, beta: float, d_theta: Array,
                   d_W: Array) -> None:  # pragma: no cover - compiled
    """``tmf_pg.exact_gradient`` in one backward pass over the frozen flow mu (T+1, O):

        pi_t = softmax(theta[k(t)] + W mu_t),  Q_t = r_t + gamma P_t V_{t+1},
        V_t = alpha_t sum_a pi_t Q_t + (1 - alpha_t)(r0_t + gamma P0_t V_{t+1}),
        g_t(o, a) = mu_t(o) alpha_t pi_t(a|o) (Q_t(o, a) - sum_b pi_t(b|o) Q_t(o, b)),

    plus beta times the entropy gradient with weight mu_t(o) alpha_t, accumulated into
    d_theta[k(t)] and d_W (+= g mu_t^T). Pv (Tv, O*A*O) and P0v (Tv, O*O), Tv = 1 (static,
    every step) or T. Outputs zeroed here.
    """
    T, O, A = r.shape
    W = W3.reshape(O * A, O)
    d_theta[:] = 0.0
    d_W[:] = 0.0
    V = np.zeros(O)
    Vt = np.zeros(O)
    z = np.empty(A)
    pi = np.empty(A)
    q = np.empty(A)
    for t in range(T - 1, -1, -1):
        tv = t if Pv.shape[0] > 1 else 0
        k = index[t]
        a_t = alpha[t]
        for o in range(O):
            policy_row(theta, W, mu[t], index, t, o, z, pi)
            mean = 0.0
            for a in range(A):
                s = 0.0
                base = (o * A + a) * O
                for j in range(O):
                    s += Pv[tv, base + j] * V[j]
                q[a] = r[t, o, a] + gamma * s
                mean += pi[a] * q[a]
            if a_t == 1.0:
                Vt[o] = mean
            else:
                s0 = 0.0
                for j in range(O):
                    s0 += P0v[tv, o * O + j] * V[j]
                Vt[o] = a_t * mean + (1.0 - a_t) * (r0[t, o] + gamma * s0)
            w = mu[t, o] * a_t
            if w == 0.0 and beta == 0.0:
                continue
            H = 0.0
            if beta > 0:
                for a in range(A):
                    H -= pi[a] * np.log(max(pi[a], 1e-300))
            for a in range(A):
                g = w * pi[a] * (q[a] - mean)
                if beta > 0:
                    g += beta * w * (-pi[a] * (np.log(max(pi[a], 1e-300)) + H))
                d_theta[k, o, a] += g
                for j in range(O):
                    d_W[o, a, j] += g * mu[t, j]
        V[:] = Vt


@nb.njit(types.void(_f3, _f3, _i1, _f1, _f1, KERNEL, _f1, types.boolean, _f1, _f1, _f3),
         cache=True)
def mean_action_on_flow(theta: Array, W3: Array, index: Any, alpha: Array, mu0: Array,
                        kernel: Any, kparams: Array, dynamic: bool, P_static: Array,
                        P0_static: Array, out: Array) -> None:  # pragma: no cover - compiled
    """mf-q's policy on its own mean-field flow (``MeanFieldQ.on_flow``): out (T, O, A) with
    pi_t(. | o) = softmax(theta[k(t), o] + W[o] a_bar_{t-1}), where the mean action is
    deterministic on the flow, a_bar_t = (alpha_t sum_o mu_t(o) pi_t(. | o), 1 - alpha_t)
    (a_bar_{-1} = the no-op), and mu_{t+1} = Phi_t(mu_t). theta (K, O, A), W (O, A, A + 1)."""
    T, O, A = out.shape
    W = W3.reshape(O * A, A + 1)
    P = P_static.copy()
    P0 = P0_static.copy()
    mu = mu0.copy()
    nxt = np.empty(O)
    prev = np.zeros(A + 1)
    prev[A] = 1.0
    z = np.empty(A)
    row = np.empty(A)
    for t in range(T):
        if dynamic:
            kernel(mu, t, kparams, P, P0)
        a_t = alpha[t]
        for o in range(O):
            policy_row(theta, W, prev, index, t, o, z, row)
            for b in range(A):
                out[t, o, b] = row[b]
        for b in range(A + 1):
            prev[b] = 0.0
        for o in range(O):
            w = mu[o]
            if w == 0.0:
                continue
            for b in range(A):
                prev[b] += a_t * w * out[t, o, b]
        prev[A] = 1.0 - a_t
        flow_step(mu, out[t], a_t, P, P0, nxt)
        mu[:] = nxt


@nb.njit(types.void(_f3, _f3, _i1, _f3, _f1, types.float64, types.float64, _f4, _f3, _i5,
                    _i4, types.boolean, _i3, _i3, _i4, types.int64, _f3, _f3), cache=True)
def td_gradient(q: Array, U: Array, index: Any, a_bar: Array, alpha: Array, gamma: float,
                factor: float, reward: Array, idle_reward: Array, X: Any, Y: Any,
                has_Y: bool, n: Any, m: Any, c: Any, N: int, d_q: Array,
                d_U: Array) -> None:  # pragma: no cover - compiled
    """``MeanFieldQ.td_gradient`` (its module docstring has the maths) in one pass: per
    (r, t), Q(t, o, b, a_bar_t) and the next step's values v_{t+1}(o') at the same a_bar_t,
    the TD targets of the agents at (t, o, b) (b = A: the idle ones), and the semi-gradient
    delta = (count y - count Q) / (N R) accumulated into d_q[k(t)] and d_U (+= delta a_bar).
    ``factor`` = scale / temperature of the Boltzmann policy. Outputs zeroed here."""
    R, T, O, A = c.shape
    L = A + 1
    d_q[:] = 0.0
    d_U[:] = 0.0
    v = np.empty(O)
    Qn = np.empty(L)
    e = np.empty(A)
    for r in range(R):
        for t in range(T):
            k = index[t]
            k_next = index[t + 1] if t + 1 < T else index[T - 1]
            a_next = alpha[t + 1] if t + 1 < T else 0.0
            for o in range(O):
                if t == T - 1:
                    v[o] = 0.0
                    continue
                for b in range(L):
                    s = q[k_next, o, b]
                    for j in range(L):
                        s += U[o, b, j] * a_bar[r, t, j]
                    Qn[b] = s
                top = -np.inf
                for b in range(A):
                    e[b] = factor * Qn[b]
                    if e[b] > top:
                        top = e[b]
                total = 0.0
                for b in range(A):
                    e[b] = np.exp(e[b] - top)
                    total += e[b]
                mean = 0.0
                for b in range(A):
                    mean += e[b] / total * Qn[b]
                v[o] = a_next * mean + (1.0 - a_next) * Qn[A]
            for o in range(O):
                idle = n[r, t, o] - m[r, t, o]
                for b in range(L):
                    s = q[k, o, b]
                    for j in range(L):
                        s += U[o, b, j] * a_bar[r, t, j]
                    if b < A:
                        count = c[r, t, o, b]
                        y = 0.0
                        if count > 0:
                            for p in range(O):
                                y += X[r, t, o, b, p] * v[p]
                        target = reward[r, t, o, b] + gamma * y
                    else:
                        count = idle
                        if has_Y:
                            y = 0.0
                            for p in range(O):
                                y += Y[r, t, o, p] * v[p]
                        else:
                            y = idle * v[o]
                        target = idle_reward[r, t, o] + gamma * y
                    delta = (target - count * s) / (N * R)
                    d_q[k, o, b] += delta
                    for j in range(L):
                        d_U[o, b, j] += delta * a_bar[r, t, j]
