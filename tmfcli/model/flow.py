"""The mean-field flow (TMF recursion, MODEL.md section 2), with the model frozen along it.

    K_t(o, o') = alpha_t sum_a pi_t(a|o) P(o'|o,a,mu_t) + (1 - alpha_t) P0(o'|o,mu_t)
    mu_{t+1}   = sum_o mu_t(o) K_t(o, .)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.errors import NumericalError
from tmfcli.model.games.base import Array
from tmfcli.model.setting import Setting


@dataclass(frozen=True)
class Flow:
    """A flow mu (T+1, O) and the kernels and rewards evaluated on it.

    P (T, O, A, O), P0 (T, O, O), r (T, O, A), r0 (T, O) are the model at (mu_t, t); for games
    with static dynamics P and P0 are read-only broadcast views of one array.
    """

    mu: Array
    P: Array
    P0: Array
    r: Array
    r0: Array
    alpha: Array


def frozen_model(setting: Setting, mu: Array) -> Flow:
    """Evaluate kernels and rewards along a given flow mu (T+1, O), batched over t."""
    game, T = setting.game, setting.T
    head = mu[:T]
    if game.static_dynamics:
        P1 = game.transition(mu[0], 0)
        P = np.broadcast_to(P1, (T, *P1.shape))
        P0 = np.broadcast_to(game.idle_transition(mu[0], 0), (T, game.n_obs, game.n_obs))
    else:
        P = np.stack([game.transition(head[t], t) for t in range(T)])
        P0 = np.stack([game.idle_transition(head[t], t) for t in range(T)])
    r = np.stack([game.reward(head[t], t) for t in range(T)])
    r0 = np.stack([game.idle_reward(head[t], t) for t in range(T)])
    return Flow(mu=mu, P=P, P0=P0, r=r, r0=r0, alpha=setting.alpha)


def step(mu: Array, pi: Array, P: Array, P0: Array, alpha: float) -> Array:
    """One step of the recursion, batched over leading axes of mu (..., O).

    The active mass is the joint mu(o) pi(a|o) (..., O*A) times P viewed as (..., O*A, O): one
    (batched) matrix-vector product, which is several times faster than a three-way einsum.
    """
    O, A = pi.shape[-2:]
    joint = (mu[..., :, None] * pi).reshape(*mu.shape[:-1], 1, O * A)
    moved = np.matmul(joint, P.reshape(*P.shape[:-3], O * A, O))[..., 0, :]
    if alpha == 1.0:
        return moved
    stayed = np.matmul(mu[..., None, :], P0)[..., 0, :]
    return alpha * moved + (1.0 - alpha) * stayed


def mean_field_flow(setting: Setting, pi: Array, check: bool = True) -> Flow:
    """The flow of the time-indexed policy pi (T, O, A) from mu0, and the model along it.

    With ``check`` the mass of every mu_t is verified to be 1 (to 1e-9) and non-negative.
    """
    game, T = setting.game, setting.T
    mu = np.empty((T + 1, game.n_obs))
    mu[0] = game.mu0
    static = game.static_dynamics
    if static:
        P_static = game.transition(game.mu0, 0)
        P0_static = game.idle_transition(game.mu0, 0)
    for t in range(T):
        P = P_static if static else game.transition(mu[t], t)
        P0 = P0_static if static else game.idle_transition(mu[t], t)
        mu[t + 1] = step(mu[t], pi[t], P, P0, float(setting.alpha[t]))
    if check:
        mass = mu.sum(axis=1)
        if not np.all(np.isfinite(mu)) or np.abs(mass - 1).max() > 1e-9 or mu.min() < -1e-12:
            raise NumericalError("the mean-field flow left the simplex (mass "
                                 f"{mass.min():.12g}..{mass.max():.12g})",
                                 "check that the game's kernels are stochastic")
    return frozen_model(setting, mu)
