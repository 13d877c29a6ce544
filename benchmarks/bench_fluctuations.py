"""The linear-noise prediction (tmfcli.analysis.fluctuations) for every shipped experiment.

What ``tmf simulate`` adds (the prediction with the refined flow, refined=True, and the return
correction) for each spec with a population, and what ``tmf bound-check`` adds (refined=False,
every cell of the grid, summed) for each spec that has a ``bound_check`` block. The policy is the
uniform one: the cost depends on the steps, the game and the derivative path, not on the
policy's values. Target: well under a second per experiment. The first call compiles the
Monte Carlo loop (numba, cached on disk afterwards); it is timed apart.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from tmfcli.analysis.fluctuations import predict, return_correction
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.policy import uniform_policy

ROOT = Path(__file__).resolve().parent.parent / "experiments"


def spec_files() -> list[Path]:
    return sorted(ROOT.glob("*.yaml")) + sorted((ROOT / "paper").glob("*.yaml"))


def main() -> None:
    start = time.perf_counter()  # compile (or load) the Monte Carlo loop once
    spec = specs.load(ROOT / "resource-demo.yaml")
    s = setting(spec)
    predict(s, uniform_policy(s.game.n_obs, s.game.n_act, s.T), 0)
    print(f"first call (numba compile or cache load): {time.perf_counter() - start:.2f} s")
    print(f"{'experiment':<28} {'command':<12} {'cells':>5} {'steps':>7} {'derivatives':<19} "
          f"{'seconds':>8}")
    for path in spec_files():
        spec = specs.load(path)
        game = spec.build_game()
        uniform = None
        if spec.population.agents is not None:
            s = setting(spec)
            uniform = uniform_policy(game.n_obs, game.n_act, s.T)
            t0 = time.perf_counter()
            pred = predict(s, uniform, 0, spec.population.activation, spec.population.init)
            return_correction(s, uniform, pred.fluct)
            took = time.perf_counter() - t0
            print(f"{path.stem:<28} {'simulate':<12} {1:>5} {s.T:>7} "
                  f"{pred.fluct.method:<19} {took:>8.3f}")
        if "bound_check" in (yaml.safe_load(path.read_text()) or {}):
            bc = spec.bound_check
            total, steps, method = 0.0, 0, ""
            for b in bc.batch:
                for n in bc.agents:
                    s = setting(spec, agents=n, batch=b)
                    pol = uniform_policy(game.n_obs, game.n_act, s.T)
                    t0 = time.perf_counter()
                    pred = predict(s, pol, 0, spec.population.activation, spec.population.init,
                                   refined=False)
                    total += time.perf_counter() - t0
                    steps += s.T
                    method = pred.fluct.method
            cells = len(bc.batch) * len(bc.agents)
            print(f"{path.stem:<28} {'bound-check':<12} {cells:>5} {steps:>7} {method:<19} "
                  f"{total:>8.3f}")
    np.seterr(all="warn")


if __name__ == "__main__":
    main()
