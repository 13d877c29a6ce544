"""Timed games (MODEL.md section 9) against the per-step games, side by side in one run.

1. One policy evaluation (flow + policy values + best response) of queueing at T = 10^4
   decision steps, alpha = 0.001 (N = 1000, B = 1, 10 rounds), timed (2 x 10^4 per-step
   indices: decision and time stages, compiled kernel) against queueing_per_step (10^4 steps);
   and the same on the numpy reference path at T = 10^3.
2. The time stage per step: the closed form of the shipped queueing, the block matrix
   exponential (Van Loan) that a timed game without a closed form gets, batched over steps, and
   one whole evaluation's share of each (how much of a step the exponential costs).
One core; nothing is asserted.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench_games import best_of
from tmfcli.io import resolve
from tmfcli.io import spec as specs
from tmfcli.model.exploitability import evaluate
from tmfcli.model.games.timed import stage
from tmfcli.model.setting import Setting


def setting_of(game: str, steps: int, alpha: float) -> Setting:
    return resolve.setting(specs.from_dict({"name": "bench", "game": {"name": game},
                                          "horizon": {"steps": steps},
                                          "population": {"alpha": alpha}}))


def evaluation(T: int, fast: bool) -> tuple[float, float]:
    out = []
    for game in ("queueing", "queueing_per_step"):
        s = setting_of(game, T, 0.001)
        pi = np.random.default_rng(0).dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs))
        evaluate(s, pi, fast=fast)  # compile / warm up
        out.append(best_of(lambda s=s, pi=pi: evaluate(s, pi, fast=fast), 5 if fast else 2))
    return out[0], out[1]


def stages(T: int) -> tuple[float, float, float]:
    """Seconds for T time stages: closed form, block exponential (batched), and T
    single-step calls of the block exponential."""
    s = setting_of("queueing", 10, 1.0)
    game = s.game.at(0.001, 0.99)  # type: ignore[attr-defined]
    mu = np.random.default_rng(1).dirichlet(np.ones(game.n_obs), size=T)
    closed = best_of(lambda: game.time_stage(mu))
    G, f = game.generator(mu), game.flow_reward(mu)
    batched = best_of(lambda: stage(G, f, game.dt, game.gamma))
    one = best_of(lambda: [stage(G[k], f[k], game.dt, game.gamma) for k in range(200)], 3)
    return closed, batched, one * T / 200


def main() -> None:
    print("  one evaluation of queueing, alpha = 0.001 (N = 1000, B = 1)")
    print(f"  {'path':<34} {'T':>6} {'timed ms':>10} {'per-step ms':>12} {'ratio':>7}")
    for T, fast in ((10_000, True), (1_000, False)):
        a, b = evaluation(T, fast)
        path = "compiled" if fast else "numpy reference"
        print(f"  {path:<34} {T:>6} {a * 1e3:>10.2f} {b * 1e3:>12.2f} {a / b:>7.2f}", flush=True)
    T = 10_000
    closed, batched, single = stages(T)
    s = setting_of("queueing", T, 0.001)
    pi = np.full((s.T, s.game.n_obs, s.game.n_act), 1.0 / s.game.n_act)
    whole = best_of(lambda: evaluate(s, pi))
    print(f"\n  the time stages of T = {T} steps (E and F, queueing, K = 3)")
    print(f"  {'closed form (numpy, batched)':<40} {closed * 1e3:>9.2f} ms "
          f"({closed / T * 1e6:.2f} us/step, {closed / whole:.0%} of an evaluation)")
    print(f"  {'block exponential (scipy, batched)':<40} {batched * 1e3:>9.2f} ms "
          f"({batched / T * 1e6:.2f} us/step, {batched / closed:.1f}x the closed form)")
    print(f"  {'block exponential, one call per step':<40} {single * 1e3:>9.2f} ms "
          f"({single / T * 1e6:.2f} us/step)")
    print(f"  {'whole evaluation (compiled)':<40} {whole * 1e3:>9.2f} ms")


if __name__ == "__main__":
    main()
