"""The one iterative loop every solver runs: evaluate, record, test, step.

An algorithm supplies ``init(setting, policy0) -> state`` and
``step(setting, state, evaluation, k) -> state`` (``state.policy`` is pi (T, O, A)); the loop owns
the iteration count, the tolerance, the stop reason and the history, which *is* the tidy
``iterations.csv`` table. Iteration 0 is the initial policy. The reported policy is the best
iterate (lowest target exploitability), which is the last one when the loop converged.
A step that had to evaluate its new policy anyway (to reject a step that would raise the
exploitability) leaves that evaluation in ``state.evaluation``, and the loop uses it instead
of evaluating the same policy again. A state whose ``done`` is True can make no further
progress (``potential`` at its precision floor): the loop stops there ("stalled: ...").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.games.base import Array
from tmfcli.model.setting import Setting


class State(Protocol):
    policy: Array


class Algorithm(Protocol):
    def init(self, setting: Setting, policy0: Array) -> Any: ...

    def step(self, setting: Setting, state: Any, ev: Evaluation, k: int) -> Any: ...


@dataclass(frozen=True)
class SolveResult:
    """The best iterate's evaluation, the history table and why the loop stopped."""

    evaluation: Evaluation
    history: pd.DataFrame
    stop_reason: str
    converged: bool

    @property
    def iterations(self) -> int:
        return int(self.history["iteration"].iloc[-1])


def run(setting: Setting, algorithm: Algorithm, iterations: int, tolerance: float,
        policy0: Array | None = None,
        on_iteration: Callable[[int, Evaluation], None] | None = None) -> SolveResult:
    """Iterate ``algorithm`` from ``policy0`` (default uniform) until the target exploitability
    (regularised when tau > 0) is <= ``tolerance`` or ``iterations`` steps have been taken."""
    game = setting.game
    if policy0 is None:
        policy0 = np.full((setting.T, game.n_obs, game.n_act), 1.0 / game.n_act)
    rows: list[tuple[int, float, float, float, float]] = []
    start = time.perf_counter()
    state = algorithm.init(setting, policy0)
    k = 0
    best: Evaluation | None = None
    while True:
        ev = getattr(state, "evaluation", None) or evaluate(setting, state.policy)
        if best is None or ev.target < best.target:  # a NaN target never is the best
            best = ev
        rows.append((k, ev.exploitability, ev.exploitability_reg, ev.J,
                     time.perf_counter() - start))
        if on_iteration is not None:
            on_iteration(k, ev)
        if not math.isfinite(ev.target):
            reason, converged = f"non-finite: exploitability became {ev.target} at iteration " \
                f"{k}", False
            break
        if ev.target <= tolerance:
            reason, converged = f"converged: exploitability {ev.target:.3g} <= tolerance " \
                f"{tolerance:g} after {k} iterations", True
            break
        if k >= iterations:
            reason, converged = f"max-iterations: {iterations} iterations without reaching " \
                f"tolerance {tolerance:g} (last {ev.target:.3g}, best {best.target:.3g})", False
            break
        state = algorithm.step(setting, state, ev, k)
        if getattr(state, "done", False):
            reason, converged = f"stalled: no further progress after {k + 1} iterations (best " \
                f"{best.target:.3g}, tolerance {tolerance:g}): the solver's precision ran out", \
                False
            break
        k += 1
    history = pd.DataFrame(rows, columns=["iteration", "exploitability", "exploitability_reg",
                                          "J", "elapsed_s"])
    return SolveResult(evaluation=ev if converged else best, history=history,
                       stop_reason=reason, converged=converged)
