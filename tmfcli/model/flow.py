"""The mean-field flow (TMF recursion, MODEL.md section 2), with the model frozen along it.

    K_t(o, o') = alpha_t sum_a pi_t(a|o) P(o'|o,a,mu_t) + (1 - alpha_t) P0(o'|o,mu_t)
    mu_{t+1}   = sum_o mu_t(o) K_t(o, .)

Two paths compute it. The reference loops over t in Python and calls the game at every step
(``fast=False``); the accelerated path (the default, ``tmfcli.model.compiled``) runs the time
loop compiled, on sparse static kernels or on the game's compiled kernel when the dynamics
depend on mu, and evaluates the rewards along the flow in one batched call. Games with
mu-dependent dynamics and no compiled kernel always take the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tmfcli.errors import NumericalError
from tmfcli.model.games.base import Array, Game
from tmfcli.model.games.checks import check_table
from tmfcli.model.setting import Setting

if TYPE_CHECKING:
    from tmfcli.model.compiled import SparseKernels


@dataclass(frozen=True)
class Flow:
    """A flow mu (T+1, O) and the kernels and rewards evaluated on it.

    P (T, O, A, O), P0 (T, O, O), r (T, O, A), r0 (T, O) are the model at (mu_t, t); for games
    with static dynamics P and P0 are read-only broadcast views of one array. ``sparse`` holds
    the same kernels in the form the compiled backward pass reads (accelerated path only).
    """

    mu: Array
    P: Array
    P0: Array
    r: Array
    r0: Array
    alpha: Array
    sparse: SparseKernels | None = None


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


def frozen_rewards(setting: Setting, mu: Array) -> tuple[Array, Array]:
    """r (T, O, A) and r0 (T, O) along mu (T+1, O) (``rewards_at`` steps 0..T-1)."""
    T = setting.T
    return rewards_at(setting.game, mu[:T], np.arange(T))


def rewards_at(game: Game, mu: Array, steps: np.ndarray) -> tuple[Array, Array]:
    """r (..., L, O, A) and r0 (..., L, O) at distributions mu (..., L, O), step ``steps[l]``
    for the l-th: one batched call per phase when the game is periodic in t (``Game.phases``;
    one call when time-homogeneous), else one call per step."""
    k = game.phases
    L = mu.shape[-2]
    if k == 1:
        return (np.ascontiguousarray(game.reward(mu, 0), dtype=np.float64),
                np.ascontiguousarray(game.idle_reward(mu, 0), dtype=np.float64))
    r = np.empty((*mu.shape, game.n_act))
    r0 = np.empty(mu.shape)
    if k == 0:
        for j in range(L):
            r[..., j, :, :] = game.reward(mu[..., j, :], int(steps[j]))
            r0[..., j, :] = game.idle_reward(mu[..., j, :], int(steps[j]))
        return r, r0
    for phase in range(k):
        js = np.flatnonzero(np.asarray(steps) % k == phase)
        if js.size:
            r[..., js, :, :] = game.reward(mu[..., js, :], phase)
            r0[..., js, :] = game.idle_reward(mu[..., js, :], phase)
    return r, r0


def _accelerated(setting: Setting, pi: Array) -> Flow:
    from tmfcli.model import compiled

    game, T = setting.game, setting.T
    O, A = game.n_obs, game.n_act
    mu, kernels = compiled.flow(game, pi, setting.alpha)
    if game.static_dynamics:
        P = np.broadcast_to(game.transition(game.mu0, 0), (T, O, A, O))
        P0 = np.broadcast_to(game.idle_transition(game.mu0, 0), (T, O, O))
    else:  # the per-step kernels the compiled loop wrote
        P = kernels.values.reshape(T, O, A, O)
        P0 = kernels.values0.reshape(T, O, O)
    r, r0 = frozen_rewards(setting, mu)
    return Flow(mu=mu, P=P, P0=P0, r=r, r0=r0, alpha=setting.alpha, sparse=kernels)


def mean_field_flow(setting: Setting, pi: Array, check: bool = True, fast: bool = True) -> Flow:
    """The flow of the time-indexed policy pi (T, O, A) from mu0, and the model along it.

    With ``check`` the mass of every mu_t is verified to be 1 (to 1e-9) and non-negative.
    ``fast`` takes the accelerated path when the game allows it; ``fast=False`` is the
    pure-numpy reference.
    """
    game, T = setting.game, setting.T
    if pi.shape != (T, game.n_obs, game.n_act):
        raise ValueError(f"a policy of shape {pi.shape} for a setting of shape "
                         f"{(T, game.n_obs, game.n_act)} (T steps: twice the decision steps "
                         "for a timed game)")
    if fast and accelerated(game):
        flow = _accelerated(setting, pi)
        if check:
            check_model(game, flow)
        return flow
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
    flow = frozen_model(setting, mu)
    if check:
        check_model(game, flow)
    return flow


def accelerated(game: Game) -> bool:
    """Whether the accelerated path can evaluate ``game``: static dynamics, or mu-dependent
    dynamics with a compiled kernel."""
    return game.static_dynamics or game.compiled_dynamics() is not None


def check_model(game: Game, flow: Flow) -> None:
    """The kernels and rewards the flow evaluated, checked where they were evaluated
    (``checks.check_table``): a game whose kernel stops being stochastic (or a reward finite)
    at a distribution the probes of ``tmf validate`` missed is stopped here, with the entry,
    the step and the distribution named, instead of a flow that silently loses mass. Then the
    mass of mu. One pass over arrays the evaluation already holds (static kernels: one step)."""
    T, O, A = flow.r.shape
    steps = np.arange(T)
    for table, values, shape in (("P", flow.P, (O, A, O)), ("P0", flow.P0, (O, O)),
                                 ("r", flow.r, (O, A)), ("r0", flow.r0, (O,))):
        kernel = table in ("P", "P0")
        k = 1 if kernel and game.static_dynamics else T
        check_table(game, table, np.asarray(values[:k]), shape, flow.mu[:k], kernel, steps[:k])
    _check_mass(flow.mu)


def _check_mass(mu: Array) -> None:
    mass = mu.sum(axis=1)
    if not np.all(np.isfinite(mu)) or np.abs(mass - 1).max() > 1e-9 or mu.min() < -1e-12:
        raise NumericalError("the mean-field flow left the simplex (mass "
                             f"{mass.min():.12g}..{mass.max():.12g})",
                             "check that the game's kernels are stochastic")
