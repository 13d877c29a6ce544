"""The training loop of ``tmf train``: the one loop every learner runs in (``learner.py``
says what a learner supplies; ``registry.LEARNERS`` names them). Outer iteration i evaluates
the current policy exactly on its own mean-field flow (its exploitability is measured, never
used by the sampled learners), then lets the learner take its iteration with the rollouts of
stream i; after the last one, fresh evaluation rollouts of the final policy.

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
from tmfcli.learning.learner import Behaviour, TrainConfig
from tmfcli.learning.registry import LEARNERS, load
from tmfcli.learning.rollouts import Batch, sample
from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy
from tmfcli.model.setting import Setting

__all__ = ["COLUMNS", "TrainConfig", "TrainResult", "child", "train"]

COLUMNS = ["iteration", "exploitability", "return_avg", "samples", "grad_norm", "elapsed_s"]


@dataclass(frozen=True)
class TrainResult:
    """The history (``iterations.csv`` columns ``COLUMNS``, then the learner's own), the final
    policy, its evaluation on its mean-field flow, and the returns of the final evaluation
    rollouts (R,)."""

    history: pd.DataFrame
    policy: Policy
    evaluation: Evaluation
    returns: Array
    samples: int
    elapsed_s: float


def child(seed: int, index: int) -> np.random.Generator:
    """The generator of the rollouts of outer iteration ``index`` (``seeds.TRAIN_ROLLOUTS``)."""
    return seeds.generator(seed, seeds.TRAIN_ROLLOUTS, index)


@dataclass
class _Draws:
    """``Draw`` of one outer iteration: R rollouts from ``rng``, their decisions counted."""

    setting: Setting
    config: TrainConfig
    rng: np.random.Generator
    decisions: int = 0

    def __call__(self, behaviour: Behaviour) -> Batch:
        c = self.config
        batch = sample(self.setting, behaviour.policy, c.rollouts, self.rng, c.activation,
                       c.init, behaviour.mean_action)
        self.decisions += batch.decisions
        return batch


def train(setting: Setting, config: TrainConfig,
          on_iteration: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Run ``config.iterations`` outer iterations of the learner ``config.algorithm`` (module
    docstring); iteration rows 0..I-1 hold the policy before its update, row I the final
    policy with the mean return of the final evaluation rollouts (and nan in grad_norm and the
    learner's own columns). ``on_iteration(i, total, exploitability)`` reports progress."""
    if config.algorithm not in LEARNERS:
        raise ValueError(f"unknown algorithm {config.algorithm!r}")
    start = time.perf_counter()
    learner = load(config.algorithm)
    state = learner.start(setting, config)
    rows: list[tuple[float, ...]] = []
    samples = 0
    I = config.iterations
    for i in range(I + 1):
        ev = evaluate(setting, learner.on_flow(state))
        if i == I:
            break
        draws = _Draws(setting, config, child(config.seed, i))
        state, it = learner.step(state, i, ev, draws)
        samples += draws.decisions
        if len(it.extra) != len(learner.columns):
            raise ValueError(f"{config.algorithm} reported {len(it.extra)} values for its "
                             f"columns {learner.columns}")
        rows.append((i, ev.exploitability, it.ret, samples, it.grad_norm,
                     time.perf_counter() - start, *it.extra))
        if on_iteration is not None:
            on_iteration(i + 1, I, ev.exploitability)
    returns = _Draws(setting, config, seeds.generator(
        config.seed, seeds.TRAIN_EVALUATION, I))(learner.behaviour(state)).returns
    rows.append((I, ev.exploitability, float(returns.mean()), samples, math.nan,
                 time.perf_counter() - start, *(math.nan for _ in learner.columns)))
    history = pd.DataFrame(rows, columns=[*COLUMNS, *learner.columns])
    return TrainResult(history=history, policy=learner.policy(state), evaluation=ev,
                       returns=returns, samples=samples,
                       elapsed_s=time.perf_counter() - start)
