"""The reference bound on the finite-population gap (MODEL.md section 5) and its constants.

Pathwise, with d_t = mu_hat_t - mu_bar_t and the martingale increment M_{t+1} = mu_hat_{t+1} -
Phi_t(mu_hat_t), ||d_{t+1}||_1 <= l_t ||d_t||_1 + ||M_{t+1}||_1 where Phi_t is l_t-Lipschitz,

    l_t = 1 + alpha_t (L_pi + L_P) + (1 - alpha_t) L_0,

so, taking expectations (E||M||_1 <= sqrt(3|O|/N), E||d_0||_1 <= e0),

    b_t = (prod_{r<t} l_r) e0 + sqrt(3|O|/N) sum_{s=1..t} prod_{r=s..t-1} l_r.

The pathwise right-hand side is nondecreasing in t (l_r >= 1), hence it also bounds the
maximum over t: E max_t ||d_t||_1 <= b_T and E mean_t ||d_t||_1 <= mean_t b_t.
e0 = sqrt(|O|/N) for iid initial draws; for the deterministic rounding e0 = 0 when N mu0 is
integral and |O|/N otherwise (every count is off by less than one agent).

Lipschitz constants are L1 in mu: sup_{o,a} ||P(o,a,.;mu) - P(o,a,.;nu)||_1 <= L_P ||mu - nu||_1,
likewise L_0 for P0 and L_pi for a population-aware policy. Analytic when the game declares them
(``Game.lipschitz()``), else a sampled estimate: the largest ratio over random pairs, which is a
lower estimate of the true constant and therefore reported as "sampled".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tmfcli.analysis.fit import loglog_slope
from tmfcli.model.games.base import Array, Game, Lipschitz

SLOPE = -0.5  # the rate the verdict asks for: O(1/sqrt N)


@dataclass(frozen=True)
class Constants:
    """The constants entering l_t, and where they come from ("analytic" or "sampled")."""

    L_P: float
    L_0: float
    L_pi: float = 0.0
    source: str = "analytic"
    policy_source: str = "tabular"


# --------------------------------------------------------------------------------------------
# Lipschitz constants
# --------------------------------------------------------------------------------------------
def sample_pairs(n_obs: int, rng: np.random.Generator, pairs: int) -> tuple[Array, Array]:
    """Pairs (mu, nu) (pairs, O): far pairs, near pairs, and near pairs close to the faces.

    Kernels often vary fastest where some mu(o) is small (e.g. s / (s + mu(q))), so a third of
    the pairs start near a vertex of the simplex and move a little mass to one observation.
    """
    third = max(1, pairs // 3)
    mu_far = rng.dirichlet(np.ones(n_obs), size=third)
    nu_far = rng.dirichlet(np.ones(n_obs), size=third)
    base = np.concatenate([rng.dirichlet(np.ones(n_obs), size=third),
                           rng.dirichlet(np.full(n_obs, 0.1), size=third)])
    target = np.eye(n_obs)[rng.integers(0, n_obs, size=base.shape[0])]
    eps = 10.0 ** rng.uniform(-6, -2, size=(base.shape[0], 1))
    near = (1 - eps) * base + eps * target
    return np.concatenate([mu_far, base]), np.concatenate([nu_far, near])


def _ratio(kernel: Callable[[Array, int], Array], mu: Array, nu: Array, t: int) -> float:
    """max over pairs of sup over rows ||K(row;mu) - K(row;nu)||_1 / ||mu - nu||_1."""
    dist = np.abs(mu - nu).sum(axis=-1)
    keep = dist > 1e-8  # closer pairs measure round-off, not the kernel
    gap = np.abs(kernel(mu[keep], t) - kernel(nu[keep], t)).sum(axis=-1)  # (S, rows...)
    rows = gap.reshape(gap.shape[0], -1).max(axis=1)
    return float((rows / dist[keep]).max(initial=0.0))


def sampled_lipschitz(game: Game, rng: np.random.Generator, pairs: int = 600,
                      times: tuple[int, ...] = (0,)) -> Lipschitz:
    """Sampled L_P and L_0: the largest ratio over random pairs and the steps ``times``."""
    mu, nu = sample_pairs(game.n_obs, rng, pairs)
    L_P = max(_ratio(game.transition, mu, nu, t) for t in times)
    L_0 = max(_ratio(game.idle_transition, mu, nu, t) for t in times)
    return Lipschitz(L_P=L_P, L_0=L_0)


def game_constants(game: Game, rng: np.random.Generator,
                   times: tuple[int, ...] = (0,)) -> tuple[Lipschitz, str]:
    """The game's analytic constants when declared, else a sampled estimate; and which."""
    declared = game.lipschitz()
    if declared is not None:
        return declared, "analytic"
    return sampled_lipschitz(game, rng, times=times), "sampled"


