"""N-agent simulation: exact count-based vs agent-by-agent, side by side in one run; cost at
fixed B/N as N grows (should be flat); the sequential case (B = 1, 10 rounds); the N-agent
epsilon (tagged agent, two paired runs) against the plain simulation as N grows. One core.

Agent-based runs that would take more than ~20 s are skipped; their time is estimated from a
few steps and printed as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.policy import TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import path_of, simulate, simulate_agents
from tmfcli.simulation.epsilon import epsilon_n

BUDGET_S = 20.0


def make(game: str, N: int, B: Any, steps: int | None = None, rounds: int | None = None,
         mu0: list[float] | None = None) -> Setting:
    horizon = {"steps": steps} if steps is not None else {"rounds": rounds}
    data: dict[str, Any] = {"name": "bench", "game": {"name": game}, "horizon": horizon,
                            "population": {"agents": N, "batch": B}}
    if mu0 is not None:
        data["game"]["mu0"] = mu0
    return setting(specs.from_dict(data))


def policy(s: Setting) -> TabularPolicy:
    rng = np.random.default_rng(0)
    return TabularPolicy(rng.dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs)))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def count_vs_agents() -> None:
    T, R = 50, 10
    print(f"resource_selection K=3, T={T} steps, R={R} replicas: count-based (exact) vs "
          "agent-by-agent")
    print(f"  {'N':>9} {'B':>9} {'path':>10} {'counts s':>10} {'agents s':>12} {'ratio':>9}")
    for N in (10**3, 10**5, 10**6):
        for B in (1, "sqrt", "all"):
            s = make("resource_selection_per_step", N, B, steps=T, mu0=[0.5, 0.3, 0.2])
            pi = policy(s)
            fast = timed(lambda s=s, pi=pi: simulate(s, pi, R, 0))
            probe = make("resource_selection_per_step", N, B, steps=2, mu0=[0.5, 0.3, 0.2])
            per_step = timed(lambda p=probe: simulate_agents(p, policy(p), 1, 0)) / 2
            estimate = per_step * T * R
            if estimate > BUDGET_S:
                slow, note = estimate, " (est.)"
            else:
                slow, note = timed(lambda s=s, pi=pi: simulate_agents(s, pi, R, 0)), ""
            label = str(int(s.batches[0]))  # type: ignore[index]
            print(f"  {N:>9} {label:>9} {path_of(s, 'subset'):>10} {fast:>10.3f} "
                  f"{slow:>10.2f}{note:<6} {slow / fast:>8.0f}x", flush=True)
    print("  (est.) = skipped, over ~20 s: time of 2 steps x T x R")


def flat_in_N() -> None:
    T, R = 100, 100
    print(f"\nqueueing K=3 at B/N = 0.1 (general path), T={T} steps, R={R}: time vs N")
    print(f"  {'N':>11} {'seconds':>9} {'us/step/block':>15}")
    for exp in range(3, 9):
        N = 10**exp
        s = make("queueing_per_step", N, N // 10, steps=T, mu0=[0.4, 0.3, 0.2, 0.1])
        pi = policy(s)
        sec = timed(lambda s=s, pi=pi: simulate(s, pi, R, 0))
        print(f"  {N:>11} {sec:>9.3f} {sec / (T * 4) * 1e6:>15.0f}", flush=True)


def sequential_rounds() -> None:
    R = 100
    s = make("resource_selection_per_step", 10**4, 1, rounds=10)
    pi = policy(s)
    sec = timed(lambda: simulate(s, pi, R, 0))
    print(f"\nsequential: resource_selection N=10^4, B=1, 10 rounds = {s.T} steps, R={R}: "
          f"{sec:.1f} s ({sec / s.T * 1e6:.0f} us/step for all replicas; target < 30 s)")
    s = make("sis", 10**4, 1, rounds=10)
    pi = policy(s)
    sec = timed(lambda: simulate(s, pi, R, 0))
    print(f"sequential: sis (kernel depends on mu) same sizes: {sec:.1f} s "
          f"({sec / s.T * 1e6:.0f} us/step)")


def epsilon_vs_N() -> None:
    T, R = 100, 100
    print(f"\nepsilon_n (tagged agent, pi and best-response runs) vs simulate, queueing K=3, "
          f"T={T} steps, R={R}")
    print(f"  {'N':>11} {'B':>7} {'path':>10} {'simulate s':>11} {'epsilon_n s':>12} "
          f"{'ratio':>6}")
    warm = make("queueing_per_step", 100, 10, steps=5)  # compile the evaluation, untimed
    epsilon_n(warm, policy(warm), 2, 0)
    for exp in (3, 5, 7):
        N = 10**exp
        for B in (N // 10, 1):
            s = make("queueing_per_step", N, B, steps=T, mu0=[0.4, 0.3, 0.2, 0.1])
            pi = policy(s)
            sim = timed(lambda s=s, pi=pi: simulate(s, pi, R, 0))
            eps = timed(lambda s=s, pi=pi: epsilon_n(s, pi, R, 0))
            print(f"  {N:>11} {B:>7} {path_of(s, 'subset'):>10} {sim:>11.3f} {eps:>12.3f} "
                  f"{eps / sim:>5.1f}x", flush=True)
    print("  resource_selection (static dynamics, tabular pi: one pass follows both tagged "
          "agents)")
    for exp in (3, 5, 7):
        N = 10**exp
        s = make("resource_selection_per_step", N, N // 10, steps=T, mu0=[0.5, 0.3, 0.2])
        pi = policy(s)
        sim = timed(lambda s=s, pi=pi: simulate(s, pi, R, 0))
        eps = timed(lambda s=s, pi=pi: epsilon_n(s, pi, R, 0))
        print(f"  {N:>11} {N // 10:>7} {path_of(s, 'subset'):>10} {sim:>11.3f} {eps:>12.3f} "
              f"{eps / sim:>5.1f}x", flush=True)
    s = make("resource_selection_per_step", 10**4, 1, rounds=3)
    pi = policy(s)
    sim = timed(lambda: simulate(s, pi, R, 0))
    eps = timed(lambda: epsilon_n(s, pi, R, 0))
    print(f"  sequential: resource_selection N=10^4, B=1, 3 rounds = {s.T} steps: simulate "
          f"{sim:.2f} s, epsilon_n {eps:.2f} s ({eps / sim:.1f}x)")


def main() -> None:
    count_vs_agents()
    flat_in_N()
    sequential_rounds()
    epsilon_vs_N()


if __name__ == "__main__":
    main()
