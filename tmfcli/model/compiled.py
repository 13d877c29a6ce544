"""The accelerated evaluation: the time loops of the flow and of the backward pass, compiled.

The pure-numpy functions of ``flow.py`` and ``values.py`` are the reference; these loops compute
the same quantities (tests compare them to 1e-12) without one Python call per step.

Kernels are stored as rows in compressed sparse row (CSR) form: P (O, A, O) as O*A rows over
o', P0 (O, O) as O rows, each with ``indptr`` (rows + 1,), ``indices`` (nnz,) and ``values``
(Tv, nnz), where Tv = 1 when the dynamics are static (one kernel for every step) and Tv = T when
they depend on mu (one kernel per step, written by the game's compiled kernel during the
forward pass, on the full O x O pattern). A sparse static kernel costs 2 nnz flops per step and
pass: beach_bar with n positions has 9n non-zeros instead of 3n^2 entries.

Every function has an explicit signature, so numba compiles it once, when this module is first
imported, and caches the machine code beside the module (``cache=True``); a game's compiled
kernel is passed as a first-class function (``KERNEL``), so one compiled loop serves every game.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numba import types
from numpy.typing import NDArray

from tmfcli.model.games.base import Array, Game

Ints = NDArray[np.int64]

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i1 = types.int64[::1]

# kernel(mu (O,), t, params (k,), P (O*A*O,) out, P0 (O*O,) out): the dense P and P0 at
# (mu, t); most games ignore t (a timed game reads its stage from it)
KERNEL_SIGNATURE = types.void(_f1, types.int64, _f1, _f1, _f1)
KERNEL = types.FunctionType(KERNEL_SIGNATURE)

POLICY, BEST = 0, 1  # modes of the backward pass


@nb.njit(KERNEL_SIGNATURE, cache=True)
def no_kernel(mu: Array, t: int, params: Array, P: Array, P0: Array) -> None:  # pragma: no cover
    """Placeholder passed for static dynamics (the kernel is never called)."""


@nb.njit(types.void(KERNEL, _f1, types.boolean, _f3, _f1, _i1, _i1, _f2, _i1, _i1, _f2, _f2),
         cache=True)
def flow_loop(kernel: Any, params: Array, dynamic: bool, pi: Array, alpha: Array,
              indptr: Ints, indices: Ints, Pv: Array, indptr0: Ints, indices0: Ints,
              P0v: Array, mu: Array) -> None:  # pragma: no cover - compiled
    """mu_{t+1} = sum_o mu_t(o) [alpha_t sum_a pi_t(a|o) P(.|o,a) + (1 - alpha_t) P0(.|o)].

    ``mu`` (T+1, O) arrives with mu[0] set. When ``dynamic``, ``kernel`` writes the kernels at
    mu_t into Pv[t] and P0v[t] before the step; otherwise row 0 of Pv and P0v serves every step.
    """
    T, O, A = pi.shape
    for t in range(T):
        tv = 0
        if dynamic:
            kernel(mu[t], t, params, Pv[t], P0v[t])
            tv = t
        a = alpha[t]
        nxt = mu[t + 1]
        nxt[:] = 0.0
        for o in range(O):
            m = mu[t, o]
            if m == 0.0:
                continue
            for act in range(A):
                w = a * m * pi[t, o, act]
                row = o * A + act
                for k in range(indptr[row], indptr[row + 1]):
                    nxt[indices[k]] += w * Pv[tv, k]
            if a != 1.0:
                w0 = (1.0 - a) * m
                for k in range(indptr0[o], indptr0[o + 1]):
                    nxt[indices0[k]] += w0 * P0v[tv, k]


@nb.njit(types.void(_f3, _f2, _f1, types.float64, _i1, _i1, _f2, _i1, _i1, _f2, _f3,
                    types.int64, types.float64, _f3, _f2), cache=True)
def backward_loop(r: Array, r0: Array, alpha: Array, gamma: float, indptr: Ints, indices: Ints,
                  Pv: Array, indptr0: Ints, indices0: Ints, P0v: Array, policy: Array,
                  mode: int, tau: float, Q: Array, V: Array) -> None:  # pragma: no cover
    """Q_t = r_t + gamma P V_{t+1}; V_t = alpha_t C_t + (1 - alpha_t)(r0_t + gamma P0 V_{t+1}).

    C_t(o) is sum_a pi (Q - tau log pi) (mode POLICY), max_a Q (mode BEST, tau = 0) or
    tau logsumexp(Q / tau) (mode BEST, tau > 0). Q (T, O, A) and V (T+1, O) are filled.
    """
    T, O, A = r.shape
    V[T, :] = 0.0
    for t in range(T - 1, -1, -1):
        tv = t if Pv.shape[0] > 1 else 0
        a = alpha[t]
        for o in range(O):
            for act in range(A):
                row = o * A + act
                s = 0.0
                for k in range(indptr[row], indptr[row + 1]):
                    s += Pv[tv, k] * V[t + 1, indices[k]]
                Q[t, o, act] = r[t, o, act] + gamma * s
            if mode == POLICY:
                cont = 0.0
                for act in range(A):
                    p = policy[t, o, act]
                    cont += p * Q[t, o, act]
                    if tau > 0.0 and p > 0.0:
                        cont -= tau * p * np.log(p)
            else:
                top = Q[t, o, 0]
                for act in range(1, A):
                    top = max(top, Q[t, o, act])
                if tau > 0.0:
                    z = 0.0
                    for act in range(A):
                        z += np.exp((Q[t, o, act] - top) / tau)
                    cont = top + tau * np.log(z)
                else:
                    cont = top
            if a == 1.0:
                V[t, o] = cont
            else:
                s0 = 0.0
                for k in range(indptr0[o], indptr0[o + 1]):
                    s0 += P0v[tv, k] * V[t + 1, indices0[k]]
                V[t, o] = a * cont + (1.0 - a) * (r0[t, o] + gamma * s0)


@dataclass(frozen=True)
class SparseKernels:
    """P as O*A CSR rows and P0 as O CSR rows over o'; values (Tv, nnz), Tv = 1 or T."""

    indptr: Ints
    indices: Ints
    values: Array
    indptr0: Ints
    indices0: Ints
    values0: Array

    @property
    def nnz(self) -> tuple[int, int]:
        """Non-zeros of one step's P and P0."""
        return int(self.indices.size), int(self.indices0.size)


