"""The training loop of ``tmf train``: outer iterations that draw fresh rollouts of the current
policy (or, for tmf-pg-exact, freeze its mean-field flow), and inner optimiser steps against
them. Every iteration also *measures* the exact exploitability of the current policy on its own
mean-field flow; that number is never used by the sampled learners.

Seeding (``tmfcli.seeds``): the rollouts of outer iteration i come from the stream
``TRAIN_ROLLOUTS`` i of the seed, the final evaluation rollouts from ``TRAIN_EVALUATION``
(index ``iterations``), so every algorithm of one seed sees the same random streams (and, when
it plays the same policy, the same rollouts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tmfcli import seeds
from tmfcli.learning.critic import aggregate
from tmfcli.learning.mf_q import MeanFieldQ
from tmfcli.learning.optim import Ascent
from tmfcli.learning.policy_class import PolicyClass, on_flow_fast
from tmfcli.learning.rollouts import Batch, Decide, sample
from tmfcli.learning.tmf_pg import exact_gradient, sampled_gradient
from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy
from tmfcli.model.setting import Setting

ALGORITHMS = ("tmf-pg", "tmf-pg-exact", "mf-q", "independent-pg")
COLUMNS = ["iteration", "exploitability", "return_avg", "samples", "grad_norm", "elapsed_s"]


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one run (``TrainSpec`` resolved; the time index is step/round/none)."""

    algorithm: str = "tmf-pg"
    iterations: int = 200
    inner_steps: int = 10
    rollouts: int = 8
    lr: float = 0.1
    lr_decay: float = 0.0
    optimizer: str = "sgd"
    entropy_bonus: float = 0.0
    time_index: str = "step"
    temperature: float = 0.1
    seed: int = 0
    activation: str = "subset"
    init: str = "iid"


@dataclass(frozen=True)
class TrainResult:
    """The history (``iterations.csv`` columns ``COLUMNS``), the final policy, its evaluation
    on its mean-field flow, and the returns of the final evaluation rollouts (R,)."""

    history: pd.DataFrame
    policy: Policy
    evaluation: Evaluation
    returns: Array
    samples: int
    elapsed_s: float


def child(seed: int, index: int) -> np.random.Generator:
    """The generator of the rollouts of outer iteration ``index`` (``seeds.TRAIN_ROLLOUTS``)."""
    return seeds.generator(seed, seeds.TRAIN_ROLLOUTS, index)


class _Learner:
    """One algorithm: parameters, the policy it plays, one outer update."""

    def __init__(self, setting: Setting, config: TrainConfig) -> None:
        self.setting, self.config = setting, config
        self.cls = PolicyClass.of(setting, config.time_index)
        self.mfq = MeanFieldQ(self.cls, config.temperature) \
            if config.algorithm == "mf-q" else None
        self.params = self.mfq.zeros() if self.mfq is not None else self.cls.zeros()
        self.opt = Ascent(config.optimizer, config.lr,
                          frozen_W=config.algorithm == "independent-pg", decay=config.lr_decay)

    def decide(self) -> Decide | PopulationPolicy:
        if self.mfq is not None:
            return self.mfq.decide(self.params)
        return self.cls.view(self.params)

    def policy(self) -> Policy:
        if self.mfq is not None:
            return TabularPolicy(self.on_flow())
        return self.cls.policy(self.params)

    def on_flow(self) -> Array:
        if self.mfq is not None:
            return self.mfq.on_flow(self.params, self.setting)
        return on_flow_fast(self.cls, self.params, self.setting)

    def update_sampled(self, batch: Batch) -> float:
        """inner_steps steps on one batch; the norm of the first gradient."""
        c, first = self.config, math.nan
        critic = None if self.mfq is not None else aggregate(batch, self.cls.index)
        for j in range(c.inner_steps):
            if self.mfq is not None:
                grad = self.mfq.td_gradient(self.params, batch, self.setting.alpha)
            else:
                assert critic is not None
                grad = sampled_gradient(self.cls, self.params, batch, critic, c.entropy_bonus)
            if j == 0:
                first = grad.norm()
            self.params = self.opt.step(self.params, grad)
        return first

    def update_exact(self, ev: Evaluation) -> float:
        """inner_steps exact TMF-PG steps on the frozen flow of the current policy."""
        first = math.nan
        for j in range(self.config.inner_steps):
            grad = exact_gradient(self.cls, self.params, self.setting, ev.flow,
                                  self.config.entropy_bonus)
            if j == 0:
                first = grad.norm()
            self.params = self.opt.step(self.params, grad)
        return first


def train(setting: Setting, config: TrainConfig,
          on_iteration: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Run ``config.iterations`` outer iterations (module docstring); iteration rows 0..I-1
    hold the policy before its update, row I the final policy with the mean return of the
    final evaluation rollouts. ``on_iteration(i, total, exploitability)`` reports progress."""
    if config.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {config.algorithm!r}")
    start = time.perf_counter()
    learner = _Learner(setting, config)
    rows: list[tuple[int, float, float, int, float, float]] = []
    samples = 0
    I = config.iterations
    for i in range(I + 1):
        pi_bar = learner.on_flow()
        ev = evaluate(setting, pi_bar)
        if i == I:
            break
        learner.opt.outer = i
        if config.algorithm == "tmf-pg-exact":
            ret, norm = ev.J, learner.update_exact(ev)
        else:
            batch = sample(setting, learner.decide(), config.rollouts, child(config.seed, i),
                           config.activation, config.init, learner.mfq is not None)
            samples += batch.decisions
            ret, norm = float(batch.returns.mean()), learner.update_sampled(batch)
        rows.append((i, ev.exploitability, ret, samples, norm, time.perf_counter() - start))
        if on_iteration is not None:
            on_iteration(i + 1, I, ev.exploitability)
    final = sample(setting, learner.decide(), config.rollouts,
                   seeds.generator(config.seed, seeds.TRAIN_EVALUATION, I),
                   config.activation, config.init, learner.mfq is not None)
    returns = final.returns
    rows.append((I, ev.exploitability, float(returns.mean()), samples, math.nan,
                 time.perf_counter() - start))
    history = pd.DataFrame(rows, columns=COLUMNS)
    return TrainResult(history=history, policy=learner.policy(), evaluation=ev,
                       returns=returns, samples=samples,
                       elapsed_s=time.perf_counter() - start)
