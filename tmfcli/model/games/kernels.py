"""Compiled kernels of the shipped games whose dynamics depend on mu (imported lazily).

Each writes the dense P(.|.,.,mu) (O*A*O,) and P0(.|.,mu) (O*O,) in C order, exactly as the
game's numpy ``transition`` and ``idle_transition`` compute them (the same floating-point
operations, so the two agree to the last bit); ``tmfcli.model.compiled`` calls them once per
step of the forward pass. Signature: ``tmfcli.model.compiled.KERNEL_SIGNATURE``.
"""

from __future__ import annotations

import math

import numba as nb

from tmfcli.model.compiled import KERNEL_SIGNATURE
from tmfcli.model.games.base import Array


@nb.njit(KERNEL_SIGNATURE, cache=True)
def queueing(mu: Array, t: int, params: Array, P: Array, P0: Array) -> None:  # pragma: no cover
    """Queueing (MODEL.md section 7), params = service speeds s (K,); O = A = K + 1.

    A waiting agent in q (a in {0, q}, or idle) is served w.p. p_q = s_q / (s_q + mu(q)) and
    goes to 0, else stays; a mover goes to its destination (a, or o when a = 0).
    """
    O = params.shape[0] + 1
    P[:] = 0.0
    P0[:] = 0.0
    P0[0] = 1.0
    for o in range(O):
        p = 0.0
        if o >= 1:
            s = params[o - 1]
            p = s / (s + mu[o])
            P0[o * O + o] = 1.0 - p
            P0[o * O] += p
        for a in range(O):
            base = (o * O + a) * O
            if o >= 1 and (a == 0 or a == o):
                P[base + o] = 1.0 - p
                P[base] += p
            else:
                P[base + (o if a == 0 else a)] = 1.0


@nb.njit(KERNEL_SIGNATURE, cache=True)
def sis(mu: Array, t: int, params: Array, P: Array, P0: Array) -> None:  # pragma: no cover
    """SIS (MODEL.md section 7), params = (infection, recovery); O = A = 2, idle agents stay."""
    infected = params[0] * mu[1]
    recovery = params[1]
    # P[o, a, o'] at index (o * 2 + a) * 2 + o'
    P[0] = 1.0 - infected
    P[1] = infected
    P[2] = 1.0
    P[3] = 0.0
    for a in range(2):
        P[(2 + a) * 2] = recovery
        P[(2 + a) * 2 + 1] = 1.0 - recovery
    P0[0] = 1.0
    P0[1] = 0.0
    P0[2] = 0.0
    P0[3] = 1.0


@nb.njit(KERNEL_SIGNATURE, cache=True)
def timed_queueing(mu: Array, t: int, params: Array, P: Array,
                   P0: Array) -> None:  # pragma: no cover - compiled
    """Timed queueing (MODEL.md section 9), params = (dt, s_1..s_K); O = A = K + 1; t is the
    per-step index. P is the decision D at every step (a time step has nobody acting); P0 is
    the identity on a decision step (t even) and E = expm(dt G(mu^+)) on a time step:
    E(q, q) = exp(-g_q dt), E(q, 0) = 1 - exp(-g_q dt), g_q = s_q / (s_q + mu(q))."""
    O = params.shape[0]
    dt = params[0]
    P[:] = 0.0
    P0[:] = 0.0
    for o in range(O):
        for a in range(O):
            P[(o * O + a) * O + (o if a == 0 else a)] = 1.0
    if t % 2 == 0:
        for o in range(O):
            P0[o * O + o] = 1.0
        return
    P0[0] = 1.0
    for q in range(1, O):
        s = params[q]
        stay = math.exp(-s / (s + mu[q]) * dt)
        P0[q * O + q] = stay
        P0[q * O] = 1.0 - stay
