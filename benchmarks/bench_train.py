"""tmf train: one default run (resource selection, N = 1000, B = N, the spec
experiments/train-resource.yaml with its 40 iterations), the same at B = sqrt N and 1 side by
side (in rounds, so T = H N / B steps), then at a common T in steps; samples (agent decisions)
per second; how the cost of one outer iteration grows with N (at B = N, should be flat) and
with T. CPU time of this process (the machine may be shared); nothing asserted.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from tmfcli.commands.train import config_of
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.learning.train import train

SPEC = "experiments/train-resource.yaml"


def timed_run(overrides: list[str], **change: Any) -> tuple[float, int, int, float]:
    """(seconds, steps T, samples, final exploitability) of one training run."""
    spec = specs.load(SPEC, overrides)
    s = setting(spec)
    config = replace(config_of(spec), **change)
    start = time.process_time()
    result = train(s, config)
    elapsed = time.process_time() - start
    return elapsed, s.T, result.samples, result.evaluation.exploitability


def main() -> None:
    timed_run(["population.batch=1", "horizon.rounds=1", "population.agents=50"],
              iterations=2)  # warm-up: the first evaluation compiles the model's kernels
    print(f"default run ({SPEC}: tmf-pg, N = 1000, 2 rounds, 40 iterations x 4 rollouts), "
          "B = N against B = 1, side by side")
    print(f"  {'B':>5} {'steps':>6} {'seconds':>8} {'ratio':>6} {'samples/s':>10} "
          f"{'exploit.':>10}")
    base = None
    for batch in ("all", "sqrt", "1"):
        sec, T, samples, expl = timed_run([f"population.batch={batch}"])
        base = base or sec
        print(f"  {batch:>5} {T:>6} {sec:>8.2f} {sec / base:>6.1f} {samples / sec:>10.3g} "
              f"{expl:>10.4f}")
    print("the same with the horizon in steps (T = 200 for every B): cost per step against B")
    print(f"  {'B':>5} {'steps':>6} {'seconds':>8} {'ratio':>6} {'samples/s':>10}")
    base = None
    for batch in ("all", "sqrt", "1"):
        sec, T, samples, _ = timed_run([f"population.batch={batch}", "horizon={steps: 200}",
                                        "train.time_index=step"],
                                       time_index="step", iterations=10)
        base = base or sec
        print(f"  {batch:>5} {T:>6} {sec:>8.2f} {sec / base:>6.1f} {samples / sec:>10.3g}")
    print("one outer iteration (rollouts + critic + 10 inner steps + exact evaluation) against N,"
          " B = N, 2 rounds")
    print(f"  {'N':>9} {'ms/iteration':>13}")
    for N in (10**3, 10**5, 10**7):
        sec, *_ = timed_run([f"population.agents={N}"], iterations=5)
        print(f"  {N:>9} {1000 * sec / 5:>13.1f}")
    print("one outer iteration against T (B = 1, N = 1000; T = rounds x N)")
    print(f"  {'rounds':>6} {'T':>6} {'ms/iteration':>13} {'us/step':>8}")
    for H in (1, 2, 4):
        sec, T, *_ = timed_run(["population.batch=1", f"horizon.rounds={H}"], iterations=3)
        print(f"  {H:>6} {T:>6} {1000 * sec / 3:>13.1f} {1e6 * sec / 3 / T:>8.1f}")


if __name__ == "__main__":
    main()
