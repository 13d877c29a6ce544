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


BATCH_KINDS = ("count", "fraction", "sqrt", "all", "schedule")


@dataclass(frozen=True)
class Batch:
    """How many of the N agents act per step, in the form the spec gives it (MODEL.md 1).

    ``kind`` is one of ``BATCH_KINDS``: a ``count`` B (``value`` an int), a ``fraction`` f of N
    (B = max(1, round(f N))), ``sqrt`` (B = max(1, round(sqrt N))), ``all`` (B = N), or a cyclic
    per-step ``schedule`` of counts (``value`` a tuple). ``sizes(N)`` resolves it to integers,
    the one place that does; ``plain`` is the form a spec writes (and reads back).
    """

    kind: str
    value: int | float | tuple[int, ...] | None = None

    @staticmethod
    def of(plain: int | float | str | list[int] | tuple[int, ...] | Batch) -> Batch:
        """The batch a (validated) spec value stands for: 10, 0.1, "sqrt", "all", [1, 5]."""
        if isinstance(plain, Batch):
            return plain
        if isinstance(plain, str):
            if plain not in ("sqrt", "all"):
                raise ValueError(f"not a batch: {plain!r}")
            return Batch(plain)
        if isinstance(plain, list | tuple):
            return Batch("schedule", tuple(int(b) for b in plain))
        if isinstance(plain, float):
            return Batch("fraction", plain)
        return Batch("count", int(plain))

    @property
    def plain(self) -> int | float | str | list[int]:
        """The spec's form: an int, a fraction as a float, "sqrt", "all" or a list."""
        if isinstance(self.value, tuple):
            return list(self.value)
        return self.kind if self.value is None else self.value

    @property
    def label(self) -> str:
        """Short name, used for regimes: 1, sqrt, all, frac0.1, sched(1,5)."""
        if self.kind == "fraction":
            return f"frac{self.value:g}"
        if isinstance(self.value, tuple):
            return "sched(" + ",".join(map(str, self.value)) + ")"
        return str(self.plain)

    def sizes(self, agents: int) -> tuple[int, ...]:
        """B for N = ``agents``: one entry, or a schedule's cycle."""
        value = self.value
        if isinstance(value, tuple):
            return value
        if isinstance(value, float):
            return (max(1, round(value * agents)),)
        if isinstance(value, int):
            return (value,)
        return (agents,) if self.kind == "all" else (max(1, round(math.sqrt(agents))),)


ALL = Batch("all")
