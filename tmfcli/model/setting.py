"""The numbers the engine uses: horizon T in steps, alpha_t = B_t / N, per-step discount.

Time units (MODEL.md section 1): a horizon of H rounds is T = ceil(H / alpha) steps, so each
agent acts about H times whatever B is; the discount is then per round, i.e. gamma^alpha per step.
``tmfcli.io.resolve.setting`` resolves a spec into a ``Setting``; this module knows no specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tmfcli.model.games import Game
from tmfcli.model.games.base import Array

# A batch is an int, "all", "sqrt", {"fraction": f} or a cyclic per-step schedule (tuple of ints).
Batch = int | str | float | tuple[int, ...]


@dataclass(frozen=True)
class Setting:
    """A mean-field problem: game, active fractions alpha (T,), per-step discount, entropy tau.

    ``agents`` and ``batches`` (B_t, shape (T,)) are set when the spec defines a finite
    population; the mean field itself only uses alpha_t = B_t / N.
    """

    game: Game
    alpha: Array
    gamma: float
    tau: float = 0.0
    agents: int | None = None
    batches: np.ndarray | None = None
    stages: int = 1  # per-step indices per decision step: 2 for a timed game (MODEL.md 9)

    @property
    def T(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def decision_batches(self) -> np.ndarray:
        """B_t of the decision steps (a timed game's time stages, B = 0, left out)."""
        return np.asarray(self.batches)[::self.stages]


def batch_size(batch: Batch, agents: int) -> int | tuple[int, ...]:
    """B for N agents: all = N, sqrt = round(sqrt N), fraction f = max(1, round(f N))."""
    if batch == "all":
        return agents
    if batch == "sqrt":
        return max(1, round(math.sqrt(agents)))
    if isinstance(batch, float):
        return max(1, round(batch * agents))
    return batch  # type: ignore[return-value]


def batch_label(batch: Batch) -> str:
    """Short name of a batch form, used for regimes: 1, sqrt, all, frac0.1, sched(1,5)."""
    if isinstance(batch, float):
        return f"frac{batch:g}"
    if isinstance(batch, tuple):
        return "sched(" + ",".join(map(str, batch)) + ")"
    return str(batch)
