"""``tmf solve``: the equilibrium of a spec, with evidence of its uniqueness.

Runs the spec's solver from the uniform policy, then from ``solver.restarts`` random policies
(children of the spec's seed), and probes the monotonicity of the rewards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from tmfcli import seeds
from tmfcli.command_registry import Options
from tmfcli.io import results
from tmfcli.io.resolve import setting
from tmfcli.io.spec_types import Spec
from tmfcli.model.exploitability import Evaluation
from tmfcli.model.setting import Setting
from tmfcli.solvers import SolveResult, run
from tmfcli.solvers.uniqueness import (
    Probe,
    flow_distance,
    monotonicity_probe,
    policy_distance,
    random_policy,
)

Progress = Callable[[str, int, int], None]  # (phase, iteration, total)

# What the equilibrium (the run from the uniform policy) does not depend on: the name (it
# names the directory), the other commands' keys, how a finite population is activated and
# initialised, and the restarts (they only add evidence).
NOT_READ = ("name", "simulate", "bound_check")
NOT_READ_IN = {"population": ("activation", "init"), "solver": ("restarts",)}


def equilibrium_inputs(spec: dict[str, Any]) -> dict[str, Any]:
    """The keys of a resolved spec (``Spec.to_dict()``) that its equilibrium depends on."""
    inputs = {k: v for k, v in spec.items() if k not in NOT_READ}
    for section, keys in NOT_READ_IN.items():
        if isinstance(inputs.get(section), dict):
            inputs[section] = {k: v for k, v in inputs[section].items() if k not in keys}
    return inputs


def same_equilibrium(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two resolved specs have the same equilibrium inputs (so one solve serves both)."""
    return equilibrium_inputs(a) == equilibrium_inputs(b)


def label(converged: bool, exploitability: float) -> str:
    """How a solved policy is named in summaries and manifests."""
    return f"{'equilibrium' if converged else 'not converged'} (exploitability " \
        f"{exploitability:.2e})"


def warning(stop_reason: str) -> str:
    """The one stderr line of a solve that did not converge (solve, simulate, bound-check)."""
    fix = "raise solver.tolerance, set solver.params.polish: true, or change solver.algorithm" \
        if stop_reason.startswith("stalled") else \
        "raise solver.iterations or change solver.algorithm"
    return f"Warning: the solve did not converge ({stop_reason}) — {fix} (docs/solvers.md)"


@dataclass(frozen=True)
class Equilibrium:
    setting: Setting
    result: SolveResult
    probe: Probe
    restarts: list[SolveResult] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def evaluation(self) -> Evaluation:
        return self.result.evaluation

    @property
    def flow_spread(self) -> float:
        """Largest max_t ||mu - mu'||_1 between any two of the runs (nan without restarts)."""
        flows = [r.evaluation.flow.mu for r in self._runs]
        return max((flow_distance(a, b) for a, b in combinations(flows, 2)), default=np.nan)

    @property
    def policy_spread(self) -> float:
        """Largest mu-weighted policy distance between any two of the runs."""
        evs = [r.evaluation for r in self._runs]
        return max((policy_distance(a.policy, b.policy, a.flow.mu, b.flow.mu, a.flow.r[-1],
                                    a.flow.alpha)
                    for a, b in combinations(evs, 2)), default=np.nan)

    @property
    def _runs(self) -> list[SolveResult]:
        return [self.result, *self.restarts]

    def evidence(self) -> dict[str, float | int | str]:
        """Uniqueness evidence for the summary and the manifest."""
        p = self.probe
        return {
            "monotonicity_samples": p.samples,
            "monotonicity_violations": p.violations,
            "monotonicity_largest": p.largest,
            "dynamics_depend_on_mu": "yes" if p.dynamics_vary > 0 else "no",
            "restarts": len(self.restarts),
            "restarts_converged": sum(r.converged for r in self.restarts),
            "flow_spread": self.flow_spread,
            "policy_spread": self.policy_spread,
        }


def solve(spec: Spec, on_progress: Progress | None = None,
          restarts: int | None = None) -> Equilibrium:
    """Solve the spec's mean-field equilibrium (with ``restarts`` extra random starts)."""
    start = time.perf_counter()
    problem = setting(spec)
    algorithm = spec.build_algorithm()
    n_restarts = spec.solver.restarts if restarts is None else restarts
    probe = monotonicity_probe(problem.game, float(problem.alpha.mean()),
                               seeds.generator(spec.seed, seeds.SOLVE_PROBE))
    iterations, tol = spec.solver.iterations, spec.solver.tolerance

    def tick(phase: str) -> Callable[[int, Evaluation], None] | None:
        if on_progress is None:
            return None
        return lambda k, ev: on_progress(phase, k, iterations)

    main = run(problem, algorithm, iterations, tol, on_iteration=tick("solve"))
    extra = []
    game = problem.game
    for i in range(n_restarts):
        pi0 = random_policy(seeds.generator(spec.seed, seeds.SOLVE_RESTART, i), problem.T,
                            game.n_obs, game.n_act)
        extra.append(run(problem, algorithm, iterations, tol, policy0=pi0,
                         on_iteration=tick(f"restart {i + 1}/{n_restarts}")))
    return Equilibrium(setting=problem, result=main, probe=probe, restarts=extra,
                       elapsed_s=time.perf_counter() - start)


def solve_into(spec: Spec, directory: Path, options: Options | None = None,
               on_progress: Progress | None = None) -> None:
    """Solve and write iterations.csv, policy.csv, flow.csv and manifest.yaml (last)."""
    from tmfcli.io.policy_files import write_policy
    from tmfcli.model.policy import TabularPolicy

    eq = solve(spec, on_progress=on_progress)
    ev = eq.evaluation
    run_ = eq.result
    history = run_.history.assign(seed=spec.seed)
    results.write_csv(history, directory / "iterations.csv")
    game = eq.setting.game
    write_policy(TabularPolicy(ev.policy), directory, game.obs_labels, game.act_labels)
    results.write_csv(results.flow_table(ev.flow.mu, game.obs_labels), directory / "flow.csv")
    outcome = {
        "stop_reason": run_.stop_reason,
        "converged": run_.converged,
        "iterations": run_.iterations,
        "exploitability": ev.exploitability,
        "exploitability_reg": ev.exploitability_reg,
        "J": ev.J,
        "steps": eq.setting.T,
        "uniqueness": eq.evidence(),
        "timings": {"total_s": round(eq.elapsed_s, 3),
                    "solve_s": round(float(history["elapsed_s"].iloc[-1]), 3)},
    }
    results.write_yaml(results.manifest(spec, "solve", **outcome), directory / results.MANIFEST)
