"""Interior-point Newton on the potential of a potential game (the ``potential`` solver).

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

The solver maximises Phi by a primal barrier method: Newton steps on
phi = Phi + beta sum log z restricted to A dz = 0, one per iteration. The Hessian of -phi is
block diagonal, one A x A block diag(beta / z^2) + w 1 1^T per (t, o) with
w = -gamma^t [alpha_t f'(o) + (1 - alpha_t) f0'(o)] >= 0 (its inverse N in closed form), and
the Newton system reduces to M y = -A N g with M = A N A^T, which is block tridiagonal in t with
O x O blocks (constraint rows of steps t and t+1 share z_t); it is solved by block cyclic
reduction (log2 T batched levels) or, for large blocks, by sequential block elimination. The
step is dz = N (g + A^T y), shortened to stay inside z > 0 and by a line search on the
derivative of phi along dz (concave, so monotone). beta shrinks by ``shrink`` after each full
step whose Newton decrement g . dz is below 1 (the iterate is near the central point of beta,
where the exploitability is at most beta times the number of variables).

Precision: as beta falls the weights z^2 / beta of the Newton system spread over many orders of
magnitude and dz = N (g + A^T y) is the small difference of large terms; its flow residual
A dz is therefore removed by projection (dz <- dz - N A^T M^-1 A dz, ``PROJECT`` times), without
which the exploitability stopped at 5e-7 to 2e-4 (docs/solvers.md); with it, near 1e-10. Each
step evaluates its result once more (about 1% of the cost of a Newton step): when its
exploitability exceeds ``GUARD`` times the best one, the solver returns to the best iterate and
stays there (the loop then reports it), so the history never rises by more than ``GUARD``; with
``polish`` it continues from there with mirror-descent steps instead.

Each iterate is feasible: the policy pi = z / sum_a z is evaluated by the loop and the next step
starts from the occupation measure of that policy on its own flow. Observations no policy can
reach (zero mass under the uniform policy) have no variables; their policy stays uniform (it
changes neither J nor J*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tmfcli.errors import SpecError
from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.flow import frozen_rewards, mean_field_flow
from tmfcli.model.games.base import Array, Potential
from tmfcli.model.params import param
from tmfcli.model.setting import Setting

if TYPE_CHECKING:
    from tmfcli.solvers.algorithms import MirrorState

LARGE_BLOCKS = 16  # from this block size on, factor sequentially (BLAS) instead of by levels


@dataclass(frozen=True)
class Structure:
    """What the Newton system needs about the flow constraints (built once per setting).

    The kernel of the joint mass, K_t(j|i) = alpha_t P(j|i) + (1 - alpha_t) P0(j|o(i)) over
    i = (o, a) flattened (O*A) and j in O, is stored on the union of the non-zero patterns of P
    and P0 (entries (rows[e], cols[e])); ``wpairs`` lists the (o, j1, j2) with K(j1|o,.) and
    K(j2|o,.) both non-zero (the entries of K N K^T that observation o feeds).
    """

    reach: NDArray[np.bool_]  # (T, O): observations with mass under the uniform policy
    P: Array              # (O*A, O) dense active kernel
    P0: Array             # (O, O) dense idle kernel
    alpha: Array          # (T,) alpha_t
    rows: NDArray[np.intp]  # (E,)
    cols: NDArray[np.intp]  # (E,)
    val: Array            # (T, E) K_t on the entries
    wpairs: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]
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
    P = np.ascontiguousarray(game.transition(game.mu0, 0)).reshape(O * A, O)
    P0 = np.ascontiguousarray(game.idle_transition(game.mu0, 0))
    P0rep = np.repeat(P0, A, axis=0)  # (O*A, O): P0(j | o(i))
    idle = setting.alpha < 1
    pattern = (P != 0) | ((P0rep != 0) & bool(idle.any()))
    rows, cols = np.nonzero(pattern)
    alpha = setting.alpha
    val = alpha[:, None] * P[rows, cols][None, :] \
        + (1.0 - alpha)[:, None] * P0rep[rows, cols][None, :]
    # (o, j1, j2) with j1, j2 both reachable from o
    wo, wj1, wj2 = [], [], []
    for o in range(O):
        support = np.unique(cols[(rows // A) == o])
        wo.append(np.full(support.size ** 2, o))
        wj1.append(np.repeat(support, support.size))
        wj2.append(np.tile(support, support.size))
    return Structure(reach=reach, P=P, P0=P0, alpha=alpha, rows=rows, cols=cols, val=val,
                     wpairs=(np.concatenate(wo), np.concatenate(wj1), np.concatenate(wj2)),
                     potential=potential,
                     discount=setting.gamma ** np.arange(T, dtype=float))


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


def block_tridiagonal_solve(D: Array, L: Array, U: Array, r: Array) -> Array:
    """Solve L_i y_{i-1} + D_i y_i + U_i y_{i+1} = r_i (i < n) by block cyclic reduction.

    D, L, U (n, O, O) (L_0 and U_{n-1} unused), r (n, O). The odd-indexed blocks are
    eliminated in one batched solve, which leaves a block tridiagonal system on the even ones
    (half the size); log2 n levels. For a symmetric positive definite matrix every D_i met is
    positive definite (a Schur complement), so no pivoting across blocks is needed.
    """
    n, O = r.shape
    if n == 1:
        return np.linalg.solve(D[0], r[0])[None]
    Do, Lo, Uo, ro = D[1::2], L[1::2], U[1::2], r[1::2]
    m = Do.shape[0]
    X = np.linalg.solve(Do, np.concatenate([Lo, Uo, ro[..., None]], axis=-1))
    iL, iU, ir = X[..., :O], X[..., O:2 * O], X[..., 2 * O]
    De, Le, Ue, re = D[::2], L[::2], U[::2], r[::2]
    ne = De.shape[0]
    newD, newr = De.copy(), re.copy()
    newL, newU = np.zeros_like(De), np.zeros_like(De)
    k = np.arange(1, ne)                     # even block 2k has odd left neighbour 2k - 1
    newD[k] -= Le[k] @ iU[k - 1]
    newL[k] = -Le[k] @ iL[k - 1]
    newr[k] -= (Le[k] @ ir[k - 1][..., None])[..., 0]
    k = np.arange(m)                         # even block 2k has odd right neighbour 2k + 1
    newD[k] -= Ue[k] @ iL[k]
    newU[k] = -Ue[k] @ iU[k]
    newr[k] -= (Ue[k] @ ir[k][..., None])[..., 0]
    ye = block_tridiagonal_solve(newD, newL, newU, newr)
    yo = ir - (iL @ ye[:m][..., None])[..., 0]
    right = np.arange(m) + 1 < ne
    yo[right] -= (iU[right] @ ye[1:m + 1][..., None])[..., 0]
    y = np.empty_like(r)
    y[::2], y[1::2] = ye, yo
    return y


def block_tridiagonal_factor(D: Array, L: Array, U: Array) -> Callable[[Array], Array]:
    """The same system factored once by sequential block elimination (block LDL^T with the
    inverted pivots S_t = D_t - L_t S_{t-1}^{-1} U_{t-1} kept), returned as a solver r -> y.

    One Python iteration per block: for few large blocks (beach_bar, O = n) the work is in
    BLAS and the factor is reused by the refinement; ``block_tridiagonal_solve`` suits many
    small blocks.
    """
    n = D.shape[0]
    inverse = np.empty_like(D)
    inverse[0] = np.linalg.inv(D[0])
    for t in range(1, n):
        inverse[t] = np.linalg.inv(D[t] - L[t] @ inverse[t - 1] @ U[t - 1])

    def solve(r: Array) -> Array:
        z = r.copy()
        for t in range(1, n):
            z[t] -= L[t] @ (inverse[t - 1] @ z[t - 1])
        y = np.empty_like(r)
        y[-1] = inverse[-1] @ z[-1]
        for t in range(n - 2, -1, -1):
            y[t] = inverse[t] @ (z[t] - U[t] @ y[t + 1])
        return y

    return solve


@dataclass(frozen=True)
class PotentialState:
    policy: Array
    beta: float            # barrier weight; nan before the first step
    structure: Structure
    best: tuple[float, Array, float] = (np.inf, np.empty(0), np.nan)  # exploitability, pi, beta
    stalled: bool = False  # precision ran out: the iterate stays at the best one
    polishing: MirrorState | None = None  # mirror-descent from the best iterate, once stalled


@dataclass(frozen=True)
class PotentialNewton:
    """Interior-point Newton on the concave potential of a potential game (module docstring).

    Needs a game that declares a potential (``Game.potential``: beach_bar, left_right,
    resource_selection), mu-independent dynamics and tau = 0; refuses others with a SpecError.
    """

    shrink: float = param(0.1, "factor on the barrier weight after a near-central step",
                          low=0, high=1, low_open=True)
    start: float = param(1.0, "initial barrier weight, times the initial exploitability over "
                         "the number of variables", low=0, low_open=True)

    polish: bool = param(False, "once the Newton steps stall, continue with mirror-descent "
                         "(defaults) from the best iterate")

    INTERIOR = 0.99  # fraction of the way to the boundary x = 0 a step may go
    CENTRAL = 1.0    # Newton decrement below which the iterate counts as central
    FLOOR = 1e-300   # smallest barrier weight
    REFINE = 1       # rounds of iterative refinement of the Newton system
    PROJECT = 2      # rounds of projection of the step onto A dz = 0
    GUARD = 3.0      # an exploitability this many times the best sends back to the best iterate

    def init(self, setting: Setting, policy0: Array) -> PotentialState:
        st = structure(setting)
        A = policy0.shape[-1]
        policy = np.where(policy0.min(axis=-1, keepdims=True) > 0, policy0,
                          0.99 * policy0 + 0.01 / A)  # the barrier needs pi > 0
        return PotentialState(policy, float("nan"), st)

    def step(self, setting: Setting, state: PotentialState, ev: Evaluation,
             k: int) -> PotentialState:
        st, pi = state.structure, state.policy
        T, _, A = pi.shape
        alpha = setting.alpha
        reach = st.reach[..., None]
        mu = ev.flow.mu[:T]
        x = np.where(reach, mu[..., None] * pi, 0.0)  # the joint mass z_t(o,a)
        live = reach & (x > 0)
        count = int(live.sum())
        beta = state.beta
        if not np.isfinite(beta):
            beta = max(self.start * ev.exploitability / count, self.FLOOR)
        best = state.best
        if state.stalled:
            if not self.polish:
                return state
            from tmfcli.solvers.algorithms import MirrorDescent

            mirror = MirrorDescent()
            inner = state.polishing or mirror.init(setting, state.policy)
            inner = mirror.step(setting, inner, ev, k)
            return replace(state, policy=inner.policy, polishing=inner)
        if ev.exploitability < best[0]:
            best = (ev.exploitability, pi, beta)
        elif ev.exploitability > self.GUARD * best[0]:
            # the Newton steps lost their precision at this beta (docs/solvers.md): return to
            # the best iterate and stay there (the same step from it would fail again)
            return PotentialState(best[1], best[2], st, best, stalled=True)
        grad = self._gradient(st, ev.flow.r, ev.flow.r0, alpha)
        safe = np.where(live, x, 1.0)
        g = np.where(live, grad + beta / safe, 0.0)
        n = np.where(live, safe * safe / beta, 0.0)            # (T, O, A) = x^2 / beta
        w = -st.discount[:, None] * (alpha[:, None] * st.potential.curvature(mu)
                                     + (1 - alpha)[:, None] * st.potential.idle_curvature(mu))
        S = n.sum(axis=-1)

        prob = n / np.where(S > 0, S, 1.0)[..., None]

        def apply_n(v: Array) -> Array:
            """N v per block, N = S (diag(p) - p p^T) + S / (1 + w S) p p^T (p = n / S):
            the form without cancellation when w S is large."""
            mean = (prob * v).sum(axis=-1)[..., None]
            return S[..., None] * prob * (v - mean) + (S / (1.0 + w * S))[..., None] * prob * mean

        with np.errstate(all="ignore"):
            try:
                rhs = -self._constraints(st, apply_n(g), alpha)
                solve = self._factor(st, n, S, w, alpha)
                y = solve(rhs)
                for _ in range(self.REFINE):  # iterative refinement of M y = rhs
                    residual = rhs - self._constraints(
                        st, apply_n(self._constraints_transpose(st, y, alpha, A)), alpha)
                    y = y + solve(residual)
                dx = apply_n(g + self._constraints_transpose(st, y, alpha, A))
                for _ in range(self.PROJECT):  # make A dz = 0 exact: dz -= N A^T M^-1 A dz
                    correction = solve(self._constraints(st, np.where(live, dx, 0.0), alpha))
                    dx = dx - apply_n(self._constraints_transpose(st, correction, alpha, A))
            except np.linalg.LinAlgError:
                dx = np.full(x.shape, np.nan)
        dx = np.where(live, dx, 0.0)
        if not np.isfinite(dx).all():  # beta too small for this precision: back off
            return PotentialState(best[1], best[2], st, best, stalled=True)
        decrement = float((g * dx).sum())
        s = self._line_search(setting, st, x, dx, live, beta, alpha, decrement)
        new = np.where(live, x + s * dx, 0.0)
        mass = new.sum(axis=-1, keepdims=True)
        policy = np.where(reach & (mass > 0), new / np.where(mass > 0, mass, 1.0), pi)
        if evaluate(setting, policy).exploitability > self.GUARD * best[0]:
            # the Newton step lost its precision (module docstring): stay at the best iterate
            # rather than let the loop record a rise (one extra evaluation, ~1% of a step)
            return PotentialState(best[1], best[2], st, best, stalled=True)
        if s == 1.0 and decrement < self.CENTRAL:
            beta = max(beta * self.shrink, self.FLOOR)
        return PotentialState(policy, beta, st, best)

    @staticmethod
    def _gradient(st: Structure, r: Array, r0: Array, alpha: Array) -> Array:
        """dPhi/dz_t(o,a) = gamma^t [alpha_t r + (1 - alpha_t) r0] (T, O, A)."""
        a = alpha[:, None]
        return st.discount[:, None, None] * (a[..., None] * r + ((1 - a) * r0)[..., None])

    @staticmethod
    def _constraints(st: Structure, v: Array, alpha: Array) -> Array:
        """(A v)[t, o] = sum_a v_t(o,a) - sum_{o2,a} K_{t-1}(o|o2,a) v_{t-1}(o2,a)."""
        out = v.sum(axis=-1)
        out[1:] -= kernel_times(st, v[:-1])
        return out

    @staticmethod
    def _constraints_transpose(st: Structure, y: Array, alpha: Array, A: int) -> Array:
        """(A^T y)[t, o, a] = y_t(o) - sum_j K_t(j|o,a) y_{t+1}(j)."""
        out = np.repeat(y[..., None], A, axis=-1)
        out[:-1] -= kernel_transpose(st, y[1:], A)
        return out

    @staticmethod
    def _factor(st: Structure, n: Array, S: Array, w: Array,
                alpha: Array) -> Callable[[Array], Array]:
        """A solver of (A N A^T) y = rhs, N = (diag(1/n) + w 1 1^T)^-1 per (t, o) block."""
        T, O, A = n.shape
        o_of = st.rows // A
        nf = n.reshape(T, O * A)
        ratio = 1.0 / (1.0 + w * S)                                 # (T, O)
        n1 = (n * ratio[..., None]).reshape(T, O * A)                # N 1
        offset = (np.arange(T) * O * O)[:, None]
        # C_t[j, o] = -sum_a K_t(j|o,a) (N 1)_{t,o,a}, coupling rows t+1 and t
        C = -np.bincount((offset + st.cols * O + o_of).ravel(),
                         (st.val * n1[:, st.rows]).ravel(),
                         minlength=T * O * O).reshape(T, O, O)
        # G_t = K_t N_t K_t^T. With p = n / S (per (t, o)), N = S (diag(p) - p p^T)
        # + S / (1 + w S) p p^T: both terms positive semidefinite, so G is summed without the
        # cancellation of diag(n) - kk n n^T when w S is large (beta small). With
        # kbar_o = sum_a p_a K(.|o,a): G = sum_o S_o sum_a p_a (K(.|o,a) - kbar_o)^(x2)
        #                                   + S_o / (1 + w_o S_o) kbar_o^(x2)
        W = np.bincount((offset + o_of * O + st.cols).ravel(),
                        (nf[:, st.rows] * st.val).ravel(), minlength=T * O * O)
        safe = np.where(S > 0, S, 1.0)
        kbar = W.reshape(T, O, O) / safe[..., None]                 # (T, O, O): kbar_o(j)
        prob = n / safe[..., None]                                   # (T, O, A)
        wo, j1, j2 = st.wpairs
        acts = np.arange(A)[None, :]
        P3 = st.P.reshape(O, A, O)

        def deviation(j: NDArray[np.intp]) -> Array:                         # (T, pairs, A)
            K = st.alpha[:, None, None] * P3[wo[:, None], acts, j[:, None]][None] \
                + (1.0 - st.alpha)[:, None, None] * st.P0[wo, j][None, :, None]
            return K - kbar[:, wo, j][..., None]

        spread = (prob[:, wo, :] * deviation(j1) * deviation(j2)).sum(axis=-1)
        G = np.bincount((offset + j1 * O + j2).ravel(),
                        (S[:, wo] * spread
                         + (S * ratio)[:, wo] * kbar[:, wo, j1] * kbar[:, wo, j2]).ravel(),
                        minlength=T * O * O)
        G = G.reshape(T, O, O)
        diag = S * ratio                                             # 1^T N 1
        diag = np.where(st.reach, diag, 1.0)                        # unreachable rows: y = 0
        D = np.zeros((T, O, O))
        D[:, np.arange(O), np.arange(O)] = diag
        D[1:] += G[:-1]
        L = np.zeros((T, O, O))
        L[1:] = C[:-1]
        U = np.zeros((T, O, O))
        U[:-1] = np.swapaxes(C[:-1], 1, 2)
        if O >= LARGE_BLOCKS:
            return block_tridiagonal_factor(D, L, U)
        return lambda rhs: block_tridiagonal_solve(D, L, U, rhs)

    def _line_search(self, setting: Setting, st: Structure, x: Array, dx: Array,
                     live: NDArray[np.bool_], beta: float, alpha: Array, decrement: float) -> float:
        """The step s in (0, 1] along dx: the largest that keeps x > 0 (times INTERIOR), then
        bisected on the sign of d phi / ds (phi is concave along the line)."""
        neg = live & (dx < 0)
        top = 1.0
        if neg.any():
            top = min(1.0, self.INTERIOR * float((x[neg] / -dx[neg]).min()))
        if decrement < self.CENTRAL:  # Newton's region, where the slope is below rounding
            return top

        def slope(s: float) -> float:
            z = x + s * dx
            mu = np.zeros((setting.T + 1, x.shape[1]))
            mu[:-1] = z.sum(axis=-1)
            r, r0 = frozen_rewards(setting, mu)
            g = self._gradient(st, r, r0, alpha)
            safe = np.where(live, z, 1.0)
            return float(np.where(live, (g + beta / safe) * dx, 0.0).sum())

        if slope(top) >= 0:
            return top
        low, high = 0.0, top
        for _ in range(30):
            mid = 0.5 * (low + high)
            if slope(mid) >= 0:
                low = mid
            else:
                high = mid
        return low if low > 0 else high * 1e-3
