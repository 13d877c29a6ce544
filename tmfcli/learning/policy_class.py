"""The population-aware policy class of ``tmf train`` (MODEL.md section 6):

    pi_theta(a | o, mu_hat) = softmax_a( theta[k(t), o, a] + sum_j W[o, a, j] mu_hat(j) )

theta (K, O, A), W (O, A, O); k(t) (T,) is the time index (``policy.time_rows``). The logits,
log-probabilities and the chain rule from logits to (theta, W) are
``tmfcli.model.policy.PopulationPolicy``'s; this module holds the parameters as the optimiser
moves them (``Params``) and the class of one setting (``PolicyClass``), which hands out the
``PopulationPolicy`` of given parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.model.games.base import Array
from tmfcli.model.policy import PopulationPolicy, time_rows
from tmfcli.model.setting import Setting


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

    def view(self, params: Params) -> PopulationPolicy:
        """The policy of ``params`` without copying them (for computing, not for keeping)."""
        return PopulationPolicy(theta=params.theta, W=params.W, index=self.index,
                                time_index=self.time_index)

    def probs(self, params: Params, mu: Array) -> Array:
        """pi (..., T, O, A) along distributions mu (..., T, O) (step t uses row k(t))."""
        return self.view(params).probs_along(mu)

    def chain(self, g: Array, mu: Array) -> Params:
        """Parameter gradient of a logit gradient g (..., T, O, A) along mu (..., T, O)."""
        theta, W = self.view(self.zeros()).gradient(g, mu)
        return Params(theta, W)


def entropy_gradient(pi: Array, weight: Array) -> Array:
    """weight (...) times the gradient of H(pi) = -sum_a pi log pi in the logits (..., A):
    dH/dz_a = -pi_a (log pi_a + H)."""
    logp = np.log(np.maximum(pi, 1e-300))
    H = -(pi * logp).sum(axis=-1, keepdims=True)
    return weight[..., None] * (-pi * (logp + H))


def on_flow_fast(cls: PolicyClass, params: Params, setting: Setting) -> Array:
    """``policy.on_flow`` of the class's policy, the time loop compiled (static kernels, or the
    game's compiled kernel; ``chain.policy_on_flow``): pi (T, O, A) along its own flow. Games
    without either take the numpy reference ``policy.on_flow``."""
    from tmfcli.simulation.chain import policy_on_flow

    return policy_on_flow(setting, cls.view(params))
