"""YAML games (interpreted expression tables) against the shipped Python games they rewrite,
side by side in one run: loading a spec (parse + quick check), one kernel call on a batch,
one policy evaluation (flow + two backward passes) and a count-based simulation. One core."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.exploitability import evaluate
from tmfcli.model.policy import TabularPolicy
from tmfcli.simulation.counts import simulate

GAMES = Path(__file__).resolve().parent.parent / "experiments" / "games"


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def spec_of(game: dict[str, Any], T: int, population: dict[str, Any]) -> dict[str, Any]:
    return {"name": "bench", "game": game, "horizon": {"steps": T}, "population": population}


def compare(name: str) -> list[tuple[str, float, float]]:
    """(what, YAML seconds, shipped seconds) for the game ``name``."""
    games = ({"file": str(GAMES / f"{name}.yaml")}, {"name": name})
    mean_field = {"alpha": 0.5}
    rows: list[tuple[str, float, float]] = []
    load = [best_of(lambda g=g: specs.from_dict(spec_of(g, 1000, mean_field))) for g in games]
    rows.append(("load spec (parse + quick check)", load[0], load[1]))
    settings = [setting(specs.from_dict(spec_of(g, 1000, mean_field))) for g in games]
    O, A = settings[0].game.n_obs, settings[0].game.n_act
    mu = np.random.default_rng(0).dirichlet(np.ones(O), size=100)
    call = [best_of(lambda s=s: s.game.transition(mu, 0), 50) for s in settings]
    rows.append(("transition, batch of 100 mu", call[0], call[1]))
    # T per-step indices: 1000, or 2000 for a timed game (decision and time stages)
    pi = np.random.default_rng(1).dirichlet(np.ones(A), size=(settings[0].T, O))
    ev = [best_of(lambda s=s: evaluate(s, pi), 3) for s in settings]
    rows.append(("evaluate a policy, T = 1000, alpha 0.5", ev[0], ev[1]))
    population = {"agents": 1000, "batch": 100}
    sims = [setting(specs.from_dict(spec_of(g, 200, population))) for g in games]
    policy = TabularPolicy(pi[:sims[0].T])
    sim = [best_of(lambda s=s: simulate(s, policy, 100, seed=0), 3) for s in sims]
    rows.append(("simulate N=1000 B=100 T=200 R=100", sim[0], sim[1]))
    return rows


def main() -> None:
    print(f"  {'game':<20} {'what':<38} {'YAML ms':>10} {'shipped ms':>10} {'ratio':>7}")
    # queueing.yaml is timed (block exponential, numpy loops), the shipped queueing compiled
    for name in ("queueing", "queueing_per_step", "resource_selection_per_step"):
        for what, a, b in compare(name):
            print(f"  {name:<20} {what:<38} {a * 1e3:>10.3f} {b * 1e3:>10.3f} {a / b:>7.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
