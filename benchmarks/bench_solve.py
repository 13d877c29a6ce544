"""Solver speed, measured side by side in one run, on one core:

1. one policy evaluation (flow + policy values + best response, ``exploitability.evaluate``):
   accelerated path vs the pure-numpy reference, and vs its flop count on the non-zeros of the
   kernels at the rate this core reaches on a plain compiled multiply-add loop;
2. the first call in a fresh process (numba import and cached machine code);
3. time and iterations to exploitability 1e-3 and 1e-6 for the targets of docs/solvers.md, and
   how far the exploitability history ever rises above its running minimum; mirror-descent and,
   on the potential games, the ``potential`` solver side by side;
4. the solver ``auto`` picks on each game of the solver table, and how far its history rises.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np

from tmfcli.io.spec import make_setting
from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.setting import Setting
from tmfcli.solvers import ALGORITHMS, run
from tmfcli.solvers.registry import choose

ROOT = Path(__file__).resolve().parent.parent


def per_call(fn: Callable[[], object], repeat: int = 10) -> float:
    """Best of ``repeat`` timings (the machine is shared: the minimum is the least disturbed)."""
    fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return float(best)


@nb.njit(cache=True)
def _dot(x: np.ndarray, y: np.ndarray) -> float:  # pragma: no cover - compiled
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i]
    return s


def core_rate() -> float:
    """Flops per second of a compiled multiply-add loop over 10^5 doubles (in cache)."""
    x, y = np.random.default_rng(0).random((2, 100_000))
    return 2 * x.size / per_call(lambda: _dot(x, y), 50)


def flops(s: Setting, ev: Evaluation) -> float:
    """Multiply-adds of one evaluation counted on the non-zeros, x2: the flow and two backward
    passes each read P once per step (and P0 when alpha < 1) and combine O*A policy terms."""
    assert ev.flow.sparse is not None
    nnz, nnz0 = ev.flow.sparse.nnz
    O, A = s.game.n_obs, s.game.n_act
    idle = float((s.alpha < 1).mean())
    per_step = nnz + O * A + idle * (nnz0 + O)
    return 2.0 * 3 * s.T * per_step


def evaluation_cost() -> None:
    rate = core_rate()
    print(f"one evaluation (flow + policy values + best response); this core: {rate / 1e9:.2f} "
          "GFLOP/s on a compiled multiply-add loop")
    print(f"  {'problem':34s} {'nnz(P)':>8s} {'fast':>9s} {'numpy ref':>10s} {'speed-up':>8s}"
          f" {'flops':>8s} {'x flop time':>11s}")
    cases: list[tuple[str, str, float, dict[str, Any], int]] = [
        ("beach_bar n=100 T=100 alpha=1", "beach_bar", 1.0, {"n": 100}, 100),
        ("beach_bar n=1000 T=100 alpha=1", "beach_bar", 1.0, {"n": 1000}, 100),
        ("queueing K=3 T=10^4 alpha=1", "queueing_per_step", 1.0, {}, 10_000),
        ("queueing K=3 T=10^4 alpha=0.001", "queueing_per_step", 0.001, {}, 10_000),
    ]
    for label, game, alpha, params, T in cases:
        s = make_setting(game, alpha, steps=T, params=params)
        pi = np.random.default_rng(0).dirichlet(np.ones(s.game.n_act), size=(T, s.game.n_obs))
        ev = evaluate(s, pi)
        fast = per_call(lambda s=s, pi=pi: evaluate(s, pi))
        ref = per_call(lambda s=s, pi=pi: evaluate(s, pi, fast=False), 1)
        f = flops(s, ev)
        assert ev.flow.sparse is not None
        print(f"  {label:34s} {ev.flow.sparse.nnz[0]:>8d} {fast * 1e3:>7.2f}ms {ref * 1e3:>8.1f}ms"
              f" {ref / fast:>7.0f}x {f:>8.1e} {fast / (f / rate):>10.1f}x", flush=True)


def first_call() -> None:
    code = ("import time; t = time.perf_counter(); import numpy as np; "
            "from tmfcli.io.spec import make_setting; "
            "from tmfcli.model.exploitability import evaluate; "
            "s = make_setting('queueing_per_step', 0.5, steps=30); "
            "evaluate(s, np.full((30, 4, 4), 0.25)); print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout) for _ in range(3)]
    print(f"\nfirst evaluation in a fresh process (imports, numba, cached machine code): "
          f"{min(times):.2f} s (best of 3)")


@dataclass(frozen=True)
class Target:
    label: str
    setting: Setting
    algorithm: str
    budget_s: float


class OutOfTime(Exception):
    pass


def targets() -> list[Target]:
    beach = make_setting("beach_bar", 1.0, steps=100, params={"n": 100})
    out = [Target("beach_bar n=100 T=100 alpha=1", beach, algorithm, 10.0)
           for algorithm in ("mirror-descent", "potential")]
    for game in ("resource_selection", "queueing"):  # the paper games (timed)
        for batch in (1, "sqrt", "all"):
            s = make_setting(game, horizon={"rounds": 10},
                             population={"agents": 1000, "batch": batch})
            # the potential solver applies to potential games (resource_selection)
            algorithms = ("mirror-descent", "potential") if s.game.potential() is not None \
                else ("mirror-descent",)
            out.extend(Target(f"{game} N=1000 B={batch} 10 rounds (T={s.T})", s, algorithm,
                              30.0) for algorithm in algorithms)
    for alpha in (1.0, 0.5, 0.1):
        out.append(Target(f"rock_paper_scissors alpha={alpha:g}",
                          make_setting("rock_paper_scissors", alpha), "anderson", 10.0))
    return out


def solver_targets() -> None:
    print("\ntime and iterations to exploitability 1e-3 and 1e-6 (budget per run in brackets);"
          "\n'rise': the largest ratio of an iterate's exploitability to the best before it")
    for tg in targets():
        rows: list[tuple[int, float, float]] = []
        start = time.perf_counter()

        def record(k: int, ev: Evaluation, start: float = start, budget: float = tg.budget_s,
                   rows: list[tuple[int, float, float]] = rows) -> None:
            rows.append((k, ev.exploitability, time.perf_counter() - start))
            if rows[-1][2] > budget:
                raise OutOfTime

        try:
            run(tg.setting, ALGORITHMS[tg.algorithm](), 10**6, 1e-6, on_iteration=record)
        except OutOfTime:
            pass
        e = np.array([r[1] for r in rows])

        rise = float(np.max(e[1:] / np.minimum.accumulate(e)[:-1])) if len(e) > 1 else 1.0
        print(f"  {tg.label:44s} [{tg.algorithm}, {tg.budget_s:g} s] start {e[0]:.2e}  "
              f"1e-3: {reach(rows, 1e-3):18s} 1e-6: {reach(rows, 1e-6):18s} best {e.min():.1e} "
              f"after {len(e) - 1} it, rise {rise:.1f}x", flush=True)


def default_solver() -> None:
    """What ``solver.algorithm: auto`` picks on the games of docs/solvers.md's table, how many
    iterations it needs for 1e-6, and how far its history rises (2000 iterations at most)."""
    print("\nthe default solver (auto) from the uniform policy, tolerance 1e-8, 2000 iterations")
    games: dict[str, int | None] = {"resource_selection_per_step": 30, "left_right": None,
                                    "beach_bar": 30, "rock_paper_scissors": None,
                                    "queueing_per_step": 30, "sis": None}
    for game, steps in games.items():
        for alpha in (1.0, 0.5, 0.1):
            s = make_setting(game, alpha, steps=steps)
            name = choose(s.game, s.tau)
            start = time.perf_counter()
            e = run(s, ALGORITHMS[name](), 2000, 1e-8).history["exploitability"].to_numpy()
            rise = float(np.max(e[1:] / np.minimum.accumulate(e)[:-1])) if len(e) > 1 else 1.0
            hit = np.flatnonzero(e <= 1e-6)
            print(f"  {game:20s} alpha={alpha:<4g} {name:15s} 1e-6: "
                  f"{f'{hit[0]} it' if hit.size else 'not reached':12s} best {e.min():.1e} "
                  f"rise {rise:.2f}x ({time.perf_counter() - start:.2f} s)", flush=True)


def reach(rows: list[tuple[int, float, float]], level: float) -> str:
    """When and at which iteration the exploitability first reached ``level``."""
    hit = next((r for r in rows if r[1] <= level), None)
    return "not reached" if hit is None else f"{hit[2]:6.2f} s ({hit[0]} it)"


def main() -> None:
    if "--targets" not in sys.argv[1:]:
        evaluation_cost()
        first_call()
    solver_targets()
    default_solver()


if __name__ == "__main__":
    main()
