"""Evidence that the equilibrium is unique (MODEL.md section 3).

Two pieces: a sampled Lasry-Lions monotonicity probe of the rewards, and the spread between
equilibria reached from several random initial policies. What is unique is the flow, and the
policy where the flow puts mass, so the spread is measured on flows and on mu-weighted policies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.model.games import Game
from tmfcli.model.games.base import Array
from tmfcli.model.games.timed import TimedGame

CHUNK = 2_000_000  # kernel numbers evaluated at once by the probe (beach_bar n = 1000: one pair)


@dataclass(frozen=True)
class Probe:
    """Sampled Lasry-Lions form of the expected one-step reward of the representative agent,

        m_a(mu, nu) = sum_o (mu - nu)(o) [R_a(o,mu) - R_a(o,nu)],
        R_a(o,mu)   = alpha r(o,a,mu) + (1 - alpha) r0(o,mu),

    maximised over actions a, over pairs (mu, nu) drawn from a flat Dirichlet; for a timed
    game (MODEL.md section 9) R_a adds the time stage's reward r0(o, mu) at step t + 1 (where
    the crowd terms of the shipped timed games live). ``largest`` < 0
    on every sample is what strict monotonicity predicts; ``dynamics_vary`` is the largest
    change of P or P0 between the samples (0: dynamics do not depend on mu; not sampled for a
    game that declares static dynamics).
    """

    samples: int
    violations: int
    largest: float
    dynamics_vary: float


def monotonicity_probe(game: Game, alpha: float, rng: np.random.Generator,
                       samples: int = 256, t: int = 0) -> Probe:
    """Draw ``samples`` pairs (mu, nu) and evaluate the Lasry-Lions form at step t."""
    O = game.n_obs
    mu = rng.dirichlet(np.ones(O), size=samples)
    nu = rng.dirichlet(np.ones(O), size=samples)
    diff = mu - nu
    r_gap = game.reward(mu, t) - game.reward(nu, t)                     # (S, O, A)
    r0_gap = game.idle_reward(mu, t) - game.idle_reward(nu, t)           # (S, O)
    gap = alpha * r_gap + (1 - alpha) * r0_gap[..., None]
    if isinstance(game, TimedGame):  # the time stage after the decision: nobody decides
        gap = gap + (game.idle_reward(mu, t + 1) - game.idle_reward(nu, t + 1))[..., None]
    worst = np.einsum("so,soa->sa", diff, gap).max(axis=1)
    vary = 0.0  # dynamics declared static are checked by tmf validate, not here
    chunk = max(1, CHUNK // max(1, O * game.n_act * O))  # kernels of a few pairs at a time
    for i in range(0, 0 if game.static_dynamics else samples, chunk):
        a, b = mu[i:i + chunk], nu[i:i + chunk]
        vary = max(vary, float(np.abs(game.transition(a, t) - game.transition(b, t)).max()),
                   float(np.abs(game.idle_transition(a, t) - game.idle_transition(b, t)).max()))
    return Probe(samples=samples, violations=int((worst >= 0).sum()),
                 largest=float(worst.max()), dynamics_vary=float(vary))


def flow_distance(mu: Array, nu: Array) -> float:
    """max_{t<T} ||mu_t - nu_t||_1 (mu_T enters no reward, so it is not compared)."""
    return float(np.abs(mu[:-1] - nu[:-1]).sum(axis=1).max())


def policy_distance(pi: Array, rho: Array, mu: Array, nu: Array, r_last: Array,
                    alpha: Array | None = None) -> float:
    """max_t sum_o w_t(o) ||pi_t(.|o) - rho_t(.|o)||_1 with w = (mu + nu) / 2 (on the flows).

    At the last step an action only changes that step's reward, so observations where
    ``r_last`` (O, A) does not vary across actions are left out: any policy is optimal there.
    Steps where nobody acts (``alpha`` (T,) = 0: a timed game's time stages) are left out too.
    """
    T = pi.shape[0]
    weight = 0.5 * (mu[:T] + nu[:T])
    decisive = np.ptp(r_last, axis=-1) > 1e-12
    weight[-1] = np.where(decisive, weight[-1], 0.0)
    if alpha is not None:
        weight[np.asarray(alpha) == 0] = 0.0
    return float((weight * np.abs(pi - rho).sum(axis=-1)).sum(axis=1).max())


def random_policy(rng: np.random.Generator, T: int, O: int, A: int) -> Array:
    """A policy drawn uniformly from the simplex at every (t, o)."""
    return rng.dirichlet(np.ones(A), size=(T, O))
