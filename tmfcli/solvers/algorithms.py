"""The four equilibrium solvers, each an initial state and one step (see ``loop.run``).

All act on time-indexed tabular policies pi (T, O, A) and read what they need from the
``Evaluation`` of the current policy that the loop has already computed (flow, Q of the policy,
best response), so no algorithm evaluates a policy twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.exploitability import Evaluation
from tmfcli.flow import mean_field_flow
from tmfcli.games.base import Array
from tmfcli.params import param
from tmfcli.setting import Setting
from tmfcli.values import backward, softmax


def _logits(policy: Array) -> Array:
    """log pi with zeros mapped to a large negative number (softmax(logits) == pi)."""
    return np.log(np.maximum(policy, 1e-300))


@dataclass(frozen=True)
class PolicyState:
    policy: Array


@dataclass(frozen=True)
class LogitState:
    policy: Array
    logits: Array


@dataclass(frozen=True)
class FixedPoint:
    """Damped fixed point: pi <- (1 - d) pi + d BR(mu^pi).

    With d = 1 this is the plain best-response iteration, which cycles on most games; a fixed
    d > 0 leaves an oscillation of size ~d around the equilibrium unless tau > 0 smooths BR.
    """

    damping: float = param(0.1, "weight d of the new best response", low=0, high=1,
                           low_open=True)

    def init(self, setting: Setting, policy0: Array) -> PolicyState:
        return PolicyState(policy0)

    def step(self, setting: Setting, state: PolicyState, ev: Evaluation, k: int) -> PolicyState:
        d = self.damping
        return PolicyState((1 - d) * state.policy + d * ev.best.policy)


@dataclass(frozen=True)
class FictitiousPlay:
    """Fictitious play: the flow is the running average of best-response flows.

    The averaged policy is the mixture weighted by each flow's mass at (t, o), so that for games
    with mu-independent dynamics its flow is exactly the average of the flows (for any alpha_t,
    because the recursion is linear in mu_t(o) pi_t(a|o)).
    """

    def init(self, setting: Setting, policy0: Array) -> PolicyState:
        return PolicyState(policy0)

    def step(self, setting: Setting, state: PolicyState, ev: Evaluation, k: int) -> PolicyState:
        weight = 1.0 / (k + 2)
        br = ev.best.policy
        T = setting.T
        old_mass = (1 - weight) * ev.flow.mu[:T, :, None]
        new_mass = weight * mean_field_flow(setting, br, check=False).mu[:T, :, None]
        total = old_mass + new_mass
        mixed = (1 - weight) * state.policy + weight * br  # where neither flow has mass
        safe = np.where(total > 0, total, 1.0)
        policy = np.where(total > 0, (old_mass * state.policy + new_mass * br) / safe, mixed)
        return PolicyState(policy)


@dataclass(frozen=True)
class MirrorDescent:
    """Online mirror descent: y <- (1 - eta tau) y + eta Q^pi(mu^pi), pi = softmax(y).

    With tau = 0 the logits accumulate the Q-functions of the iterates; with tau > 0 the fixed
    point is pi = softmax(Q / tau), the regularised equilibrium (needs eta tau < 1).
    """

    learning_rate: float = param(1.0, "step size eta", low=0, low_open=True)

    def init(self, setting: Setting, policy0: Array) -> LogitState:
        return LogitState(policy0, _logits(policy0))

    def step(self, setting: Setting, state: LogitState, ev: Evaluation, k: int) -> LogitState:
        eta = self.learning_rate
        logits = (1 - eta * setting.tau) * state.logits + eta * ev.own.Q
        return LogitState(softmax(logits), logits)


@dataclass(frozen=True)
class TmfPG:
    """Exact TMF-PG (MODEL.md section 6): freeze the flow of the current policy, then take
    ``inner_steps`` softmax policy-gradient steps on it.

    The gradient of J in the logit theta[t,o,a] on the frozen flow is
    mu_t(o) alpha_t pi_t(a|o) (Q_t(o,a) - sum_b pi_t(b|o) Q_t(o,b)) (entropy terms added when
    tau > 0). With ``natural`` the factor mu_t(o) alpha_t pi_t(a|o) is dropped (the natural
    gradient of the softmax family), which moves unvisited states as fast as visited ones.
    """

    learning_rate: float = param(1.0, "step size on the logits", low=0, low_open=True)
    inner_steps: int = param(10, "policy-gradient steps per frozen flow", low=1)
    natural: bool = param(False, "use the natural gradient (drop the mu alpha pi weights)")

    def init(self, setting: Setting, policy0: Array) -> LogitState:
        return LogitState(policy0, _logits(policy0))

    def step(self, setting: Setting, state: LogitState, ev: Evaluation, k: int) -> LogitState:
        flow, tau = ev.flow, setting.tau
        weight = flow.mu[: setting.T, :, None] * setting.alpha[:, None, None]
        logits, policy, Q = state.logits, state.policy, ev.own.Q
        for j in range(self.inner_steps):
            if j > 0:
                Q = backward(flow, setting.gamma, policy, tau).Q
            score = Q - tau * np.log(np.maximum(policy, 1e-300)) if tau > 0 else Q
            advantage = score - (policy * score).sum(axis=-1, keepdims=True)
            grad = advantage if self.natural else weight * policy * advantage
            logits = logits + self.learning_rate * grad
            policy = softmax(logits)
        return LogitState(policy, logits)


ALGORITHMS: dict[str, type] = {
    "fixed-point": FixedPoint,
    "fictitious-play": FictitiousPlay,
    "mirror-descent": MirrorDescent,
    "tmf-pg": TmfPG,
}
