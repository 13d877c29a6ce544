"""Mean-field Q-learning with the mean action (Yang et al. 2018), under asynchrony.

Yang et al. condition an agent's Q on the mean action a_bar of the others. When only B of N
act, a_bar is undefined; the practitioners' fix, used here (MODEL.md section 6), pads the
idle agents with a no-op action: a_bar_t (A + 1,) is the share of all N agents that took each
action at step t, the last entry the idle share 1 - alpha_t. The no-op is also the idle agent's
own "action", so Q has A + 1 columns:

    Q(t, o, b, a_bar) = q[k(t), o, b] + sum_l U[o, b, l] a_bar(l),   b in {0..A-1, no-op}

(tabular in the time index and observation, linear in the mean action, as the policy class is
linear in mu_hat). Behaviour: Boltzmann, pi_t(a | o) = softmax_a(Q(t, o, a, a_bar_{t-1}) / temp)
over the real actions, with the last observed mean action (a_bar_{-1} = all no-op). Learning:
semi-gradient TD(0) on the aggregated counts of a batch, the target of the agents at (t, o, b)

    y = [total reward at (t, o, b) + gamma sum_o' (transitions to o') v_{t+1}(o')] / count,
    v_{t+1}(o') = alpha_{t+1} sum_a pi(a | o', a_bar_t) Q(t+1, o', a, a_bar_t)
                  + (1 - alpha_{t+1}) Q(t+1, o', no-op, a_bar_t),   v_T = 0,

minimising sum count (y - Q)^2 / (N R) by ``inner_steps`` optimiser steps per batch.

What the padding costs: at B = 1 the mean action is (0, ..., 1/N, ..., 1 - 1/N): it carries no
information about what the population does, so the U weights learn nothing and mf-q is a
population-blind tabular learner; and Q mixes acting and idling only through alpha. At B = N it
is Yang's method. docs/train.md has the measurements.

``LEARNER`` is mf-q as a ``learner.Learner`` (registered in ``registry.LEARNERS``): per outer
iteration one batch of rollouts of the behaviour policy, then ``inner_steps`` TD steps on it;
its result is the table it plays on its own flow (``on_flow``, written as ``policy.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmfcli.learning.learner import Behaviour, Draw, Iteration, TrainConfig
from tmfcli.learning.optim import Ascent, ascend
from tmfcli.learning.policy_class import Params, PolicyClass
from tmfcli.learning.rollouts import Batch, MeanActionDecide
from tmfcli.model.exploitability import Evaluation
from tmfcli.model.flow import step
from tmfcli.model.games.base import Array
from tmfcli.model.policy import TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.model.values import softmax


@dataclass(frozen=True)
class MeanFieldQ:
    """Q-values q (K, O, A+1) and U (O, A+1, A+1), held in ``Params`` (theta=q, W=U)."""

    cls: PolicyClass
    temperature: float

    def zeros(self) -> Params:
        O, A = self.cls.n_obs, self.cls.n_act
        return Params(np.zeros((self.cls.rows, O, A + 1)), np.zeros((O, A + 1, A + 1)))

    def values(self, params: Params, rows: np.ndarray, a_bar: Array) -> Array:
        """Q (..., O, A+1) at time rows (...) and mean actions a_bar (..., A+1)."""
        return params.theta[rows] + np.einsum("obl,...l->...ob", params.W, a_bar)

    def probs(self, Q: Array) -> Array:
        """Boltzmann policy over the real actions (..., O, A): softmax(Q / temperature)."""
        return softmax(Q[..., :-1] / self.temperature)

    def decide(self, params: Params) -> MeanActionDecide:
        """The behaviour policy, softmax(Q / temperature) over the real actions at the
        previous mean action, as data the compiled chain reads (and as a callable)."""
        A = self.cls.n_act
        factor = 1.0 / self.temperature
        return MeanActionDecide(factor * params.theta[:, :, :A], factor * params.W[:, :A, :],
                                self.cls.index)

    def td_gradient(self, params: Params, batch: Batch, alpha: Array) -> Params:
        """Semi-gradient of -sum count (y - Q)^2 / (2 N R) (module docstring), compiled
        (``learning.compiled.td_gradient``; ``td_gradient_reference`` is the numpy form)."""
        from tmfcli.learning import compiled

        d_q = np.empty_like(params.theta)
        d_U = np.empty_like(params.W)
        Y = batch.Y if batch.Y is not None else np.zeros((1, 1, 1, 1), dtype=np.int64)
        compiled.td_gradient(np.ascontiguousarray(params.theta, dtype=np.float64),
                             np.ascontiguousarray(params.W, dtype=np.float64),
                             np.ascontiguousarray(self.cls.index, dtype=np.int64),
                             np.ascontiguousarray(batch.a_bar),
                             np.ascontiguousarray(alpha, dtype=np.float64), float(batch.gamma),
                             1.0 / self.temperature,
                             np.ascontiguousarray(batch.reward, dtype=np.float64),
                             np.ascontiguousarray(batch.idle_reward, dtype=np.float64),
                             np.ascontiguousarray(batch.X), np.ascontiguousarray(Y),
                             batch.Y is not None, np.ascontiguousarray(batch.n),
                             np.ascontiguousarray(batch.m), np.ascontiguousarray(batch.c),
                             int(batch.agents), d_q, d_U)
        return Params(d_q, d_U)

    def td_gradient_reference(self, params: Params, batch: Batch, alpha: Array) -> Params:
        """``td_gradient`` in numpy: the reference."""
        R, T = batch.c.shape[:2]
        index = self.cls.index
        rows = np.broadcast_to(index, (R, T))
        Q = self.values(params, rows, batch.a_bar)                       # (R, T, O, A+1)
        # v_{t+1} at a_bar_t; v_T = 0
        nxt_rows = np.broadcast_to(np.append(index[1:], index[-1]), (R, T))
        Qn = self.values(params, nxt_rows, batch.a_bar)
        a_next = np.append(alpha[1:], 0.0)[None, :, None]
        v = a_next * (self.probs(Qn) * Qn[..., :-1]).sum(axis=-1) + \
            (1 - a_next) * Qn[..., -1]
        v[:, -1] = 0.0                                                    # (R, T, O)
        gamma = batch.gamma
        cy = batch.reward + gamma * np.einsum("rtoap,rtp->rtoa", batch.X, v)
        idle = batch.n[:, :T] - batch.m
        if batch.Y is None:
            iy = batch.idle_reward + gamma * idle * v
        else:
            iy = batch.idle_reward + gamma * np.einsum("rtop,rtp->rto", batch.Y, v)
        # count * (y - Q) = count y - count Q, per (r, t, o, b)
        w = np.concatenate([batch.c, idle[..., None]], axis=-1)
        wy = np.concatenate([cy, iy[..., None]], axis=-1)
        delta = (wy - w * Q) / (batch.agents * R)
        q = np.zeros_like(params.theta)
        np.add.at(q, index, delta.sum(axis=0))
        U = np.einsum("rtob,rtl->obl", delta, batch.a_bar)
        return Params(q, U)

    def on_flow(self, params: Params, setting: Setting) -> Array:
        """The time-indexed policy (T, O, A) that mf-q plays on its own mean-field flow, where
        a_bar_t = (alpha_t sum_o mu_t(o) pi_t(. | o), 1 - alpha_t) is deterministic. The time
        loop is compiled when the game's kernels compile (``on_flow_reference`` otherwise)."""
        from tmfcli.learning import compiled
        from tmfcli.simulation.chain import can_compile, kernels_of

        game, T = setting.game, setting.T
        if not can_compile(game):
            return self.on_flow_reference(params, setting)
        behaviour = self.decide(params)
        kernel, kparams, dynamic, P, P0 = kernels_of(game, clean=False)
        pi = np.empty((T, game.n_obs, game.n_act))
        compiled.mean_action_on_flow(np.ascontiguousarray(behaviour.theta),
                                     np.ascontiguousarray(behaviour.W),
                                     np.ascontiguousarray(behaviour.index, dtype=np.int64),
                                     np.ascontiguousarray(setting.alpha, dtype=np.float64),
                                     np.array(game.mu0, dtype=np.float64), kernel, kparams,
                                     dynamic, P, P0, pi)
        return pi

    def on_flow_reference(self, params: Params, setting: Setting) -> Array:
        """``on_flow`` in numpy (one step per Python iteration): the reference."""
        game, T = setting.game, setting.T
        A = game.n_act
        pi = np.empty((T, game.n_obs, A))
        mu = np.asarray(game.mu0, dtype=float)
        prev = np.zeros(A + 1)
        prev[A] = 1.0
        for t in range(T):
            pi[t] = self.probs(self.values(params, np.asarray(self.cls.index[t]), prev))
            a = float(setting.alpha[t])
            prev = np.append(a * (mu @ pi[t]), 1.0 - a)
            mu = step(mu, pi[t], game.transition(mu, t), game.idle_transition(mu, t), a)
        return pi


