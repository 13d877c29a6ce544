"""The population-aware policy class of ``tmf train`` (MODEL.md section 6), vectorised:

    pi_theta(a | o, mu_hat) = softmax_a( theta[k(t), o, a] + sum_j W[o, a, j] mu_hat(j) )

theta (K, O, A), W (O, A, O); k(t) (T,) is the time index (``policy.time_rows``). Along many
distributions at once (mu (..., T, O), one per step) the logits are (..., T, O, A), and a
gradient g with respect to the logits (..., T, O, A) maps to the parameters by the chain rule:

    d theta[k, o, a] = sum_{t: k(t) = k} g_t(o, a),    d W[o, a, j] = sum_t g_t(o, a) mu_t(j)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.model.games.base import Array
from tmfcli.model.policy import PopulationPolicy, on_flow, time_rows
from tmfcli.model.setting import Setting
from tmfcli.model.values import softmax


@dataclass(frozen=True)
class Params:
    """theta (K, O, A) and W (O, A, O) of the policy class."""

    theta: Array
    W: Array

    def __add__(self, other: Params) -> Params:
        return Params(self.theta + other.theta, self.W + other.W)

    def scale(self, factor: float) -> Params:
        return Params(factor * self.theta, factor * self.W)

    def norm(self) -> float:
        return float(np.sqrt((self.theta ** 2).sum() + (self.W ** 2).sum()))


@dataclass(frozen=True)
class PolicyClass:
    """The class for one setting: its time index k(t) (T,) and number of rows K."""

    time_index: str
    index: np.ndarray
    n_obs: int
    n_act: int

    @classmethod
    def of(cls, setting: Setting, time_index: str) -> PolicyClass:
        index = time_rows(time_index, setting.alpha)
        return cls(time_index, index, setting.game.n_obs, setting.game.n_act)

    @property
    def rows(self) -> int:
        """K, the rows of theta."""
        return int(self.index.max()) + 1

    def zeros(self) -> Params:
        """theta = 0 and W = 0: the uniform policy."""
        O, A = self.n_obs, self.n_act
        return Params(np.zeros((self.rows, O, A)), np.zeros((O, A, O)))

    def policy(self, params: Params) -> PopulationPolicy:
        """The policy as the simulator and the policy files know it."""
        index = None if self.time_index == "step" else self.index
        return PopulationPolicy(theta=params.theta.copy(), W=params.W.copy(), index=index,
                                time_index=self.time_index)

    def probs(self, params: Params, mu: Array) -> Array:
        """pi (..., T, O, A) along distributions mu (..., T, O) (step t uses row k(t))."""
        T = self.index.shape[0]
        logits = params.theta[self.index] + np.einsum("oaj,...tj->...toa", params.W, mu[..., :T, :])
        return softmax(logits)

    def chain(self, g: Array, mu: Array) -> Params:
        """Parameter gradient of a logit gradient g (..., T, O, A) along mu (..., T, O)."""
        T = self.index.shape[0]
        g = g.reshape(-1, T, self.n_obs, self.n_act)
        mu = mu[..., :T, :].reshape(-1, T, self.n_obs)
        theta = np.zeros((self.rows, self.n_obs, self.n_act))
        np.add.at(theta, self.index, g.sum(axis=0))
        return Params(theta, np.einsum("rtoa,rtj->oaj", g, mu))


def entropy_gradient(pi: Array, weight: Array) -> Array:
    """weight (...) times the gradient of H(pi) = -sum_a pi log pi in the logits (..., A):
    dH/dz_a = -pi_a (log pi_a + H)."""
    logp = np.log(np.maximum(pi, 1e-300))
    H = -(pi * logp).sum(axis=-1, keepdims=True)
    return weight[..., None] * (-pi * (logp + H))


def on_flow_fast(cls: PolicyClass, params: Params, setting: Setting) -> Array:
    """``policy.on_flow`` of the class's policy, with static kernels evaluated once and the
    logits as one matrix-vector product per step: pi (T, O, A) along its own flow."""
    from tmfcli.model.flow import step

    game, T = setting.game, setting.T
    O, A = cls.n_obs, cls.n_act
    if not game.static_dynamics:
        return on_flow(setting, cls.policy(params))
    P = game.transition(game.mu0, 0)
    P0 = game.idle_transition(game.mu0, 0)
    W = params.W.reshape(O * A, O)
    pi = np.empty((T, O, A))
    mu = np.asarray(game.mu0, dtype=float)
    for t in range(T):
        z = params.theta[cls.index[t]] + (W @ mu).reshape(O, A)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        pi[t] = z / z.sum(axis=-1, keepdims=True)
        mu = step(mu, pi[t], P, P0, float(setting.alpha[t]))
    return pi
