"""Solver speed: vectorised engine vs plain loops, cost per iteration, time to 1e-3 and 1e-6,
and how an evaluation (flow + two backward passes) grows with |O| and T. One core."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.conftest import make_setting
from tests.reference import flow_loop, values_loop
from tmfcli.model.exploitability import evaluate
from tmfcli.model.setting import Setting
from tmfcli.solvers import ALGORITHMS, run

# (label, game, params, steps, alpha, algorithm, algorithm params, iteration budget)
CASES: list[tuple[str, str, dict[str, Any], int, float, str, dict[str, Any], int]] = [
    ("beach_bar n=10 T=30 (the tested size)", "beach_bar", {}, 30, 1.0, "mirror-descent", {},
     3000),
    ("beach_bar n=100 T=100", "beach_bar", {"n": 100}, 100, 1.0, "mirror-descent", {}, 3000),
    ("resource_selection K=10 T=200", "resource_selection", {"K": 10}, 200, 1.0,
     "mirror-descent", {}, 3000),
]


def per_call(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def engine_vs_loops() -> None:
    s = make_setting("beach_bar", 0.5, steps=20, params={"n": 20})
    pi = np.random.default_rng(0).dirichlet(np.ones(3), size=(20, 20))

    def loops() -> None:
        mu = flow_loop(s, pi)
        values_loop(s, mu, pi)
        values_loop(s, mu, None)

    fast, slow = per_call(lambda: evaluate(s, pi), 20), per_call(loops, 2)
    print("exploitability of one policy (flow + 2 backward passes), beach_bar n=20 T=20:")
    print(f"  vectorised {fast * 1e3:8.2f} ms   plain loops {slow * 1e3:8.1f} ms   "
          f"ratio {slow / fast:6.0f}x")


def first_time_below(history: Any, level: float) -> str:
    hit = history[history["exploitability"] <= level]
    if hit.empty:
        return "not reached"
    row = hit.iloc[0]
    return f"{row['elapsed_s']:.2f} s (it {int(row['iteration'])})"


def solvers_at_size() -> None:
    print("\ntime per iteration and time to exploitability (recommended settings first):")
    for label, game, params, steps, alpha, best, best_params, budget in CASES:
        s = make_setting(game, alpha, steps=steps, params=params)
        print(f"  {label} (O={s.game.n_obs}, A={s.game.n_act}):")
        for name in [best, *(a for a in ALGORITHMS if a != best)]:
            algo = ALGORITHMS[name](**(best_params if name == best else {}))
            iters = budget if name == best else 20
            result = run(s, algo, iters, 1e-6)
            h = result.history
            per_it = h["elapsed_s"].iloc[-1] / max(1, len(h) - 1)
            line = f"    {name:16s} {per_it * 1e3:7.2f} ms/iteration"
            if name == best:
                line += (f"   from {h['exploitability'].iloc[0]:.2e}: to 1e-3 "
                         f"{first_time_below(h, 1e-3)}, to 1e-6 {first_time_below(h, 1e-6)}, "
                         f"final {h['exploitability'].iloc[-1]:.2e} after {len(h) - 1} its")
            print(line, flush=True)


def growth() -> None:
    print("\ncost of one evaluation, beach_bar, alpha=0.5:")
    print("  |O| (T=100):  " + "  ".join(f"{n}: {_cost(n, 100) * 1e3:.1f} ms"
                                         for n in (25, 50, 100, 200, 400)))
    print("  T (|O|=100):  " + "  ".join(f"{T}: {_cost(100, T) * 1e3:.1f} ms"
                                         for T in (50, 100, 200, 400)))


def _cost(n: int, T: int) -> float:
    s: Setting = make_setting("beach_bar", 0.5, steps=T, params={"n": n})
    pi = np.full((s.T, s.game.n_obs, s.game.n_act), 1.0 / s.game.n_act)
    return per_call(lambda: evaluate(s, pi))


def main() -> None:
    engine_vs_loops()
    solvers_at_size()
    growth()


if __name__ == "__main__":
    main()