@dataclass
class QState:
    """An mf-q run: the Q-function's shape, its values and the optimiser."""

    setting: Setting
    config: TrainConfig
    mfq: MeanFieldQ
    params: Params
    opt: Ascent


@dataclass(frozen=True)
class MeanFieldQLearner:
    """mf-q (module docstring): Q = 0 to start (the uniform Boltzmann policy)."""

    columns: tuple[str, ...] = ()

    def start(self, setting: Setting, config: TrainConfig) -> QState:
        mfq = MeanFieldQ(PolicyClass.of(setting, config.time_index), config.temperature)
        return QState(setting, config, mfq, mfq.zeros(),
                      Ascent(config.optimizer, config.lr, decay=config.lr_decay))

    def on_flow(self, state: QState) -> Array:
        return state.mfq.on_flow(state.params, state.setting)

    def behaviour(self, state: QState) -> Behaviour:
        return Behaviour(state.mfq.decide(state.params), mean_action=True)

    def step(self, state: QState, i: int, ev: Evaluation,
             draw: Draw) -> tuple[QState, Iteration]:
        c, mfq, alpha = state.config, state.mfq, state.setting.alpha
        batch = draw(self.behaviour(state))
        state.opt.outer = i
        state.params, norm = ascend(state.opt, state.params, c.inner_steps,
                                    lambda p: mfq.td_gradient(p, batch, alpha))
        return state, Iteration(float(batch.returns.mean()), norm)

    def policy(self, state: QState) -> TabularPolicy:
        return TabularPolicy(self.on_flow(state))


LEARNER = MeanFieldQLearner()
