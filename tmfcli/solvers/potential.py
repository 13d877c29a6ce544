"""Primal-dual interior point on the potential of a potential game (the ``potential`` solver).

With mu-independent dynamics, write the policy as its joint mass z_t(o,a) = mu_t(o) pi_t(a|o)
(T, O, A). The flow is linear in z,

    mu_t(o) = sum_a z_t(o,a),      mu_0 = mu0,
    mu_{t+1}(o') = sum_{o,a} z_t(o,a) K_t(o'|o,a),  K_t = alpha_t P(o'|o,a) + (1 - alpha_t) P0(o'|o)

so the feasible z form a polytope {z >= 0, A z = b} with one row per (t, o). When the game
declares a separable concave potential (``Game.potential``: r = g(o,a) + f(o, mu(o)),
r0 = g0(o) + f0(o, mu(o)), f and f0 non-increasing, f = grad F, f0 = grad F0), the function

    Phi(z) = sum_t gamma^t [ alpha_t (z_t . g + F(mu_t)) + (1 - alpha_t) (mu_t . g0 + F0(mu_t)) ]

is concave, with gradient dPhi/dz_t(o,a) = gamma^t [alpha_t r(o,a,mu_t) + (1 - alpha_t)
r0(o,mu_t)]: the rewards of MODEL.md section 3 on the frozen flow. Hence for the joint mass z'
of any policy pi', grad Phi(z) . (z' - z) = J(pi'; mu^z) - J(pi; mu^z), and its maximum over
z' is the exploitability of pi: the exploitability is the Frank-Wolfe gap of Phi, a maximiser
of Phi is an equilibrium, and exploitability >= max Phi - Phi(z).

Duality. The optimality conditions of max Phi over the polytope are

    grad Phi(z) - A^T y + s = 0,    A z = b,    z s = 0,    z, s >= 0

with multipliers y (T, O) of the flow equations and s (T, O, A). The values of the best
response give a dual point: y_t(o) = gamma^t V*_t(o) and s = gamma^t alpha_t (max_a Q*_t(o,.) -
Q*_t(o,a)) satisfy the first equation exactly, and then z . s is the exploitability
(performance difference); the best response is the dual of the frozen-flow problem.

The solver follows Mehrotra's predictor-corrector: one Newton system on these conditions with
z s = sigma m (m = z . s / count) per iteration, solved twice with one factorisation (the
predictor sigma = 0 gives sigma = (m_aff / m)^3, the corrector adds the second-order term), and
one step along it of length 0.99 of the way to the boundary of z > 0, s > 0 (capped at 1). It
starts from the uniform policy's mass, its best-response dual, and s lifted by
``start`` x (exploitability / count) / z so that the start is interior. Eliminating s, with
Q = -Hess Phi + diag(s / z) (block diagonal: diag(s / z) + w 1 1^T per (t, o), where
w = -gamma^t [alpha_t f'(o) + (1 - alpha_t) f0'(o)] >= 0, inverted in closed form as N), the
system reduces to M dy = A N h with M = A N A^T, and dz = N (h - A^T dy),
ds = (r_c - s dz) / z. In the order (t, o), M is a band matrix: the rows of step t meet those of
step t + 1 only through the kernel (bandwidth O + the kernel's reach, e.g. 102 for beach_bar
with n = 100), and within step t through K N K^T. It is assembled in band storage by a compiled
loop over (t, o) and factored by LAPACK's banded Cholesky (``scipy.linalg.cholesky_banded``):
n bw^2 flops for n = T O rows, against T O^3 for block elimination in t.

Precision: as m falls, the weights z / s of the Newton system spread over many orders of
magnitude and dz = N (h - A^T dy) is the small difference of large terms. One round of
iterative refinement of M dy = A N h is kept, and the flow residual A dz is removed by
projection (dz <- dz - N A^T M^-1 A dz, ``PROJECT`` times, with the same factor). Each step
evaluates its result (and hands that evaluation to the loop): when its exploitability
exceeds ``GUARD`` times the best one, the solver returns to the best iterate and stays there
and the loop stops ("stalled"), so the history never rises by more than ``GUARD``; with
``polish`` it continues from there with mirror-descent steps instead.

Each iterate is feasible: the policy pi = z / sum_a z is evaluated by the loop and the next step
starts from the occupation measure of that policy on its own flow (y and s carry over).
Observations no policy can reach (zero mass under the uniform policy) have no variables; their
policy stays uniform (it changes neither J nor J*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numba as nb
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from numba import types
from numpy.typing import NDArray

from tmfcli.errors import SpecError
from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.flow import mean_field_flow
from tmfcli.model.games.base import Array, Game, Potential
from tmfcli.model.params import param
from tmfcli.model.setting import Setting
from tmfcli.solvers.algorithms import MirrorDescent, MirrorState

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Structure:
    """What the Newton system needs about the flow constraints (built once per setting).

    The kernel of the joint mass, K_t(j|i) = alpha_t P(j|i) + (1 - alpha_t) P0(j|o(i)) over
    i = (o, a) flattened (O*A) and j in O, is stored as CSR rows on the union of the non-zero
    patterns of P and P0: entries ``indptr[i]:indptr[i + 1]`` with columns ``cols`` and values
    ``val`` (T, E). ``support`` lists, per observation o (``supptr[o]:supptr[o + 1]``), the
    sorted j that any action of o reaches, and ``slot[e]`` is entry e's place in that list.
    ``bandwidth`` is the number of sub-diagonals of M = A N A^T in the order (t, o).
    """

    reach: NDArray[np.bool_]  # (T, O): observations with mass under the uniform policy
    P: Array              # (O*A, O) dense active kernel
    P0: Array             # (O, O) dense idle kernel
    alpha: Array          # (T,) alpha_t
    indptr: Ints          # (O*A + 1,)
    cols: Ints            # (E,)
    val: Array            # (T, E) K_t on the entries
    supptr: Ints          # (O + 1,)
    support: Ints         # (sum of the supports,)
    slot: Ints            # (E,)
    bandwidth: int
    potential: Potential
    discount: Array       # (T,) gamma^t


def structure(setting: Setting) -> Structure:
    game, T = setting.game, setting.T
    potential = game.potential()
    if potential is None:
        raise SpecError("solver.algorithm", f"potential needs a potential game, and "
                        f"{game.name} declares no potential",
                        "use mirror-descent, or a game with a potential (beach_bar, "
                        "left_right, resource_selection)")
    if not game.static_dynamics:
        raise SpecError("solver.algorithm", f"potential needs dynamics that do not depend on "
                        f"mu, and {game.name}'s do", "use mirror-descent")
    if setting.tau > 0:
        raise SpecError("entropy", "potential solves the unregularised game only",
                        "remove entropy, or use mirror-descent")
    O, A = game.n_obs, game.n_act
    uniform = np.full((T, O, A), 1.0 / A)
    reach = mean_field_flow(setting, uniform, check=False).mu[:T] > 0
    alpha = setting.alpha
    P, P0, rows, cols = _pattern(game, bool((alpha < 1).any()))
    P0rep = np.repeat(P0, A, axis=0)  # (O*A, O): P0(j | o(i))
    val = alpha[:, None] * P[rows, cols][None, :] \
        + (1.0 - alpha)[:, None] * P0rep[rows, cols][None, :]
    indptr = np.searchsorted(rows, np.arange(O * A + 1)).astype(np.int64)
    supports = [np.unique(cols[rows // A == o]) for o in range(O)]
    supptr = np.concatenate([[0], np.cumsum([s.size for s in supports])]).astype(np.int64)
    slot = np.concatenate([np.searchsorted(supports[o], cols[indptr[o * A]:indptr[(o + 1) * A]])
                           for o in range(O)]).astype(np.int64)
    return Structure(reach=reach, P=P, P0=P0, alpha=alpha, indptr=indptr,
                     cols=cols.astype(np.int64), val=np.ascontiguousarray(val),
                     supptr=supptr, support=np.concatenate(supports).astype(np.int64),
                     slot=slot, bandwidth=_bandwidth(rows // A, cols, O, T), potential=potential,
                     discount=setting.gamma ** np.arange(T, dtype=float))


def _pattern(game: Game, idle: bool) -> tuple[Array, Array, Ints, Ints]:
    """P (O*A, O), P0 (O, O) and the (row, column) entries of K: the non-zeros of P, and of
    P0 (repeated over actions) when some agents are idle."""
    O, A = game.n_obs, game.n_act
    P = np.ascontiguousarray(game.transition(game.mu0, 0)).reshape(O * A, O)
    P0 = np.ascontiguousarray(game.idle_transition(game.mu0, 0))
    rows, cols = np.nonzero((P != 0) | ((np.repeat(P0, A, axis=0) != 0) & idle))
    return P, P0, rows, cols  # sorted by row: CSR order


def _bandwidth(origin: Ints, cols: Ints, O: int, T: int) -> int:
    """Sub-diagonals of M in the order (t, o): K N K^T joins j1, j2 reached from one o, and
    rows t + 1 and t meet at distance O + j - o."""
    width = 0
    for o in np.unique(origin):
        reached = cols[origin == o]
        width = max(width, int(reached.max() - reached.min()))
    if T > 1 and cols.size:
        width = max(width, O + int((cols - origin).max()))
    return width


def newton_bytes(game: Game, T: int, idle: bool) -> int:
    """Memory of the Newton system's band (8 bytes per entry, factored in place); for a band
    wider than ``BAND_LIMIT`` an upper estimate of its sparse factors too (beach_bar with
    n = 1000, T = 100: 765 MB estimated, 788 MB peak for the whole solve)."""
    _, _, rows, cols = _pattern(game, idle)
    return 8 * (_bandwidth(rows // game.n_act, cols, game.n_obs, T) + 1) * T * game.n_obs


def kernel_times(st: Structure, v: Array) -> Array:
    """The flow of the active mass, out[t, j] = sum_i K_t(j|i) v[t, i], for v (T', O, A) with
    T' <= T (steps 0..T'-1) -> (T', O)."""
    T, O, A = v.shape
    a = st.alpha[:T, None]
    return a * (v.reshape(T, O * A) @ st.P) + (1.0 - a) * (v.sum(axis=-1) @ st.P0)


def kernel_transpose(st: Structure, y: Array, A: int) -> Array:
    """out[t, o, a] = sum_j K_t(j|o,a) y[t, j] for y (T', O) (steps 0..T'-1) -> (T', O, A)."""
    T, O = y.shape
    a = st.alpha[:T, None]
    moved = (a * (y @ st.P.T)).reshape(T, O, A)
    return moved + ((1.0 - a) * (y @ st.P0.T))[..., None]


def constraints(st: Structure, v: Array) -> Array:
    """(A v)[t, o] = sum_a v_t(o,a) - sum_{o2,a} K_{t-1}(o|o2,a) v_{t-1}(o2,a)."""
    out = v.sum(axis=-1)
    out[1:] -= kernel_times(st, v[:-1])
    return out


def constraints_transpose(st: Structure, y: Array, A: int) -> Array:
    """(A^T y)[t, o, a] = y_t(o) - sum_j K_t(j|o,a) y_{t+1}(j)."""
    out = np.repeat(y[..., None], A, axis=-1)
    out[:-1] -= kernel_transpose(st, y[1:], A)
    return out


_f1, _f2, _f3, _i1 = (types.float64[::1], types.float64[:, ::1], types.float64[:, :, ::1],
                      types.int64[::1])
_band = types.Array(types.float64, 2, "A")  # any layout (a one-row band is C and F)
BAND_LIMIT = 600  # widest band factored as a band; wider: sparse LU (measured crossover)


def entry_bound(st: Structure, A: int) -> int:
    """How many lower-triangle terms ``_assemble`` emits at most: per (t, o) the diagonal,
    one per kernel entry of o, and (A + 1) m (m + 1) / 2 for K N K^T (m = o's support)."""
    sizes = np.diff(st.supptr)
    per_o = 1 + np.diff(st.indptr[::A]) + (A + 1) * sizes * (sizes + 1) // 2
    return int(st.val.shape[0] * per_o.sum())


@nb.njit(types.int64(_band, _i1, _i1, _f1, types.int64, types.int64, types.int64,
                     types.float64), cache=True, inline="always")
def _add(band: Array, row_out: Ints, col_out: Ints, val_out: Array, k: int, i: int, j: int,
         v: float) -> int:  # pragma: no cover - compiled
    """M[i, j] += v (i >= j): into the band when no term arrays are given, else as term k."""
    if row_out.shape[0] == 0:
        band[i - j, j] += v
        return k
    row_out[k], col_out[k], val_out[k] = i, j, v
    return k + 1


@nb.njit(types.int64(_f2, _i1, _i1, _i1, _i1, _i1, _f3, _f2, _band, _i1, _i1, _f1),
         cache=True)
def _assemble(val: Array, indptr: Ints, cols: Ints, supptr: Ints, support: Ints, slot: Ints,
              n: Array, w: Array, band: Array, row_out: Ints, col_out: Ints,
              val_out: Array) -> int:  # pragma: no cover - compiled
    """M = A N A^T on and below its diagonal (rows and columns in the order (t, o)), added
    into ``band`` (lower band storage, band[i - j, j] = M[i, j]) or, when the term arrays are
    not empty, written to them as terms (row, column, value) whose sums per entry are M
    (returns how many).

    Per (t, o) with S = sum_a n_a and N = (diag(1/n) + w 1 1^T)^-1 (so N 1 = n / (1 + w S)):
    the diagonal 1^T N 1 = S / (1 + w S) (1 where S = 0: a row with no variables, y = 0); the
    coupling of row (t+1, j) with (t, o), -sum_a K_t(j|o,a) (N 1)_a; and K N K^T into the rows
    of step t + 1, summed as sum_a n_a (K_a - kbar)(K_a - kbar)^T + S / (1 + w S) kbar kbar^T
    with kbar = sum_a n_a K_a / S (both terms positive semidefinite: no cancellation when the
    policy is nearly deterministic or w S is large).
    """
    T, O, A = n.shape
    width = 0
    for o in range(O):
        width = max(width, supptr[o + 1] - supptr[o])
    kbar = np.empty(width)
    dev = np.empty(width)
    k = 0
    for t in range(T):
        for o in range(O):
            col = t * O + o
            S = 0.0
            for a in range(A):
                S += n[t, o, a]
            if S <= 0.0:
                k = _add(band, row_out, col_out, val_out, k, col, col, 1.0)
                continue
            ratio = 1.0 / (1.0 + w[t, o] * S)
            k = _add(band, row_out, col_out, val_out, k, col, col, S * ratio)
            if t + 1 == T:
                continue
            base = supptr[o]
            m = supptr[o + 1] - base
            kbar[:m] = 0.0
            nxt = (t + 1) * O
            for a in range(A):
                row = o * A + a
                for e in range(indptr[row], indptr[row + 1]):
                    k = _add(band, row_out, col_out, val_out, k, nxt + cols[e], col,
                             -val[t, e] * n[t, o, a] * ratio)
                    kbar[slot[e]] += n[t, o, a] * val[t, e]
            kbar[:m] /= S
            c = S * ratio
            for a in range(A + 1):  # the A spread terms, then the mean term
                weight = n[t, o, a] if a < A else c
                if weight == 0.0:
                    continue
                if a < A:
                    dev[:m] = -kbar[:m]
                    row = o * A + a
                    for e in range(indptr[row], indptr[row + 1]):
                        dev[slot[e]] += val[t, e]
                else:
                    dev[:m] = kbar[:m]
                for p in range(m):
                    for q in range(p + 1):
                        k = _add(band, row_out, col_out, val_out, k, nxt + support[base + p],
                                 nxt + support[base + q], weight * dev[p] * dev[q])
    return k


def newton_terms(st: Structure, n: Array, w: Array) -> tuple[Ints, Ints, Array]:
    """The terms (row, column, value) of M = A N A^T on and below its diagonal (module
    docstring); the terms of one entry sum to it."""
    size = entry_bound(st, n.shape[-1])
    rows, cols = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    vals = np.empty(size)
    k = _assemble(st.val, st.indptr, st.cols, st.supptr, st.support, st.slot,
                  np.ascontiguousarray(n), np.ascontiguousarray(w),
                  np.zeros((1, 1)), rows, cols, vals)  # the band is unused
    return rows[:k], cols[:k], vals[:k]


def newton_band(st: Structure, n: Array, w: Array) -> Array:
    """M = A N A^T in lower band storage (bandwidth + 1, T O), LAPACK's (Fortran) order."""
    T, O, _ = n.shape
    band = np.zeros((st.bandwidth + 1, T * O), order="F")
    none = np.empty(0, dtype=np.int64)
    _assemble(st.val, st.indptr, st.cols, st.supptr, st.support, st.slot,
              np.ascontiguousarray(n), np.ascontiguousarray(w), band, none, none,
              np.empty(0))
    return band


def newton_solver(st: Structure, n: Array, w: Array) -> Callable[[Array], Array]:
    """Factor M = A N A^T once; r -> M^-1 r for r (T, O). Up to ``BAND_LIMIT``
    sub-diagonals as a band (LAPACK's banded Cholesky, pbtrf), beyond as a sparse matrix
    (SuperLU with a minimum-degree ordering, no pivoting: M is positive definite). Raises
    numpy's LinAlgError when M is not numerically positive definite."""
    T, O, _ = n.shape
    if st.bandwidth <= BAND_LIMIT:
        factor = scipy.linalg.cholesky_banded(newton_band(st, n, w), lower=True,
                                              overwrite_ab=True, check_finite=False)
        return lambda r: scipy.linalg.cho_solve_banded((factor, True), r.ravel(),
                                                       check_finite=False).reshape(r.shape)
    rows, cols, vals = newton_terms(st, n, w)
    lower = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(T * O, T * O)).tocsc()
    full = (lower + scipy.sparse.tril(lower, -1).T).tocsc()
    try:
        lu = scipy.sparse.linalg.splu(full, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                      options={"SymmetricMode": True})
    except RuntimeError as error:  # "Factor is exactly singular"
        raise np.linalg.LinAlgError(str(error)) from None
    return lambda r: lu.solve(r.ravel()).reshape(r.shape)


