"""Equilibrium solvers, each an initial state and one step (see ``loop.run``); they are
registered by name in ``registry.py``.

All act on time-indexed tabular policies pi (T, O, A) and read what they need from the
``Evaluation`` of the current policy that the loop has already computed (flow, Q of the policy,
best response), so no algorithm evaluates a policy twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.model.exploitability import Evaluation
from tmfcli.model.flow import mean_field_flow
from tmfcli.model.games.base import Array
from tmfcli.model.params import param
from tmfcli.model.setting import Setting
from tmfcli.model.values import backward, rowmax, rowsum, softmax


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


def remaining_horizon(setting: Setting) -> Array:
    """H_t = sum_{s >= t} gamma^(s-t) alpha_s (T,): the discounted number of times a
    representative agent still acts from step t on (its remaining rounds).

    A change of the policy at step t moves a fraction alpha_t of the mass for the remaining
    steps, so Q_t moves by O(H_t): this is the scale that makes steps comparable across t
    and across B. With alpha = 1 it is the remaining discounted horizon sum_{s<T-t} gamma^s.
    """
    alpha, gamma = setting.alpha, setting.gamma
    out = np.empty(setting.T)
    acc = 0.0
    for t in range(setting.T - 1, -1, -1):
        acc = float(alpha[t]) + gamma * acc
        out[t] = acc
    # 0 only after the last decision (the last time stage of a timed game), where nobody acts
    # and the policy is never used: any positive scale serves
    return np.where(out > 0, out, 1.0)


def mirror_direction(setting: Setting, policy: Array, logits: Array, Q: Array,
                     normalize: bool) -> Array:
    """d_t(o,.) = [Q_t(o,.) - tau y_t(o,.)] / H_t, centred under pi_t(.|o) (T, O, A)."""
    tau = setting.tau
    d = Q - tau * logits if tau > 0 else Q
    if normalize:
        d = d / remaining_horizon(setting)[:, None, None]
    return d - rowsum(policy * d)[..., None]


def shifted(logits: Array, tau: float, floor: float) -> Array:
    """Logits shifted so that max_a y = 0, and clipped at -floor when tau = 0."""
    new = logits - rowmax(logits)[..., None]
    return np.maximum(new, -floor) if tau == 0 else new


@dataclass(frozen=True)
class MirrorState:
    policy: Array
    logits: Array
    steps: Array             # eta_t(o) (T, O), the current step of each decision
    direction: Array | None  # the previous change of the logits (T, O, A)
    target: float            # the exploitability of the previous iterate


@dataclass(frozen=True)
class MirrorDescent:
    """Online mirror descent with the entropy mirror map, one step size per decision (t, o).

    With pi = softmax(y) the update of the logits y (T, O, A) is

        d_t(o,a) = [Q_t(o,a) - tau y_t(o,a)] / H_t,   centred: d <- d - sum_a pi_t(a|o) d_t(o,a)
        y_t(o,.) <- y_t(o,.) + eta_t(o) d_t(o,.)

    where Q is the Q-function of the current policy on its own flow (read from the evaluation)
    and y is kept with max_a y = 0 (a shift, invisible to softmax, so tau y may stand for
    tau log pi). At every (t, o) this is the mirror (exponentiated-gradient) step
    pi <- pi exp(eta_t(o) g) / Z on the gradient g = [Q - tau log pi] / H_t of the regularised
    objective; with tau > 0 its fixed point is pi = softmax(Q / tau), the regularised
    equilibrium, whatever the steps (``eta_t(o) tau / H_t`` is capped at 1, where the step
    becomes pi <- softmax(Q / tau)).

    Two options make it converge fast where plain OMD (y += eta Q) stalls:

    * ``normalize``: divide by H_t = sum_{s>=t} gamma^(s-t) alpha_s, the discounted number of
      times the agent still acts (``remaining_horizon``; T - t steps when alpha = 1).
      Q_t sums the rewards of T - t steps, so a policy change at step t moves Q_t by O(H_t)
      through the flow; without it early steps need tiny steps and late ones huge steps.
    * ``adaptive``: the step of each decision adapts, as in Rprop / delta-bar-delta. If the
      new direction agrees with the last move of the logits at (t, o)
      (sum_a pi_t(a|o) d_t(o,a) [y_k - y_{k-1}]_t(o,a) > 0; the last move is eta d_{k-1} up to
      a shift, which d ignores since it is pi-centred) the step grows by ``increase``; if it
      reverses, the step was too long and shrinks by ``decrease``; a decision whose logits did
      not move (all clipped, see below) keeps its step.
      Decisions whose best action is pure with a small gap (a switching cost of 0.02 with a
      long horizon ahead) thus get large steps, while mixed decisions coupled through the flow
      settle at the largest stable step. As a guard, when the exploitability of the iterate
      grows by more than half, every step shrinks by ``decrease``. Steps stay within
      [1e-4, 1e4] times ``learning_rate``.

    With tau = 0 the logits are clipped to [-40, 0] after the shift, so no action's
    probability falls below exp(-40) / A ~ 4e-18 / A: an action discarded early can come back
    when the flow changes (with unbounded logits it would need as many steps to recover as it
    took to fall). The exploitability this floor can leave is below 4e-18 times the sum over
    steps of the largest Q-gap. With tau > 0 the logits stay bounded (they tend to Q / tau) and
    are not clipped.

    With both options off this is plain OMD, y <- (1 - eta tau) y + eta Q (with the floor).
    """

    learning_rate: float = param(10.0, "initial step size eta on the logits", low=0,
                                 low_open=True)
    normalize: bool = param(True, "divide Q_t by the remaining discounted rounds H_t")
    adaptive: bool = param(True, "adapt one step per decision (t, o) (Rprop-style)")
    increase: float = param(1.2, "factor on a step whose direction is confirmed", low=1)
    decrease: float = param(0.5, "factor on a step whose direction reverses", low=0, high=1,
                            low_open=True)

    GUARD = 1.5      # every step shrinks when the exploitability grows by this factor
    SHORTEST = 1e-4  # steps stay within [SHORTEST, LONGEST] x learning_rate
    LONGEST = 1e4
    FLOOR = 40.0     # logits stay within [-FLOOR, 0]: pi >= exp(-40) / A ~ 4e-18 / A

    def init(self, setting: Setting, policy0: Array) -> MirrorState:
        logits = _logits(policy0)
        steps = np.full(policy0.shape[:2], self.learning_rate)
        return MirrorState(policy0, logits - logits.max(axis=-1, keepdims=True), steps, None,
                           np.inf)

    def step(self, setting: Setting, state: MirrorState, ev: Evaluation,
             k: int) -> MirrorState:
        tau, pi, y = setting.tau, state.policy, state.logits
        scale = 1.0 / remaining_horizon(setting) if self.normalize else np.ones(setting.T)
        d = mirror_direction(setting, pi, y, ev.own.Q, self.normalize)
        steps = state.steps
        if self.adaptive and state.direction is not None:
            agree = rowsum(pi * d * state.direction)
            steps = steps * np.where(agree > 0, self.increase,
                                     np.where(agree < 0, self.decrease, 1.0))
            if ev.target > self.GUARD * state.target:
                steps = steps * self.decrease
            eta = self.learning_rate
            steps = np.clip(steps, eta * self.SHORTEST, eta * self.LONGEST)
        if tau > 0:  # the proximal step can at most replace y by Q / tau
            steps = np.minimum(steps, 1.0 / (tau * scale[:, None]))
        new = shifted(y + steps[..., None] * d, tau, self.FLOOR)
        return MirrorState(softmax(new), new, steps, new - y, ev.target)


@dataclass(frozen=True)
class TmfPG:
    """Exact TMF-PG (MODEL.md section 6): freeze the flow of the current policy, then take
    ``inner_steps`` softmax policy-gradient steps on it.

    The gradient of J in the logit theta[t,o,a] on the frozen flow is
    mu_t(o) alpha_t pi_t(a|o) (Q_t(o,a) - sum_b pi_t(b|o) Q_t(o,b)) (entropy terms added when
    tau > 0). With ``natural`` the factor mu_t(o) alpha_t pi_t(a|o) is dropped (the natural
    gradient of the softmax family), which moves unvisited states as fast as visited ones.
    With ``normalize`` the gradient at step t is divided by the remaining discounted rounds
    H_t = sum_{s>=t} gamma^(s-t) alpha_s, as in mirror descent. Natural and
    normalised, one inner step of size eta is exactly mirror descent with a fixed step eta
    (``adaptive: false``); more inner steps move further towards the best response on the
    frozen flow, which on these games destabilises more than it helps (docs/solvers.md).
    """

    learning_rate: float = param(1.0, "step size on the logits", low=0, low_open=True)
    inner_steps: int = param(10, "policy-gradient steps per frozen flow", low=1)
    natural: bool = param(False, "use the natural gradient (drop the mu alpha pi weights)")
    normalize: bool = param(False, "divide the gradient at step t by the remaining discounted "
                            "rounds H_t")

    def init(self, setting: Setting, policy0: Array) -> LogitState:
        return LogitState(policy0, _logits(policy0))

    def step(self, setting: Setting, state: LogitState, ev: Evaluation, k: int) -> LogitState:
        flow, tau = ev.flow, setting.tau
        # the factor on the advantage: mu_t(o) alpha_t (vanilla) or 1 (natural), over H_t
        weight = np.ones((setting.T, 1, 1)) if self.natural else \
            flow.mu[: setting.T, :, None] * setting.alpha[:, None, None]
        if self.normalize:
            weight = weight / remaining_horizon(setting)[:, None, None]
        logits, policy, Q = state.logits, state.policy, ev.own.Q
        for j in range(self.inner_steps):
            if j > 0:
                Q = backward(flow, setting.gamma, policy, tau).Q
            score = Q - tau * np.log(np.maximum(policy, 1e-300)) if tau > 0 else Q
            advantage = score - rowsum(policy * score)[..., None]
            grad = weight * advantage if self.natural else weight * policy * advantage
            logits = logits + self.learning_rate * grad
            policy = softmax(logits)
        return LogitState(policy, logits)


@dataclass(frozen=True)
class AndersonState:
    policy: Array
    logits: Array
    points: tuple[Array, ...]   # the last iterates y_i (flattened)
    images: tuple[Array, ...]   # their mirror steps F(y_i) (flattened)
    best: tuple[float, Array]   # the best target seen and the mirror step from that iterate


@dataclass(frozen=True)
class Anderson:
    """Mirror descent with a fixed step, accelerated by Anderson mixing.

    The mirror step of ``mirror-descent`` with one fixed step eta, F(y) = shift(y + eta d(y))
    (d as there: Q^pi centred and divided by H_t), is a map on the logits whose fixed points
    are the equilibria. Anderson mixing (type II) combines the last m + 1 iterates: with the
    residuals g_i = F(y_i) - y_i it finds weights c (sum c = 1) that minimise
    ||sum_i c_i g_i|| and moves to y <- sum_i c_i F(y_i). On a linear map this is GMRES, which
    converges where the plain iteration rotates or diverges: the rotation of mirror descent
    around the mixed equilibrium of rock_paper_scissors (the game is not monotone) is solved in
    a few iterations. As a guard, when the exploitability exceeds ``guard`` times the best seen,
    the history is dropped and the iteration restarts from the mirror step of the best iterate.

    It needs the map to be smooth near the equilibrium: on long horizons, where many decisions
    are pure and their logits run to the floor, it is slower than ``mirror-descent``
    (docs/solvers.md).
    """

    learning_rate: float = param(1.0, "fixed step eta of the mirror map", low=0, low_open=True)
    memory: int = param(5, "iterates m mixed besides the current one", low=1)
    guard: float = param(10.0, "restart from the best iterate when the exploitability exceeds "
                         "this multiple of the best", low=1)

    FLOOR = MirrorDescent.FLOOR
    RIDGE = 1e-10  # relative Tikhonov term of the least-squares problem

    def init(self, setting: Setting, policy0: Array) -> AndersonState:
        y = shifted(_logits(policy0), setting.tau, self.FLOOR)
        return AndersonState(softmax(y), y, (), (), (np.inf, y.ravel()))

    def step(self, setting: Setting, state: AndersonState, ev: Evaluation,
             k: int) -> AndersonState:
        y, tau = state.logits, setting.tau
        d = mirror_direction(setting, state.policy, y, ev.own.Q, normalize=True)
        image = shifted(y + self.learning_rate * d, tau, self.FLOOR).ravel()
        best = state.best
        if ev.target < best[0]:
            best = (ev.target, image)
        if ev.target > self.guard * best[0]:  # start afresh from the best iterate's step
            new = best[1].reshape(y.shape)
            return AndersonState(softmax(new), new, (), (), best)
        points = (*state.points, y.ravel())[-(self.memory + 1):]
        images = (*state.images, image)[-(self.memory + 1):]
        mixed = image
        if len(points) >= 2:
            G = np.stack([f - x for x, f in zip(points, images, strict=True)], axis=1)
            dG, dF = np.diff(G, axis=1), np.diff(np.stack(images, axis=1), axis=1)
            normal = dG.T @ dG
            normal += (self.RIDGE * np.trace(normal) + 1e-300) * np.eye(normal.shape[0])
            mixed = image - dF @ np.linalg.solve(normal, dG.T @ G[:, -1])
        new = shifted(mixed.reshape(y.shape), tau, self.FLOOR)
        return AndersonState(softmax(new), new, points, images, best)
