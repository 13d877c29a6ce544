"""Policies of the N-agent system: time-indexed tables and population-aware softmax policies.

A policy maps the empirical distribution to action probabilities, batched over leading axes:

    probs(mu_hat (..., O), t) -> pi (..., O, A)      conditional pi(a | o, mu_hat); rows sum to 1

* ``TabularPolicy``: pi_t(a|o), ignores mu_hat (what ``tmf solve`` writes: ``policy.csv``).
* ``PopulationPolicy`` (project choice, MODEL.md section 1):

      pi_theta(a | o, mu_hat) = softmax_a( theta[t, o, a] + sum_j W[o, a, j] mu_hat(j) )

  with theta (K, O, A) and W (O, A, O); files: ``tmfcli.io.policy_files``. The time index
  k(t) is the step t (K = T, the default), the round floor(sum_{s<t} alpha_s) (K = rounds), or
  none (K = 1, stationary): ``time_rows``.

On the deterministic mean-field flow a population-aware policy is evaluated at mu_bar_t, which
gives a time-indexed policy (``on_flow``); every exact metric of the mean field applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tmfcli.errors import NumericalError, ResultsError
from tmfcli.model.flow import step
from tmfcli.model.games.base import Array
from tmfcli.model.setting import Setting

__all__ = ["TIME_INDICES", "Policy", "PopulationPolicy", "TabularPolicy", "check_shape",
           "on_flow", "shape_of", "time_rows", "uniform_policy"]


@runtime_checkable
class Policy(Protocol):
    """Anything that gives pi(a | o, mu_hat) at step t for a batch of distributions."""

    def probs(self, mu_hat: Array, t: int) -> Array:
        """mu_hat (..., O) -> pi (..., O, A), a conditional over actions."""
        ...


@dataclass(frozen=True)
class TabularPolicy:
    """A time-indexed policy pi (T, O, A); it does not look at the population."""

    pi: Array

    def probs(self, mu_hat: Array, t: int) -> Array:
        row = self.pi[t]
        return np.broadcast_to(row, mu_hat.shape[:-1] + row.shape)


TIME_INDICES = ("step", "round", "none")


def time_rows(time_index: str, alpha: Array) -> np.ndarray:
    """k(t) (T,) int: the row of theta used at step t, for alpha_t (T,).

    step: k = t; round: k = floor(sum_{s<t} alpha_s) (floor(t alpha) for a constant alpha, with
    a 1e-9 allowance for round-off), and a step where nobody acts (alpha_t = 0: a timed game's
    time stage) takes the row of the last decision before it, so that K counts the rounds in
    which agents decide; none: k = 0.
    """
    T = int(alpha.shape[0])
    if time_index == "step":
        return np.arange(T)
    if time_index == "round":
        elapsed = np.concatenate([[0.0], np.cumsum(alpha)[:-1]])
        rows = np.floor(elapsed + 1e-9).astype(np.int64)
        last = np.maximum.accumulate(np.where(np.asarray(alpha) > 0, np.arange(T), 0))
        return rows[last]
    if time_index == "none":
        return np.zeros(T, dtype=np.int64)
    raise ValueError(f"unknown time index {time_index!r}")


@dataclass(frozen=True)
class PopulationPolicy:
    """softmax_a(theta[k(t),o,a] + sum_j W[o,a,j] mu_hat(j)); theta (K, O, A), W (O, A, O).

    ``index`` (T,) holds k(t) (``time_rows``); None means k(t) = t (theta has T rows).
    ``time_index`` names the rule ("step", "round" or "none") for files and summaries.

    The one place where the class's logits, log-probabilities and gradient are written: the
    rollouts (``tmfcli.simulation.chain`` reads theta, W and k(t) as data; its compiled row,
    ``chain.policy_row``, is the compiled twin of ``probs``, tested through the compiled
    rollouts against the numpy ones), the learners (``tmfcli.learning``),
    the fluctuation theory of bound-check (``probs_at``), the policy files and
    ``simulate --policy`` all go through it. Along
    many distributions at once, mu (..., T, O) with one distribution per step, the logits are
    z (..., T, O, A), and a gradient g with respect to them maps to the parameters by the
    chain rule (``gradient``):

        d theta[k, o, a] = sum_{t: k(t) = k} g_t(o, a),    d W[o, a, j] = sum_t g_t(o, a) mu_t(j)
    """

    theta: Array
    W: Array
    index: np.ndarray | None = None
    time_index: str = "step"

    @property
    def steps(self) -> int:
        """T, the number of steps the policy covers."""
        return int(self.theta.shape[0] if self.index is None else self.index.shape[0])

    def row(self, t: int) -> int:
        return t if self.index is None else int(self.index[t])

    def rows(self, T: int | None = None) -> np.ndarray:
        """k(t) for t = 0..T-1 (T,) int64 (default T: ``steps``)."""
        T = self.steps if T is None else T
        return np.arange(T, dtype=np.int64) if self.index is None \
            else np.asarray(self.index[:T], dtype=np.int64)

    def logits(self, mu_hat: Array, t: int) -> Array:
        """theta[k(t)] + W mu_hat, shape (..., O, A)."""
        return self.theta[self.row(t)] + np.einsum("oaj,...j->...oa", self.W, mu_hat)

    def probs(self, mu_hat: Array, t: int) -> Array:
        return self.softmax(self.logits(mu_hat, t))

    def logits_along(self, mu: Array) -> Array:
        """z (..., T, O, A) along distributions mu (..., T', O), T' >= T: step t uses k(t)."""
        T = self.steps
        return self.theta[self.rows()] + np.einsum("oaj,...tj->...toa", self.W, mu[..., :T, :])

    def probs_along(self, mu: Array) -> Array:
        """pi (..., T, O, A) along mu (..., T', O)."""
        return self.softmax(self.logits_along(mu))

    def logits_at(self, mu: Array, steps: np.ndarray) -> Array:
        """z (n, P, O, A) at points mu (n, P, O), the P points of batch i at step steps[i]
        (steps (n,) int): theta[k(steps[i])] + W mu."""
        rows = steps if self.index is None else np.asarray(self.index)[steps]
        return self.theta[rows][:, None] + np.einsum("oaj,npj->npoa", self.W, mu)

    def probs_at(self, mu: Array, steps: np.ndarray) -> Array:
        """pi (n, P, O, A) at points mu (n, P, O) of the steps ``steps`` (n,)."""
        return self.softmax(self.logits_at(mu, steps))

    def log_probs_along(self, mu: Array) -> Array:
        """log pi (..., T, O, A) along mu (..., T', O) (z minus its log-sum-exp)."""
        z = self.logits_along(mu)
        top = z.max(axis=-1, keepdims=True)
        return z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True))

    def gradient(self, g: Array, mu: Array) -> tuple[Array, Array]:
        """(d theta (K, O, A), d W (O, A, O)) of a logit gradient g (..., T, O, A) along
        mu (..., T', O): the chain rule of the class docstring."""
        T, (K, O, A) = self.steps, self.theta.shape
        g = g.reshape(-1, T, O, A)
        mu = mu[..., :T, :].reshape(-1, T, O)
        theta = np.zeros((K, O, A))
        np.add.at(theta, self.rows(), g.sum(axis=0))
        return theta, np.einsum("rtoa,rtj->oaj", g, mu)

    def log_prob_gradient(self, a: int, o: int, mu_hat: Array, t: int) -> tuple[Array, Array]:
        """The gradient of log pi(a | o, mu_hat) at step t in (theta, W): e_a - pi(.|o) at
        theta[k(t), o] and (e_a - pi(.|o)) mu_hat^T at W[o] (d log pi_a / dz = e_a - pi)."""
        pi = self.probs(mu_hat, t)[o]
        g = -pi
        g[a] += 1.0
        theta = np.zeros_like(self.theta)
        theta[self.row(t), o] = g
        W = np.zeros_like(self.W)
        W[o] = g[:, None] * mu_hat[None, :]
        return theta, W

    @staticmethod
    def softmax(z: Array) -> Array:
        """softmax over the last axis (..., A)."""
        z = np.exp(z - z.max(axis=-1, keepdims=True))  # shift: exp never overflows
        return z / z.sum(axis=-1, keepdims=True)