@dataclass(frozen=True)
class PotentialState:
    policy: Array
    dual: tuple[Array, Array] | None  # multipliers y (T, O) of A z = b and s (T, O, A) of
    #                                   z >= 0; None before the first step
    structure: Structure
    best: tuple[float, Array] = (np.inf, np.empty(0))  # exploitability, pi
    stalled: bool = False  # precision ran out: the iterate stays at the best one
    polishing: MirrorState | None = None  # mirror-descent from the best iterate, once stalled
    evaluation: Evaluation | None = None  # of ``policy``, for the loop (the guard made it)
    done: bool = False     # stalled without polish: the loop stops


@dataclass(frozen=True)
class PotentialNewton:
    """Primal-dual interior point on the concave potential of a potential game (module
    docstring).

    Needs a game that declares a potential (``Game.potential``: beach_bar, left_right,
    resource_selection), mu-independent dynamics and tau = 0; refuses others with a SpecError.
    """

    start: float = param(0.1, "how far the start is lifted off the boundary s = 0: the dual "
                         "slack added is start x exploitability / (count z)", low=0,
                         low_open=True)
    polish: bool = param(False, "once the Newton steps stall, continue with mirror-descent "
                         "(defaults) from the best iterate")

    INTERIOR = 0.99  # fraction of the way to the boundary z = 0 or s = 0 a step may go
    REFINE = 1       # rounds of iterative refinement of the Newton system
    PROJECT = 2      # rounds of projection of the step onto A dz = 0
    GUARD = 3.0      # an exploitability this many times the best sends back to the best iterate

    def init(self, setting: Setting, policy0: Array) -> PotentialState:
        st = structure(setting)
        A = policy0.shape[-1]
        policy = np.where(policy0.min(axis=-1, keepdims=True) > 0, policy0,
                          0.99 * policy0 + 0.01 / A)  # the interior needs pi > 0
        return PotentialState(policy, None, st)

    def step(self, setting: Setting, state: PotentialState, ev: Evaluation,
             k: int) -> PotentialState:
        st, pi = state.structure, state.policy
        T, _, A = pi.shape
        if state.stalled:
            if not self.polish:
                return state
            mirror = MirrorDescent()
            inner = state.polishing or mirror.init(setting, state.policy)
            inner = mirror.step(setting, inner, ev, k)
            return replace(state, policy=inner.policy, polishing=inner, evaluation=None)
        best = state.best
        if ev.exploitability < best[0]:
            best = (ev.exploitability, pi)
        stall = PotentialState(best[1], None, st, best, stalled=True, done=not self.polish)
        reach = st.reach[..., None]
        mu = ev.flow.mu[:T]
        z = np.where(reach, mu[..., None] * pi, 0.0)  # the joint mass z_t(o,a)
        live = reach & (z > 0)
        count = int(live.sum())
        safe = np.where(live, z, 1.0)
        alpha = setting.alpha
        grad = st.discount[:, None, None] * (alpha[:, None, None] * ev.flow.r
                                             + ((1 - alpha)[:, None] * ev.flow.r0)[..., None])
        if state.dual is None:  # the best response's dual, lifted off s = 0
            Q = ev.best.Q
            y = st.discount[:, None] * ev.best.V[:T]
            gap = (st.discount * alpha)[:, None, None] * (Q.max(axis=-1, keepdims=True) - Q)
            lift = self.start * ev.exploitability / count
            s = np.where(live, gap + lift / safe, 1.0)
        else:
            y, s = state.dual
        residual = np.where(live, grad - constraints_transpose(st, y, A) + s, 0.0)
        n = np.where(live, safe / s, 0.0)                   # (diag of Q)^-1 = z / s
        curvature, idle_curvature = st.potential.along(mu, np.arange(T, dtype=np.int64))
        w = -st.discount[:, None] * (alpha[:, None] * curvature
                                     + (1 - alpha)[:, None] * idle_curvature)
        S = n.sum(axis=-1)
        prob = n / np.where(S > 0, S, 1.0)[..., None]

        def apply_n(v: Array) -> Array:
            """N v per block, N = S (diag(p) - p p^T) + S / (1 + w S) p p^T (p = n / S):
            the form without cancellation when w S is large."""
            mean = (prob * v).sum(axis=-1)[..., None]
            return S[..., None] * prob * (v - mean) + (S / (1.0 + w * S))[..., None] * prob * mean

        def newton(rc: Array) -> tuple[Array, Array, Array]:
            """(dz, dy, ds) for the complementarity target z s + rc (module docstring)."""
            h = residual + rc / safe
            rhs = constraints(st, apply_n(h))
            dy = solve(rhs)
            for _ in range(self.REFINE):  # iterative refinement of M dy = rhs
                dy = dy + solve(rhs - constraints(st, apply_n(constraints_transpose(st, dy, A))))
            dz = apply_n(h - constraints_transpose(st, dy, A))
            for _ in range(self.PROJECT):  # make A dz = 0 exact: dz -= N A^T M^-1 A dz
                correction = solve(constraints(st, np.where(live, dz, 0.0)))
                dz = dz - apply_n(constraints_transpose(st, correction, A))
            dz = np.where(live, dz, 0.0)
            return dz, dy, np.where(live, (rc - s * dz) / safe, 0.0)

        def longest(dz: Array, ds: Array) -> float:
            """The longest step in (0, 1] that keeps z >= 0 and s >= 0."""
            top = 1.0
            for v, dv in ((z, dz), (s, ds)):
                neg = live & (dv < 0)
                if neg.any():
                    top = min(top, float((v[neg] / -dv[neg]).min()))
            return top

        with np.errstate(all="ignore"):
            try:
                solve = newton_solver(st, n, w)
                m = float((z * s)[live].sum()) / count
                dz, dy, ds = newton(np.where(live, -z * s, 0.0))          # predictor
                a = longest(dz, ds)
                sigma = (float(((z + a * dz) * (s + a * ds))[live].sum()) / count / m) ** 3
                dz, dy, ds = newton(np.where(live, sigma * m - z * s - dz * ds, 0.0))
            except np.linalg.LinAlgError:
                return stall  # m too small for this precision
        if not (np.isfinite(dz).all() and np.isfinite(dy).all() and np.isfinite(ds).all()):
            return stall
        a = min(1.0, self.INTERIOR * longest(dz, ds))
        new = np.where(live, z + a * dz, 0.0)
        mass = new.sum(axis=-1, keepdims=True)
        policy = np.where(reach & (mass > 0), new / np.where(mass > 0, mass, 1.0), pi)
        trial = evaluate(setting, policy)
        if trial.exploitability > self.GUARD * best[0]:
            # the Newton step lost its precision (module docstring): stay at the best iterate
            # rather than let the loop record a rise
            return stall
        return PotentialState(policy, (y + a * dy, np.where(live, s + a * ds, 1.0)), st, best,
                              evaluation=trial)