def _csr(rows: Array) -> tuple[Ints, Ints, Array]:
    """indptr, indices and values (1, nnz) of the non-zeros of ``rows`` (R, O), row-major."""
    nonzero = rows != 0.0
    indptr = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(nonzero)[1].astype(np.int64)
    return indptr, indices, np.ascontiguousarray(rows[nonzero][None, :], dtype=np.float64)


@functools.lru_cache(maxsize=16)
def static_kernels(game: Game) -> SparseKernels:
    """The sparse form of a game with static dynamics (computed once per game)."""
    O, A = game.n_obs, game.n_act
    P = np.asarray(game.transition(game.mu0, 0), dtype=np.float64).reshape(O * A, O)
    P0 = np.asarray(game.idle_transition(game.mu0, 0), dtype=np.float64).reshape(O, O)
    return SparseKernels(*_csr(P), *_csr(P0))


def dense_kernels(P: Array, P0: Array) -> SparseKernels:
    """The full-pattern form of per-step dense kernels P (T, O, A, O), P0 (T, O, O) (views)."""
    T, O, A, _ = P.shape
    return SparseKernels(np.arange(O * A + 1, dtype=np.int64) * O,
                         np.tile(np.arange(O, dtype=np.int64), O * A), P.reshape(T, O * A * O),
                         np.arange(O + 1, dtype=np.int64) * O,
                         np.tile(np.arange(O, dtype=np.int64), O), P0.reshape(T, O * O))


def flow(game: Game, pi: Array, alpha: Array) -> tuple[Array, SparseKernels]:
    """The flow mu (T+1, O) of pi (T, O, A) and the kernels along it.

    Requires static dynamics or a compiled kernel (``tmfcli.model.flow.accelerated``)."""
    T, O, A = pi.shape
    mu = np.empty((T + 1, O))
    mu[0] = game.mu0
    pi = _contiguous(pi)
    alpha = _contiguous(alpha)
    if game.static_dynamics:
        k = static_kernels(game)
        flow_loop(no_kernel, np.zeros(0), False, pi, alpha, k.indptr, k.indices, k.values,
                  k.indptr0, k.indices0, k.values0, mu)
        return mu, k
    compiled = game.compiled_dynamics()
    assert compiled is not None
    kernel, params = compiled
    k = dense_kernels(np.empty((T, O, A, O)), np.empty((T, O, O)))
    flow_loop(kernel, params, True, pi, alpha, k.indptr, k.indices, k.values, k.indptr0,
              k.indices0, k.values0, mu)
    return mu, k


def _contiguous(a: Array) -> Array:
    """A C-contiguous float64 array the compiled loops accept: a read-only view (e.g. a
    broadcast reward with one step, which is contiguous) is copied, since the loops' signatures
    take writeable arrays."""
    out = np.ascontiguousarray(a, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


def backward(k: SparseKernels, r: Array, r0: Array, alpha: Array, gamma: float,
             policy: Array | None, tau: float) -> tuple[Array, Array]:
    """Q (T, O, A) and V (T+1, O) of ``policy`` (or of the best response when None)."""
    T, O, A = r.shape
    Q = np.empty((T, O, A))
    V = np.empty((T + 1, O))
    mode = BEST if policy is None else POLICY
    pol = np.zeros((1, 1, 1)) if policy is None else _contiguous(policy)
    backward_loop(_contiguous(r), _contiguous(r0), _contiguous(alpha), float(gamma), k.indptr,
                  k.indices, k.values, k.indptr0, k.indices0, k.values0, pol, mode,
                  float(tau), Q, V)
    return Q, V