def sampled_policy_lipschitz(probs: Callable[[Array, int], Array], n_obs: int,
                             rng: np.random.Generator, times: tuple[int, ...],
                             pairs: int = 600) -> float:
    """Sampled L_pi of a population-aware policy: sup_o ||pi(.|o,mu) - pi(.|o,nu)||_1 ratio."""
    mu, nu = sample_pairs(n_obs, rng, pairs)
    return max(_ratio(probs, mu, nu, t) for t in times)


# --------------------------------------------------------------------------------------------
# the bound
# --------------------------------------------------------------------------------------------
def initial_error(n_obs: int, agents: int, init: str, mu0: Array | None = None) -> float:
    """Bound e0 on E||mu_hat_0 - mu0||_1 for ``init`` = "iid" or "rounded"."""
    if init == "iid":
        return float(np.sqrt(n_obs / agents))
    if mu0 is not None:
        scaled = agents * np.asarray(mu0, dtype=float)
        if np.abs(scaled - np.round(scaled)).max() < 1e-9:
            return 0.0
    return min(2.0, n_obs / agents)


def reference_bound(alpha: Array, constants: Constants, n_obs: int, agents: int,
                    e0: float) -> Array:
    """b_t (T+1,) of the module docstring, for active fractions ``alpha`` (T,).

    Computed with cumulative logarithms C_t = sum_{r<t} log l_r, so that
    b_t = exp(C_t) (e0 + m sum_{s=1..t} exp(-C_s)), m = sqrt(3|O|/N); a bound that overflows
    is +inf (it says nothing, which is what an exploding product of constants means).
    """
    alpha = np.asarray(alpha, dtype=float)
    c = constants
    log_l = np.log1p(alpha * (c.L_pi + c.L_P) + (1.0 - alpha) * c.L_0)
    C = np.concatenate([[0.0], np.cumsum(log_l)])  # (T+1,)
    m = np.sqrt(3.0 * n_obs / agents)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        inner = e0 + m * np.concatenate([[0.0], np.cumsum(np.exp(-C[1:]))])
        bound = np.exp(C) * inner
    return np.where(np.isnan(bound), np.inf, bound)


# --------------------------------------------------------------------------------------------
# the verdict
# --------------------------------------------------------------------------------------------
def max_allowance(agents: Array, steps: Array) -> float:
    """How much flatter than -1/2 the e_max slope may be because T itself grows with N.

    e_max is a maximum over the T + 1 steps of a run. Fluctuations of size ~1/sqrt N observed
    at T steps have an expected maximum ~sqrt(log T / N) (sub-Gaussian maxima), so when T grows
    with N (a horizon in rounds, small B) O(1/sqrt N) predicts the log-log slope of
    sqrt(log T) / sqrt N, i.e. -1/2 plus the least-squares slope of (1/2) log log T against
    log N over the same grid. With a horizon in steps T is the same at every N and the
    allowance is exactly 0.
    """
    T = np.maximum(np.asarray(steps, dtype=float), 2.0)
    return float(loglog_slope(np.asarray(agents, dtype=float), np.sqrt(np.log(T))))


def verdict(ci_low: float, ci_high: float, worst_ratio: float, allowance: float = 0.0) -> str:
    """Pass when the e_max slope interval reaches -1/2 (+ ``allowance``, see ``max_allowance``)
    or below, and e_max <= bound at every N.

    ``ci_low <= -1/2 + allowance`` means the measured rate is compatible with O(1/sqrt N) or
    faster; a whole interval below -1/2 is still a pass, and is expected in steps with small B
    (only B agents move per step, so over a fixed number of steps the gap shrinks like
    sqrt(B)/N).
    """
    problems = []
    if not worst_ratio <= 1.0:
        problems.append("above bound")
    if not ci_low <= SLOPE + allowance:
        problems.append("flatter than -1/2")
    if problems:
        return "fail: " + ", ".join(problems)
    if ci_high < SLOPE:
        return "pass (steeper than -1/2)"
    return "pass"


def passed(text: str) -> bool:
    return text.startswith("pass")
