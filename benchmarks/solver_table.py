"""The table of docs/solvers.md: best exploitability each solver reaches, and how fast.

    .venv/bin/python benchmarks/solver_table.py [game ...]   # prints Markdown

Every solver starts from the uniform policy with the budget below; a run stops at the
tolerance, after ITERATIONS iterations, or after SECONDS of wall time, whichever comes first.
Each cell is the best (unregularised) exploitability seen, then the iteration and wall time
at which it first reached 1e-6 ("(1e-6: 717 it, 520 ms)") or, when it never did, the length of
the whole run ("(2000 it, 4.1 s)"); "n/a" where the solver refuses the game (potential).
One process, one thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tmfcli.io.spec import make_setting
from tmfcli.model.exploitability import Evaluation
from tmfcli.model.setting import Setting
from tmfcli.solvers import ALGORITHMS, run
from tmfcli.solvers.registry import choose

ITERATIONS = 2000
SECONDS = 20.0
TOLERANCE = 1e-8
TARGET = 1e-6
ALPHAS = (1.0, 0.5, 0.1)
# game -> horizon in steps (None: the game's default)
GAMES: dict[str, int | None] = {"resource_selection_per_step": 30, "left_right": None,
                                "beach_bar": 30, "rock_paper_scissors": None,
                                "queueing_per_step": 30, "sis": None}
# column label -> (algorithm, params); the defaults of each solver, plus two variants
SOLVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "mirror-descent": ("mirror-descent", {}),
    "plain OMD": ("mirror-descent", {"normalize": False, "adaptive": False,
                                     "learning_rate": 1.0}),
    "fixed-point": ("fixed-point", {}),
    "fictitious-play": ("fictitious-play", {}),
    "tmf-pg": ("tmf-pg", {}),
    "tmf-pg nat+norm": ("tmf-pg", {"natural": True, "normalize": True, "inner_steps": 3}),
    "anderson": ("anderson", {}),
    "potential": ("potential", {}),
}


class OutOfTime(Exception):
    pass


def make(game: str, alpha: float) -> Setting:
    return make_setting(game, alpha, steps=GAMES[game])


def measure(s: Setting, name: str, params: dict[str, Any]) -> tuple[float, tuple[int, float]
                                                                   | None, tuple[int, float]]:
    """(best exploitability, (iteration, seconds) of the first one <= TARGET or None,
    (iterations, seconds) of the whole run)."""
    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def record(k: int, ev: Evaluation) -> None:
        elapsed = time.perf_counter() - start
        rows.append((k, ev.exploitability, elapsed))
        if elapsed > SECONDS:
            raise OutOfTime

    try:
        run(s, ALGORITHMS[name](**params), ITERATIONS, TOLERANCE, on_iteration=record)
    except OutOfTime:
        pass
    best = min(e for _, e, _ in rows)
    hit = next(((k, t) for k, e, t in rows if e <= TARGET), None)
    return best, hit, (rows[-1][0], rows[-1][2])


def applies(s: Setting, name: str) -> bool:
    """potential needs a declared potential, mu-independent dynamics and tau = 0."""
    return name != "potential" or choose(s.game, s.tau) == "potential"


def duration(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def cell(best: float, hit: tuple[int, float] | None, took: tuple[int, float]) -> str:
    shown = f"{best:.1e}"
    if hit is not None:
        return f"**{shown}** (1e-6: {hit[0]} it, {duration(hit[1])})"
    return f"{shown} ({took[0]} it, {duration(took[1])})"


def main() -> None:
    games = sys.argv[1:] or list(GAMES)
    print(f"Budget: {ITERATIONS} iterations or {SECONDS:g} s per run, tolerance "
          f"{TOLERANCE:g}, uniform initial policy. Machine: {os.cpu_count()}-core CPU "
          f"({platform.processor() or platform.machine()}), one thread, Python "
          f"{platform.python_version()}. Bold: reached {TARGET:g}.\n")
    print("| game | alpha | " + " | ".join(SOLVERS) + " |")
    print("|---|---|" + "---|" * len(SOLVERS))
    for game in games:
        for alpha in ALPHAS:
            s = make(game, alpha)
            cells = [cell(*measure(s, name, params)) if applies(s, name) else "n/a"
                     for name, params in SOLVERS.values()]
            label = f"{game} (T={s.T})"
            print(f"| {label} | {alpha:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