def shape_of(policy: Policy) -> tuple[int, int, int] | None:
    """(T, O, A) of a known policy type, None for other implementations of the protocol."""
    if isinstance(policy, TabularPolicy):
        T, O, A = policy.pi.shape
        return int(T), int(O), int(A)
    if isinstance(policy, PopulationPolicy):
        _, O, A = policy.theta.shape
        return policy.steps, int(O), int(A)
    return None


def uniform_policy(n_obs: int, n_act: int, T: int) -> TabularPolicy:
    """pi_t(a|o) = 1/A everywhere."""
    return TabularPolicy(np.full((T, n_obs, n_act), 1.0 / n_act))


def on_flow(setting: Setting, policy: Policy) -> Array:
    """The time-indexed policy pi_t = policy(. | ., mu_bar_t) (T, O, A) along its own flow.

    mu_bar_0 = mu0 and mu_bar_{t+1} = Phi_t(mu_bar_t) with pi_t evaluated at mu_bar_t; for a
    ``TabularPolicy`` this is the table itself. The flow of the returned pi is mu_bar.
    """
    check_shape(policy, setting)
    if isinstance(policy, TabularPolicy):
        return np.asarray(policy.pi, dtype=float)
    game, T = setting.game, setting.T
    pi = np.empty((T, game.n_obs, game.n_act))
    mu = np.asarray(game.mu0, dtype=float)
    for t in range(T):
        pi[t] = policy.probs(mu, t)
        mu = step(mu, pi[t], game.transition(mu, t), game.idle_transition(mu, t),
                  float(setting.alpha[t]))
    if not np.all(np.isfinite(pi)) or np.abs(pi.sum(axis=-1) - 1).max() > 1e-9:
        raise NumericalError("the policy gave probabilities that do not sum to 1 on the flow",
                             "check the policy's logits and weights for overflow")
    return pi


def check_shape(policy: Policy, setting: Setting) -> None:
    """A tabular policy must have the setting's (T, O, A); ``ResultsError`` otherwise."""
    shape = shape_of(policy)
    need = (setting.T, setting.game.n_obs, setting.game.n_act)
    if shape is not None and shape != need:
        raise ResultsError(f"the policy has shape (T={shape[0]}, O={shape[1]}, A={shape[2]}) "
                           f"but the spec needs (T={need[0]}, O={need[1]}, A={need[2]})",
                           "use a policy of the same game and horizon")
