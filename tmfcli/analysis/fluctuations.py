"""The finite-N corrections of the mean field: linear-noise constants and the refined flow.

MODEL.md section 10. With the policy fixed (a ``TabularPolicy`` pi_t(a|o), or a population-aware
policy pi(a|o, mu), which then enters the kernel through mu), write the kernel of step t as

    K_t(o, .; mu) = alpha_t A_t(o, .; mu) + (1 - alpha_t) I_t(o, .; mu),
    A_t(o, o'; mu) = sum_a pi_t(a|o, mu) P(o'|o, a, mu),    I_t(o, o'; mu) = P0(o'|o, mu),

and Phi_t(mu) = sum_o mu(o) K_t(o, .; mu) (section 2). Shapes: mu (O,), K, A, I (O, O) row
conditionals (row o sums to 1); J (O, O) with J[i, j] = d Phi_t(mu)_i / d mu_j; H (O, O, O) with
H[i, j, k] = d^2 Phi_t(mu)_i / d mu_j d mu_k; S, C (O, O) covariances.

**One step's noise.** Given the counts n = N mu, N Cov[mu_hat_{t+1} | n] = S_t(mu).

* Bernoulli activation: every agent at o moves independently by K_o = K_t(o, .), so the next
  counts are sum_o Multinomial(n(o), K_o) and
  S^bern(mu) = sum_o mu(o) (diag K_o - K_o K_o^T).
* Exactly B active (subset): condition on the active counts m. Given m the next counts are
  sum_o Multinomial(m(o), A_o) + Multinomial(n(o) - m(o), I_o), with mean
  sum_o n(o) I_o + sum_o m(o) D_o (D_o = A_o - I_o) and covariance
  sum_o m(o) (diag A_o - A_o A_o^T) + (n(o) - m(o)) (diag I_o - I_o I_o^T). By the law of total
  covariance, with E m(o) = alpha n(o) under both rules,
  Cov = sum_o n(o) [alpha (diag A_o - A_o A_o^T) + (1 - alpha) (diag I_o - I_o I_o^T)]
        + D^T Cov(m) D.
  Bernoulli: Cov(m) = N alpha (1 - alpha) diag(mu) (independent binomials), which gives
  S^bern above. Subset: m is multivariate hypergeometric, Cov(m) = B (N - B) / (N - 1)
  (diag(mu) - mu mu^T). Subtracting, with M = sum_o mu(o) D_o D_o^T and d = sum_o mu(o) D_o
  (= A-part minus I-part of Phi, the mean effect of one more active agent):

      S^sub(mu) = S^bern(mu) - alpha (1 - alpha) d d^T + kappa (M - d d^T),
      kappa = alpha (1 - alpha) / (N - 1)     (0 for N = 1, and in the limit N -> infinity).

  A fixed number of active agents removes the activation noise along d. No division by alpha
  or B: alpha_t = 0 (nobody acts, section 9's time steps) gives S = S^bern of P0 under both
  rules, alpha_t = 1 the same S under both.

**Fluctuations.** sqrt(N) (mu_hat_t - mu_bar_t) ~ Z_t, centred Gaussian,

    C_{t+1} = J_t C_t J_t^T + S_t(mu_bar_t) - q_t D_t^T C_t D_t / N,
    C_0 = diag(mu0) - mu0 mu0^T (iid initial draws; 0 for the rounded start),

where q_t = alpha_t (N - B_t) / (N - 1) for the subset rule with N known, else 0. The last term
is the expectation of the part of S^sub that is quadratic in mu (d d^T); it is O(1/N), and with
it C_t / N is the *exact* covariance of the count chain when the kernels and the policy do not
depend on mu (then Phi_t is linear and S^bern is linear in mu), under both rules and at every N.

    c_mean = mean_{t=0..T} E||Z_t||_1 = mean_t sqrt(2/pi) sum_o sqrt(C_t(o, o))     (closed form)
    c_max  = E max_{t=0..T} ||Z_t||_1        (Monte Carlo over Z_{t+1} = J_t Z_t + xi_t)

predict E mean_t ||mu_hat_t - mu_bar_t||_1 ~ c_mean / sqrt(N) and E max_t ... ~ c_max / sqrt(N).
xi_t ~ N(0, C_{t+1} - J_t C_t J_t^T), so that Cov Z_t = C_t exactly. The Monte Carlo uses
mean_t ||Z_t||_1, whose expectation is c_mean, as a control variate; its standard error is
reported.

**Refined mean field (bias).** E mu_hat_t = mu_bar_t + b_t / N + O(N^-2) with

    b_{t+1} = J_t b_t + (1/2) sum_{i,j} H_t[., i, j] C_t(i, j),   b_0 = 0 (iid),

and b_0 = rounded(N mu0) - N mu0 for the rounded start (exact offset of the initial counts).

**Derivatives.** When the dynamics are static and the policy tabular, Phi_t is linear:
J_t = K_t^T and H_t = 0 exactly. Otherwise the kernel's derivatives are central differences
(``STEP_J``, ``STEP_H`` below) in the coordinates mu_j, and

    J[i, j]    = K[j, i] + sum_o mu(o) dK[o, i]/dmu_j,
    H[i, j, k] = dK[j, i]/dmu_k + dK[k, i]/dmu_j + sum_o mu(o) d^2K[o, i]/dmu_j dmu_k.

The bias needs H_t only through (1/2) H_t : C_t, which ``curvature_drift`` gets without forming
H_t: with C_t = sum_k v_k v_k^T, it is (1/2) sum_k d^2 Phi_t(mu_bar_t + s v_k) / ds^2, one second
difference per column (2 r + 1 kernel evaluations per step, r <= O - 1); the return's
correction likewise. ``derivatives(..., hessian=True)`` forms the full H_t (for tests).
Kernels are evaluated at mu +- h e_j, which may have an entry -h where mu_bar has 0: the game's
functions must be defined (and smooth) in a neighbourhood of the simplex, as all shipped games
are. A kink in a kernel (e.g. a max) makes the derivative, and the prediction, unreliable there.
``try_predict`` returns no prediction, with the reason, rather than an error, when kernels are
not finite there or when T O^2 exceeds ``MAX_FLOATS``.

**Return.** The expected per-capita reward at step t given the counts is
R_t(mu) = sum_o mu(o) [alpha_t sum_a pi r + (1 - alpha_t) r0](o; mu) under both rules (E m(o) =
alpha_t n(o)), so E G - J = (1/N) sum_t gamma^t [grad R_t . b_t + (1/2) tr(Hess R_t C_t)]
+ O(N^-2): ``return_correction``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import types

from tmfcli import seeds
from tmfcli.errors import NumericalError
from tmfcli.model.flow import mean_field_flow
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy, on_flow
from tmfcli.model.setting import Setting

__all__ = ["MAX_FLOATS", "SAMPLES", "STEP_H", "STEP_J", "TOLERANCE", "Derivatives", "Fluctuations",
           "Prediction", "constant_verdict", "covariance", "derivatives", "fluctuations",
           "kernel_parts", "max_constant", "noise", "predict", "ratio_interval",
           "return_correction", "target_agents", "try_predict", "unaffordable"]

EPS = float(np.finfo(float).eps)
STEP_J = EPS ** (1 / 3)  # ~6.1e-6: central first differences, error O(h^2) + O(eps / h)
STEP_H = EPS ** (1 / 4)  # ~1.2e-4: central second differences, error O(h^2) + O(eps / h^2)
SAMPLES = 400            # Monte Carlo paths of the Gaussian recursion for c_max (at most)
WORK = 1_000_000         # ... and at most this many path-steps, but never fewer than 100 paths
MARKS = 12               # steps whose ||Z_t||_1 serve as control variates
CHUNK = 1 << 22          # floats of kernel evaluations per batch (32 MB)
TWO_OVER_PI = math.sqrt(2.0 / math.pi)
TOLERANCE = 0.10         # bound-check's verdict on the constant: |measured/predicted - 1| (docs)
MAX_FLOATS = 5_000_000   # largest T O^2 predicted (each (T, O, O) array 40 MB; T O^3 work)
Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------------
# the kernel, batched over points
# --------------------------------------------------------------------------------------------
def policy_probs(policy: Policy, mu: Array, steps: np.ndarray) -> Array:
    """pi (n, P, O, A) for mu (n, P, O) at the steps ``steps`` (n,) (vectorised for the known
    policy types, else one call per step)."""
    if isinstance(policy, TabularPolicy):
        pi = np.asarray(policy.pi, dtype=float)[steps]
        return np.broadcast_to(pi[:, None], (*mu.shape[:2], *pi.shape[1:]))
    if isinstance(policy, PopulationPolicy):
        return policy.probs_at(mu, steps)
    return np.stack([policy.probs(mu[i], int(t)) for i, t in enumerate(steps)])


def kernel_parts(setting: Setting, policy: Policy, mu: Array,
                 steps: np.ndarray) -> tuple[Array, Array]:
    """Active and idle kernels A, I (n, P, O, O) at the points mu (n, P, O) of the steps
    ``steps`` (n,): A(o, o') = sum_a pi(a|o, mu) P(o'|o, a, mu), I = P0(., .|mu)."""
    game = setting.game
    n, Pn, O = mu.shape
    pi = policy_probs(policy, mu, steps)
    if game.static_dynamics:
        P = np.broadcast_to(game.transition(game.mu0, 0), (n, Pn, O, game.n_act, O))
        I = np.broadcast_to(game.idle_transition(game.mu0, 0), (n, Pn, O, O))
    elif game.time_homogeneous:
        P = game.transition(mu, 0)
        I = game.idle_transition(mu, 0)
    else:
        P = np.stack([game.transition(mu[i], int(t)) for i, t in enumerate(steps)])
        I = np.stack([game.idle_transition(mu[i], int(t)) for i, t in enumerate(steps)])
    A = np.einsum("npoa,npoaq->npoq", pi, P)
    return A, np.asarray(I, dtype=float)


def _kernel(A: Array, I: Array, alpha: Array) -> Array:
    """K = alpha A + (1 - alpha) I, alpha (n,) broadcast over the trailing axes."""
    a = alpha.reshape(alpha.shape + (1,) * (A.ndim - 1))
    return a * A + (1.0 - a) * I


# --------------------------------------------------------------------------------------------
# one step's noise
# --------------------------------------------------------------------------------------------
def noise(mu: Array, A: Array, I: Array, alpha: Array, activation: str = "subset",
          agents: int | None = None) -> Array:
    """S_t(mu) (..., O, O): N Cov[mu_hat_{t+1} | counts N mu] (module docstring).

    mu (..., O); A, I (..., O, O) the active and idle kernels at mu; alpha (...,) the active
    fractions. ``agents`` N gives the subset rule's exact finite-N term kappa (M - d d^T);
    None gives its limit N -> infinity at fixed alpha.
    """
    alpha = np.asarray(alpha, dtype=float)
    K = _kernel(A, I, alpha)
    w = mu[..., :, None] * K                                         # mu(o) K_o(o')
    S = np.einsum("...oq,qr->...qr", w, np.eye(mu.shape[-1])) - \
        np.einsum("...o,...oq,...or->...qr", mu, K, K)
    if activation == "bernoulli":
        return np.asarray(S)
    if activation != "subset":
        raise ValueError(f"unknown activation {activation!r}")
    D = A - I
    d = np.einsum("...o,...oq->...q", mu, D)
    dd = d[..., :, None] * d[..., None, :]
    a1 = (alpha * (1.0 - alpha))[..., None, None]
    S = S - a1 * dd
    if agents is not None and agents > 1:
        M = np.einsum("...o,...oq,...or->...qr", mu, D, D)
        S = S + a1 / (agents - 1) * (M - dd)
    return np.asarray(S)


# --------------------------------------------------------------------------------------------
# Jacobian and Hessian of Phi_t along the flow
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Derivatives:
    """Along mu_bar (T+1, O): A, I (T, O, O) kernels at mu_bar_t, J (T, O, O), H (T, O, O, O)
    (None when not asked for), and how they were obtained ("exact" or "finite differences")."""

    A: Array
    I: Array
    J: Array
    H: Array | None
    method: str


def _stencil(O: int, hessian: bool) -> Array:
    """Offsets (P, O) in units of mu: centre, +-STEP_J e_j, and for the Hessian +-STEP_H e_j and
    (+-STEP_H e_j) + (+-STEP_H e_k), j < k."""
    eye = np.eye(O)
    rows = [np.zeros((1, O)), STEP_J * eye, -STEP_J * eye]
    if hessian:
        rows += [STEP_H * eye, -STEP_H * eye]
        j, k = np.triu_indices(O, 1)
        for sj in (1.0, -1.0):
            for sk in (1.0, -1.0):
                rows.append(STEP_H * (sj * eye[j] + sk * eye[k]))
    return np.concatenate(rows)


def derivatives(setting: Setting, policy: Policy, mu_bar: Array,
                hessian: bool = True) -> Derivatives:
    """J_t and (with ``hessian``) H_t of Phi_t at mu_bar_t for every step (module docstring)."""
    game = setting.game
    T, O = setting.T, game.n_obs
    alpha = np.asarray(setting.alpha, dtype=float)
    steps = np.arange(T)
    if game.static_dynamics and isinstance(policy, TabularPolicy):  # Phi_t linear: exact
        A, I = kernel_parts(setting, policy, mu_bar[:T, None], steps)
        A, I = A[:, 0], I[:, 0]
        J = np.swapaxes(_kernel(A, I, alpha), -1, -2)
        H = np.zeros((T, O, O, O)) if hessian else None
        return Derivatives(A=A, I=I, J=np.ascontiguousarray(J), H=H, method="exact")
    offsets = _stencil(O, hessian)
    Pn = offsets.shape[0]
    per_step = Pn * O * max(O * game.n_act, O)
    chunk = max(1, CHUNK // per_step)
    A = np.empty((T, O, O))
    I = np.empty((T, O, O))
    J = np.empty((T, O, O))
    H = np.empty((T, O, O, O)) if hessian else None
    for start in range(0, T, chunk):
        sl = slice(start, min(T, start + chunk))
        mu = mu_bar[sl][:, None, :] + offsets[None]                       # (n, P, O)
        Ak, Ik = kernel_parts(setting, policy, mu, steps[sl])
        K = _kernel(Ak, Ik, alpha[sl])                                    # (n, P, O, O)
        if not np.all(np.isfinite(K)):
            raise NumericalError(
                f"the game's kernels are not finite near the mean-field flow (steps "
                f"{sl.start}..{sl.stop - 1}, at distributions within {STEP_H:.1e} of it)",
                "the linear-noise prediction needs kernels defined and smooth in a "
                "neighbourhood of the simplex (docs/fluctuations.md)")
        A[sl], I[sl] = Ak[:, 0], Ik[:, 0]
        K0 = K[:, 0]
        Kp, Km = K[:, 1:1 + O], K[:, 1 + O:1 + 2 * O]                      # (n, j, o, i)
        dK = (Kp - Km) / (2 * STEP_J)
        m = mu_bar[sl]
        J[sl] = np.swapaxes(K0, -1, -2) + np.einsum("no,njoi->nij", m, dK)
        if H is not None:
            base = 1 + 2 * O
            Hp, Hm = K[:, base:base + O], K[:, base + O:base + 2 * O]
            second = np.empty((K.shape[0], O, O, O, O))                   # (n, j, k, o, i)
            diag = (Hp - 2 * K0[:, None] + Hm) / STEP_H ** 2
            idx = np.arange(O)
            second[:, idx, idx] = diag
            jj, kk = np.triu_indices(O, 1)
            npair = jj.size
            q = base + 2 * O
            pp, pm = K[:, q:q + npair], K[:, q + npair:q + 2 * npair]
            mp, mm = K[:, q + 2 * npair:q + 3 * npair], K[:, q + 3 * npair:q + 4 * npair]
            cross = (pp - pm - mp + mm) / (4 * STEP_H ** 2)
            second[:, jj, kk] = cross
            second[:, kk, jj] = cross
            H[sl] = np.einsum("nkji->nijk", dK) + np.einsum("njki->nijk", dK) + \
                np.einsum("no,njkoi->nijk", m, second)
    return Derivatives(A=A, I=I, J=J, H=H, method="finite differences")


# --------------------------------------------------------------------------------------------
# covariance, constants, bias
# --------------------------------------------------------------------------------------------
def initial_covariance(mu0: Array, init: str) -> Array:
    """C_0: the multinomial covariance diag(mu0) - mu0 mu0^T of iid draws, 0 when rounded."""
    if init == "rounded":
        return np.zeros((mu0.size, mu0.size))
    return np.diag(mu0) - np.outer(mu0, mu0)


def covariance(J: Array, S: Array, C0: Array, D: Array | None = None,
               q: Array | None = None, agents: int | None = None) -> Array:
    """C (T+1, O, O): C_{t+1} = J_t C_t J_t^T + S_t - q_t D_t^T C_t D_t / N (module docstring).

    J, S, D (T, O, O); q (T,) (the subset rule's alpha (N - B) / (N - 1); None: no such term).
    """
    T, O = J.shape[0], C0.shape[0]
    C = np.empty((T + 1, O, O))
    C[0] = C0
    exact = D is not None and q is not None and agents is not None
    qq = np.ascontiguousarray(q, dtype=float) if exact else np.zeros(T)
    DD = np.ascontiguousarray(D, dtype=float) if exact else np.zeros((T, O, O))
    _covariance_loop(np.ascontiguousarray(J, dtype=float), np.ascontiguousarray(S, dtype=float),
                     DD, qq, 1.0 / agents if exact else 0.0, C)  # type: ignore[operator]
    return C


def mean_constant(C: Array) -> float:
    """c_mean = mean_t sqrt(2/pi) sum_o sqrt(C_t(o, o)), the closed form of E mean_t ||Z_t||_1."""
    diag = np.clip(np.einsum("tii->ti", C), 0.0, None)
    return float(TWO_OVER_PI * np.sqrt(diag).sum(axis=1).mean())


def _factor(C: Array) -> Array:
    """L with L L^T = C for symmetric positive semi-definite C (..., O, O); negative round-off
    eigenvalues are set to 0."""
    w, V = np.linalg.eigh(C)
    return np.ascontiguousarray(V * np.sqrt(np.clip(w, 0.0, None))[..., None, :])


@nb.njit(types.void(types.float64[:, :, ::1], types.float64[:, :, ::1], types.float64[:, ::1],
                    types.float64[::1], types.float64[::1], types.int64[::1],
                    types.float64[:, ::1], types.float32[:, :, ::1], types.int64), cache=True)
def _paths(J: Array, L: Array, Z: Array, high: Array, total: Array, marks: np.ndarray,
           marked: Array, xi: np.ndarray, t0: int) -> None:  # pragma: no cover - compiled
    """Advance every path Z[m] (M, O) over the steps t0 .. t0 + n - 1 by Z <- J_t Z + L_t xi,
    with the normals xi (M, n, r) and L_t (T, O, r); keep per path the maximum ``high`` and
    the sum ``total`` of ||Z_t||_1 over the new Z_t, and ||Z_t||_1 at the steps ``marks``
    (increasing, t >= 1) in ``marked`` (M, len(marks))."""
    M, n, r = xi.shape
    O = Z.shape[1]
    K = marks.shape[0]
    new = np.empty(O)
    for m in range(M):
        best = high[m]
        acc_total = total[m]
        k = 0
        while k < K and marks[k] <= t0:
            k += 1
        for s in range(n):
            t = t0 + s
            norm = 0.0
            for i in range(O):
                acc = 0.0
                for j in range(O):
                    acc += J[t, i, j] * Z[m, j]
                for j in range(r):
                    acc += L[t, i, j] * xi[m, s, j]
                new[i] = acc
                norm += abs(acc)
            for i in range(O):
                Z[m, i] = new[i]
            if norm > best:
                best = norm
            acc_total += norm
            while k < K and marks[k] == t + 1:
                marked[m, k] = norm
                k += 1
        high[m] = best
        total[m] = acc_total


@nb.njit(types.void(types.float64[:, :, ::1], types.float64[:, :, ::1], types.float64[:, :, ::1],
                    types.float64[::1], types.float64, types.float64[:, :, ::1]), cache=True)
def _covariance_loop(J: Array, S: Array, D: Array, q: Array, inv_n: float,
                     C: Array) -> None:  # pragma: no cover - compiled
    """C[t+1] = J_t C_t J_t^T + S_t - q_t inv_n D_t^T C_t D_t, symmetrised (C[0] given)."""
    T, O = J.shape[0], J.shape[1]
    for t in range(T):
        nxt = J[t] @ C[t] @ J[t].T + S[t]
        if q[t] != 0.0:
            nxt = nxt - (q[t] * inv_n) * (D[t].T @ C[t] @ D[t])
        for i in range(O):
            for j in range(O):
                C[t + 1, i, j] = 0.5 * (nxt[i, j] + nxt[j, i])


def paths_for(T: int, samples: int = SAMPLES) -> int:
    """Monte Carlo paths for a horizon of T steps: ``samples``, fewer for long horizons (at
    most ``WORK`` path-steps), at least 100 (a standard error of about 1-2% of c_max)."""
    return int(min(samples, max(100, WORK // max(T, 1))))


def max_constant(J: Array, C: Array, rng: np.random.Generator,
                 samples: int = SAMPLES) -> tuple[float, float]:
    """c_max = E max_{t=0..T} ||Z_t||_1 by Monte Carlo over the Gaussian recursion, and its
    standard error. Z_0 ~ N(0, C_0), Z_{t+1} = J_t Z_t + xi_t, xi_t ~ N(0, C_{t+1} - J_t C_t
    J_t^T), each noise drawn in the rank of its covariance (O - 1 when mass is conserved).

    Control variates: ||Z_t||_1 at up to ``MARKS`` steps spread over the horizon and
    mean_t ||Z_t||_1, whose expectations are known in closed form (sqrt(2/pi) sum_o
    sqrt(C_t(o, o)), and c_mean); the maximum is regressed on them (least squares) and the
    residual's mean and standard error are reported. This cuts the error of a few hundred paths
    several times over (the maximum is nearly a function of the late norms).
    """
    T, O = J.shape[0], J.shape[1]
    noise_cov = C[1:] - np.einsum("tij,tjk,tlk->til", J, C[:-1], J)
    L = _factor(0.5 * (noise_cov + np.swapaxes(noise_cov, -1, -2)))
    if not np.any(L) and not np.any(C[0]):
        return 0.0, 0.0
    keep = np.flatnonzero(np.abs(L).max(axis=(0, 1)) > 0) if T else np.arange(0)
    L = np.ascontiguousarray(L[:, :, keep]) if T else np.zeros((0, O, 0))
    marks = np.unique(np.linspace(1, T, min(T, MARKS)).round().astype(np.int64)) if T \
        else np.zeros(0, dtype=np.int64)
    Z = np.ascontiguousarray(rng.standard_normal((samples, O)) @ _factor(C[0]).T)
    high = np.abs(Z).sum(axis=1)
    total = high.copy()
    marked = np.zeros((samples, marks.size))
    Jc = np.ascontiguousarray(J)
    r = L.shape[2]
    per = max(1, CHUNK // max(1, samples * r))  # steps of normals per draw (float32, 16 MB)
    for t0 in range(0, T, per):
        n = min(per, T - t0)
        xi = rng.standard_normal((samples, n, r), dtype=np.float32)
        _paths(Jc, L, Z, high, total, marks, marked, xi, t0)
    expected = TWO_OVER_PI * np.sqrt(np.clip(np.einsum("tii->ti", C[marks]), 0, None)).sum(1)
    Y = np.column_stack([marked - expected, total / (T + 1) - mean_constant(C)])
    Y = Y[:, Y.std(axis=0) > 1e-12 * (1.0 + np.abs(Y).max())]     # drop constant controls
    x = high
    if Y.shape[1] and samples > Y.shape[1] + 2:
        Yc = Y - Y.mean(axis=0)
        beta = np.linalg.lstsq(Yc, x - x.mean(), rcond=None)[0]
        adjusted = x - Y @ beta
        dof = samples - Y.shape[1] - 1
    else:
        adjusted, dof = x, samples - 1
    resid = adjusted - adjusted.mean()
    se = math.sqrt(float(resid @ resid) / max(dof, 1) / samples)
    return float(adjusted.mean()), se


def curvature_drift(setting: Setting, policy: Policy, mu_bar: Array, C: Array) -> Array:
    """(1/2) sum_{i,j} H_t[., i, j] C_t(i, j) (T, O) without forming H_t.

    With C_t = sum_k v_k v_k^T (v_k = sqrt(lambda_k) times the k-th eigenvector, r <= O - 1 of
    them), (1/2) H_t : C_t = (1/2) sum_k d^2 Phi_t(mu_bar_t + s v_k) / ds^2 at s = 0: one central
    second difference of Phi_t per direction (step ``STEP_H`` along the unit vector), 2 r + 1
    points per step instead of the O(O^2) of the full Hessian. 0 when Phi_t is linear (static
    dynamics, tabular policy).
    """
    game = setting.game
    T, O = setting.T, game.n_obs
    if game.static_dynamics and isinstance(policy, TabularPolicy):
        return np.zeros((T, O))
    alpha = np.asarray(setting.alpha, dtype=float)
    V = _factor(0.5 * (C[:T] + np.swapaxes(C[:T], -1, -2)))              # (T, O, O) columns v_k
    keep = np.flatnonzero(np.abs(V).max(axis=(0, 1)) > 0)
    V = V[:, :, keep]
    r = V.shape[2]
    if r == 0:
        return np.zeros((T, O))
    size = np.linalg.norm(V, axis=1)                                      # (T, r)
    unit = np.where(size[:, None, :] > 0, V / np.where(size > 0, size, 1.0)[:, None, :], 0.0)
    steps = np.arange(T)
    drift = np.empty((T, O))
    chunk = max(1, CHUNK // ((2 * r + 1) * O * max(O * game.n_act, O)))
    for start in range(0, T, chunk):
        sl = slice(start, min(T, start + chunk))
        u = np.swapaxes(unit[sl], 1, 2) * STEP_H                          # (n, r, O)
        mu = mu_bar[sl][:, None, :] + np.concatenate(
            [np.zeros((u.shape[0], 1, O)), u, -u], axis=1)                # (n, 2r+1, O)
        A, I = kernel_parts(setting, policy, mu, steps[sl])
        phi = np.einsum("npo,npoq->npq", mu, _kernel(A, I, alpha[sl]))
        second = (phi[:, 1:1 + r] + phi[:, 1 + r:] - 2 * phi[:, :1]) / STEP_H ** 2
        drift[sl] = 0.5 * np.einsum("nkq,nk->nq", second, size[sl] ** 2)
    if not np.all(np.isfinite(drift)):
        raise NumericalError("the game's kernels are not finite near the mean-field flow",
                             "the refined mean field needs kernels defined and smooth in a "
                             "neighbourhood of the simplex (docs/fluctuations.md)")
    return drift


def bias(J: Array, drift: Array, b0: Array) -> Array:
    """b (T+1, O): b_{t+1} = J_t b_t + drift_t, drift_t = (1/2) sum_{i,j} H_t[., i, j] C_t(i, j)
    (``curvature_drift``, or einsum("tkij,tij->tk", H, C[:-1]) / 2 from a full Hessian)."""
    T = J.shape[0]
    b = np.empty((T + 1, b0.size))
    b[0] = b0
    for t in range(T):
        b[t + 1] = J[t] @ b[t] + drift[t]
    return b


# --------------------------------------------------------------------------------------------
# everything along one flow
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fluctuations:
    """The Gaussian approximation of the N-agent flow of one policy in one setting.

    mu_bar (T+1, O) the mean-field flow; pi (T, O, A) the policy along it; S (T, O, O) the noise
    at mu_bar_t; C (T+1, O, O) the covariance of Z_t; b (T+1, O) the bias (None without the
    Hessian); J (T, O, O); ``method`` of the derivatives.
    """

    mu_bar: Array
    pi: Array
    J: Array
    S: Array
    C: Array
    b: Array | None
    method: str
    activation: str
    agents: int | None

    def sd(self, agents: int) -> Array:
        """The predicted standard deviation of mu_hat_t(o), sqrt(C_t(o, o) / N), (T+1, O)."""
        return np.asarray(np.sqrt(np.clip(np.einsum("tii->ti", self.C), 0.0, None) / agents))

    def refined(self, agents: int) -> Array:
        """mu_bar_t + b_t / N (T+1, O); mu_bar when there is no bias term."""
        return self.mu_bar if self.b is None else self.mu_bar + self.b / agents

    @property
    def c_mean(self) -> float:
        return mean_constant(self.C)


def fluctuations(setting: Setting, policy: Policy, activation: str = "subset",
                 init: str = "iid", refined: bool = True,
                 mu_bar: Array | None = None) -> Fluctuations:
    """S_t, J_t, C_t and (with ``refined``) b_t along the mean-field flow of ``policy``.

    ``setting.agents`` (when set) gives the subset rule's exact finite-N terms and the rounded
    start's offset b_0; ``mu_bar`` (T+1, O), when given, is the flow (else computed here).
    """
    game = setting.game
    T = setting.T
    alpha = np.asarray(setting.alpha, dtype=float)
    pi = on_flow(setting, policy)
    if mu_bar is None:
        mu_bar = mean_field_flow(setting, pi).mu
    N = setting.agents
    der = derivatives(setting, policy, mu_bar, hessian=False)
    S = noise(mu_bar[:T], der.A, der.I, alpha, activation, N)
    q = None
    if activation == "subset" and N is not None and N > 1:
        q = alpha * (N - alpha * N) / (N - 1)
    C0 = initial_covariance(np.asarray(game.mu0, dtype=float), init)
    C = covariance(der.J, S, C0, der.A - der.I, q, N)
    b = None
    if refined:
        b0 = np.zeros(game.n_obs)
        if init == "rounded" and N is not None:
            from tmfcli.simulation.counts import rounded_counts

            b0 = rounded_counts(game.mu0, N) - N * np.asarray(game.mu0, dtype=float)
        b = bias(der.J, curvature_drift(setting, policy, mu_bar, C), b0)
    if not (np.all(np.isfinite(C)) and (b is None or np.all(np.isfinite(b)))):
        raise NumericalError("the linear-noise covariance is not finite",
                             "check the game's kernels near the mean-field flow")
    return Fluctuations(mu_bar=mu_bar, pi=pi, J=der.J, S=S, C=C, b=b, method=der.method,
                        activation=activation, agents=N)


@dataclass(frozen=True)
class Prediction:
    """Predicted constants of one setting: e_max ~ c_max / sqrt(N) (Monte Carlo, standard
    error ``c_max_se`` over ``samples`` paths), e_mean ~ c_mean / sqrt(N) (closed form)."""

    fluct: Fluctuations
    c_max: float
    c_max_se: float
    c_mean: float
    samples: int


def unaffordable(setting: Setting) -> str | None:
    """Why the prediction of ``setting`` is skipped (None when it is not): it keeps several
    (T, O, O) arrays and costs T O^3, so T O^2 is limited to ``MAX_FLOATS``."""
    size = setting.T * setting.game.n_obs ** 2
    if size > MAX_FLOATS:
        return (f"T O^2 = {size:.3g} above {MAX_FLOATS:.0e} ({setting.T} steps, "
                f"{setting.game.n_obs} observations)")
    return None


def try_predict(setting: Setting, policy: Policy, seed: int | np.random.SeedSequence,
                activation: str = "subset", init: str = "iid", refined: bool = True,
                samples: int = SAMPLES,
                mu_bar: Array | None = None) -> tuple[Prediction | None, str]:
    """``predict``, or None and the reason when it is too large or the game does not allow it
    (kernels not finite near the flow): the commands annotate their measurements with it, and
    must not fail for it."""
    reason = unaffordable(setting)
    if reason is not None:
        return None, reason
    try:
        with np.errstate(all="ignore"):  # non-finite values are checked and reported
            return predict(setting, policy, seed, activation, init, refined, samples,
                           mu_bar), ""
    except (NumericalError, np.linalg.LinAlgError, FloatingPointError) as error:
        text = error.problem if isinstance(error, NumericalError) else str(error)
        return None, text


def predict(setting: Setting, policy: Policy, seed: int | np.random.SeedSequence,
            activation: str = "subset", init: str = "iid", refined: bool = True,
            samples: int = SAMPLES, mu_bar: Array | None = None) -> Prediction:
    """``fluctuations`` and the two constants; the Monte Carlo draws from ``seed`` alone and
    uses ``paths_for(T, samples)`` paths."""
    fl = fluctuations(setting, policy, activation, init, refined, mu_bar)
    paths = paths_for(setting.T, samples)
    c_max, se = max_constant(fl.J, fl.C, seeds.generator(seed, seeds.FLUCTUATION_PATHS), paths)
    return Prediction(fluct=fl, c_max=c_max, c_max_se=se, c_mean=fl.c_mean, samples=paths)


def return_correction(setting: Setting, policy: Policy, fl: Fluctuations) -> float:
    """The O(1/N) correction of the population-average return, times N:

        N (E G - J) ~ sum_t gamma^t [grad R_t(mu_bar_t) . b_t + (1/2) tr(Hess R_t C_t)],

    R_t(mu) = sum_o mu(o) [alpha_t sum_a pi(a|o,mu) r(o,a,mu) + (1 - alpha_t) r0(o,mu)]; the
    gradient term is a central difference along b_t, the trace the second differences along
    the factor columns of C_t (as in ``curvature_drift``). Needs the bias (``refined``)."""
    if fl.b is None:
        raise ValueError("the return correction needs the bias b_t (refined=True)")
    game = setting.game
    T, O = setting.T, game.n_obs
    alpha = np.asarray(setting.alpha, dtype=float)
    V = _factor(0.5 * (fl.C[:T] + np.swapaxes(fl.C[:T], -1, -2)))
    size = np.linalg.norm(V, axis=1)                                      # (T, O)
    unit = np.swapaxes(V / np.where(size > 0, size, 1.0)[:, None, :], 1, 2)  # (T, k, O)
    bn = np.linalg.norm(fl.b[:T], axis=1)
    bu = fl.b[:T] / np.where(bn > 0, bn, 1.0)[:, None]
    offsets = np.concatenate([np.zeros((T, 1, O)), STEP_J * bu[:, None], -STEP_J * bu[:, None],
                              STEP_H * unit, -STEP_H * unit], axis=1)     # (T, 3 + 2O, O)
    mu = fl.mu_bar[:T][:, None, :] + offsets
    steps = np.arange(T)
    pi = policy_probs(policy, mu, steps)
    if game.time_homogeneous:
        r, r0 = game.reward(mu, 0), game.idle_reward(mu, 0)
    else:
        r = np.stack([game.reward(mu[t], t) for t in range(T)])
        r0 = np.stack([game.idle_reward(mu[t], t) for t in range(T)])
    a = alpha[:, None, None]
    per = a * np.einsum("tpoa,tpoa->tpo", pi, r) + (1 - a) * r0
    R = np.einsum("tpo,tpo->tp", mu, per)                                 # (T, P)
    grad_b = bn * (R[:, 1] - R[:, 2]) / (2 * STEP_J)
    second = (R[:, 3:3 + O] + R[:, 3 + O:] - 2 * R[:, :1]) / STEP_H ** 2  # (T, O)
    per_step = grad_b + 0.5 * (second * size ** 2).sum(axis=1)
    return float((setting.gamma ** np.arange(T) * per_step).sum())


def target_agents(c_max: float, gap: float) -> int:
    """The smallest N with c_max / sqrt(N) <= gap: ceil((c_max / gap)^2) (at least 1)."""
    if not gap > 0 or not math.isfinite(gap):
        raise ValueError("the target gap must be a positive number")
    return max(1, math.ceil((c_max / gap) ** 2 - 1e-9))


def ratio_interval(estimate: float, ci_low: float, ci_high: float, predicted: float,
                   predicted_se: float) -> tuple[float, float, float]:
    """measured / predicted with a 95% interval that carries both errors.

    The measured mean's interval gives the sd of its logarithm, (log ci_high - log ci_low) /
    (2 * 1.96); the prediction's Monte Carlo standard error gives predicted_se / predicted; the
    two are independent and add in quadrature on the log scale. nan when either is not
    positive.
    """
    if not (estimate > 0 and ci_low > 0 and predicted > 0):
        return math.nan, math.nan, math.nan
    ratio = estimate / predicted
    s_meas = (math.log(ci_high) - math.log(ci_low)) / (2 * Z95)
    s_pred = predicted_se / predicted
    half = Z95 * math.hypot(s_meas, s_pred)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def constant_verdict(ratio_low: float, ratio_high: float,
                     tolerance: float = TOLERANCE) -> str:
    """The verdict on the predicted constant at a regime's largest N: "pass" when the ratio's
    95% interval meets [1 - tolerance, 1 + tolerance] (the data do not reject a prediction
    within the tolerance), else "fail: measured above" or "fail: measured below"; "n/a" when
    there is no ratio (no fluctuation)."""
    if not (math.isfinite(ratio_low) and math.isfinite(ratio_high)):
        return "n/a"
    if ratio_low > 1 + tolerance:
        return "fail: measured above"
    if ratio_high < 1 - tolerance:
        return "fail: measured below"
    return "pass"
