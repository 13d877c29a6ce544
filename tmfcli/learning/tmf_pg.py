"""TMF-PG gradients in the population-aware class (MODEL.md section 6): sampled from rollouts
of the N-agent system, and exact on the mean-field flow (the yardstick).

Sampled (``sampled_gradient``). For softmax logits z, grad_z log pi(a) = e_a - pi, so the
REINFORCE sum over active (agent i, step t) of grad log pi(a^i_t | o^i_t, mu_hat_t) A^i_t,
divided by N and averaged over R rollouts, is, per step t and observation o, in the logits:

    g_t(o, .) = (1 / (N R)) sum_a c_t(o, a) rho_t(o, a) A_t(o, a) (e_a - pi_t(. | o, mu_hat_t))

with A the advantage of the aggregated critic (``critic.aggregate``: the Rao-Blackwellised
return of the agents at (t, o, a) minus the leave-one-out baseline). rho = pi_theta / pi_behaviour
is the per-decision importance ratio: 1 at the first inner step, and what lets the later inner
steps reuse the same rollouts. The model (P, r) is never read: only counts and the rewards the
agents received. Then ``PolicyClass.chain`` maps g to (theta, W).

Exact (``exact_gradient``). On a frozen flow mu (T+1, O) with the policy evaluated on it,

    g_t(o, a) = mu_t(o) alpha_t pi_t(a | o) (Q_t(o, a) - sum_b pi_t(b | o) Q_t(o, b)),

Q the Q-function of the policy on that flow (``values.backward``). The sampled g has this
expectation up to the finite-N terms (docs/train.md).

The learners (``learner.Learner``, registered in ``registry.LEARNERS``): ``SAMPLED`` (tmf-pg:
per outer iteration one batch of rollouts of the current policy, the count critic, then
``inner_steps`` optimiser steps along the sampled gradient), ``INDEPENDENT`` (independent-pg:
the same with W held at 0, so the policy never reads mu_hat) and ``EXACT`` (tmf-pg-exact:
``inner_steps`` steps along the exact gradient on the frozen flow of the current policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.learning.critic import Critic, aggregate
from tmfcli.learning.learner import Behaviour, Draw, Iteration, TrainConfig
from tmfcli.learning.optim import Ascent, ascend
from tmfcli.learning.policy_class import Params, PolicyClass, entropy_gradient, on_flow_fast
from tmfcli.learning.rollouts import Batch
from tmfcli.model.exploitability import Evaluation
from tmfcli.model.flow import Flow
from tmfcli.model.games.base import Array
from tmfcli.model.policy import PopulationPolicy
from tmfcli.model.setting import Setting
from tmfcli.model.values import backward


def sampled_gradient(cls: PolicyClass, params: Params, batch: Batch, critic: Critic,
                     entropy_bonus: float = 0.0) -> Params:
    """The sampled TMF-PG gradient (module docstring) at ``params`` from one batch: the
    compiled loop over the rows where somebody acted (``learning.compiled``)."""
    from tmfcli.learning import compiled

    R = batch.c.shape[0]
    d_theta = np.empty_like(params.theta)
    d_W = np.empty_like(params.W)
    compiled.sampled_gradient(_c(params.theta), _c(params.W),
                              np.ascontiguousarray(cls.index, dtype=np.int64),
                              _c(batch.mu_hat), np.ascontiguousarray(batch.c), _c(batch.pi),
                              _c(critic.advantage), np.ascontiguousarray(batch.m),
                              1.0 / (batch.agents * R), float(entropy_bonus), d_theta, d_W)
    return Params(d_theta, d_W)


def _c(a: Array) -> Array:
    out = np.ascontiguousarray(a, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


def sampled_gradient_reference(cls: PolicyClass, params: Params, batch: Batch, critic: Critic,
                               entropy_bonus: float = 0.0) -> Params:
    """``sampled_gradient`` in numpy, over every (r, t, o, a): the reference."""
    R, T = batch.c.shape[:2]
    mu = batch.mu_hat[:, :T]
    pi = cls.probs(params, mu)                                            # (R, T, O, A)
    scale = 1.0 / (batch.agents * R)
    rho = np.divide(pi, batch.pi, out=np.ones_like(pi), where=batch.pi > 0)
    u = scale * batch.c * rho * critic.advantage
    g = u - pi * u.sum(axis=-1, keepdims=True)
    if entropy_bonus > 0:
        g = g + entropy_bonus * entropy_gradient(pi, scale * batch.m)
    return cls.chain(g, mu)


def flow_probs(cls: PolicyClass, params: Params, mu: Array) -> Array:
    """pi (T, O, A) of the class on a flow mu (T+1, O)."""
    return cls.probs(params, mu[None])[0]


def exact_gradient(cls: PolicyClass, params: Params, setting: Setting, flow: Flow,
                   entropy_bonus: float = 0.0) -> Params:
    """The exact TMF-PG gradient on the frozen ``flow`` (module docstring): one compiled
    backward pass (``learning.compiled.exact_gradient``)."""
    from tmfcli.learning import compiled

    T, O, A = flow.r.shape
    Tv = 1 if setting.game.static_dynamics else T
    Pv = _c(np.asarray(flow.P[:Tv]).reshape(Tv, O * A * O))
    P0v = _c(np.asarray(flow.P0[:Tv]).reshape(Tv, O * O))
    d_theta = np.empty_like(params.theta)
    d_W = np.empty_like(params.W)
    compiled.exact_gradient(_c(params.theta), _c(params.W),
                            np.ascontiguousarray(cls.index, dtype=np.int64), _c(flow.mu),
                            _c(setting.alpha), float(setting.gamma), _c(flow.r), _c(flow.r0),
                            Pv, P0v, float(entropy_bonus), d_theta, d_W)
    return Params(d_theta, d_W)


def exact_gradient_reference(cls: PolicyClass, params: Params, setting: Setting, flow: Flow,
                             entropy_bonus: float = 0.0) -> Params:
    """``exact_gradient`` in numpy (policy on the flow, ``values.backward``, chain rule)."""
    pi = flow_probs(cls, params, flow.mu)
    Q = backward(flow, setting.gamma, pi).Q
    T = setting.T
    weight = flow.mu[:T] * setting.alpha[:, None]                         # (T, O)
    g = weight[..., None] * pi * (Q - (pi * Q).sum(axis=-1, keepdims=True))
    if entropy_bonus > 0:
        g = g + entropy_bonus * entropy_gradient(pi, weight)
    return cls.chain(g, flow.mu)


# --------------------------------------------------------------------------------------------
# the learners
# --------------------------------------------------------------------------------------------
@dataclass
class PGState:
    """A policy-gradient run: the class of the setting, its parameters and the optimiser."""

    setting: Setting
    config: TrainConfig
    cls: PolicyClass
    params: Params
    opt: Ascent


@dataclass(frozen=True)
class _InClass:
    """What the policy-gradient learners share: theta = 0 and W = 0 to start, and the
    population-aware policy of the parameters for rollouts, evaluation and the result."""

    frozen_W: bool = False
    columns: tuple[str, ...] = ()

    def start(self, setting: Setting, config: TrainConfig) -> PGState:
        cls = PolicyClass.of(setting, config.time_index)
        opt = Ascent(config.optimizer, config.lr, frozen_W=self.frozen_W, decay=config.lr_decay)
        return PGState(setting, config, cls, cls.zeros(), opt)

    def on_flow(self, state: PGState) -> Array:
        return on_flow_fast(state.cls, state.params, state.setting)

    def behaviour(self, state: PGState) -> Behaviour:
        return Behaviour(state.cls.view(state.params))

    def policy(self, state: PGState) -> PopulationPolicy:
        return state.cls.policy(state.params)


@dataclass(frozen=True)
class SampledPG(_InClass):
    """tmf-pg (``frozen_W``: independent-pg): ``inner_steps`` steps along the sampled gradient
    of one batch of rollouts of the current policy (its count critic computed once)."""

    def step(self, state: PGState, i: int, ev: Evaluation,
             draw: Draw) -> tuple[PGState, Iteration]:
        c, cls = state.config, state.cls
        batch = draw(self.behaviour(state))
        critic = aggregate(batch, cls.index)
        state.opt.outer = i
        state.params, norm = ascend(state.opt, state.params, c.inner_steps, lambda p:
                                    sampled_gradient(cls, p, batch, critic, c.entropy_bonus))
        return state, Iteration(float(batch.returns.mean()), norm)


@dataclass(frozen=True)
class ExactPG(_InClass):
    """tmf-pg-exact: ``inner_steps`` steps along the exact gradient on the frozen flow of the
    current policy (``ev.flow``); its return is the mean-field value J."""

    def step(self, state: PGState, i: int, ev: Evaluation,
             draw: Draw) -> tuple[PGState, Iteration]:
        c, cls = state.config, state.cls
        state.opt.outer = i
        state.params, norm = ascend(state.opt, state.params, c.inner_steps, lambda p:
                                    exact_gradient(cls, p, state.setting, ev.flow,
                                                   c.entropy_bonus))
        return state, Iteration(ev.J, norm)


SAMPLED = SampledPG()
INDEPENDENT = SampledPG(frozen_W=True)
EXACT = ExactPG()
