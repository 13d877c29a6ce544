"""What ``tmf simulate`` runs: replicas of the N-agent system beside the mean-field flow of the
same policy, the N-agent epsilon of the policy (deviation gain of one agent playing the
mean-field best response, ``tmfcli.simulation.epsilon``), and the tables, manifest entries and
summary rows of the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tmfcli.analysis.fit import normal_interval
from tmfcli.commands.jobs import Options
from tmfcli.io import user_files
from tmfcli.io.spec import Spec
from tmfcli.model.exploitability import evaluate
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, on_flow
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import (
    OnStep,
    Rollouts,
    Seed,
    check_inputs,
    gaps,
    path_of,
    simulate,
)
from tmfcli.simulation.epsilon import EpsilonEstimate, epsilon_n

EPS_STREAM = 1 << 30  # the child of the run's seed that drives the epsilon replicas


@dataclass(frozen=True)
class Comparison:
    """Replicas of the N-agent system beside the mean-field flow of the same policy.

    mu_bar (T+1, O) is the flow of ``pi_bar`` (T, O, A), the policy evaluated along it; J is
    the mean-field value of pi_bar and ``exploitability`` its exploitability on that flow.
    """

    setting: Setting
    rollouts: Rollouts
    pi_bar: Array
    mu_bar: Array
    J: float
    exploitability: float
    epsilon: EpsilonEstimate | None  # None when simulate.epsilon is false
    method: str
    elapsed_s: float
    epsilon_s: float


def compare(setting: Setting, policy: Policy, replicas: int, seed: Seed,
            activation: str = "subset", init: str = "iid",
            on_step: OnStep | None = None, epsilon: bool = True) -> Comparison:
    """Simulate ``replicas`` replicas, evaluate the policy on the mean field, and (with
    ``epsilon``) estimate its N-agent epsilon over as many paired replicas (from child
    ``EPS_STREAM`` of the seed)."""
    start = time.perf_counter()
    check_inputs(setting, policy, replicas, activation, init)
    pi_bar = on_flow(setting, policy)
    ev = evaluate(setting, pi_bar)
    rollouts = simulate(setting, policy, replicas, seed, activation, init,
                        _share(on_step, 0.0, 1 / 3 if epsilon else 1.0))
    middle = time.perf_counter()
    eps = None
    if epsilon:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        eps_seed = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, EPS_STREAM))
        eps = epsilon_n(setting, policy, replicas, eps_seed, activation=activation, init=init,
                        on_step=_share(on_step, 1 / 3, 2 / 3))
    end = time.perf_counter()
    return Comparison(setting=setting, rollouts=rollouts, pi_bar=pi_bar, mu_bar=ev.flow.mu,
                      J=ev.J, exploitability=ev.exploitability, epsilon=eps,
                      method=path_of(setting, activation), elapsed_s=end - start,
                      epsilon_s=end - middle)


def _share(on_step: OnStep | None, before: float, weight: float) -> OnStep | None:
    """A phase's progress (done, total) reported as per mille of the whole run: the
    simulation is a third of the work, the epsilon's two paired runs the rest."""
    if on_step is None:
        return None
    return lambda done, total: on_step(round(1000 * (before + weight * done / total)), 1000)


def kept_steps(T: int, every: int) -> Array:
    """The steps t of ``trajectory.csv``: 0, k, 2k, ... and always the last one, T."""
    return np.union1d(np.arange(0, T + 1, every), [T])


def tables(cmp: Comparison, seed: int, every: int = 1) -> dict[str, pd.DataFrame]:
    """The tidy tables of ``tmf simulate``: trajectory, replicas and summary (each with seed).

    ``trajectory.csv`` holds the steps of ``kept_steps(T, every)``; the gaps and returns of the
    other tables use every step.
    """
    R, T1, O = cmp.rollouts.mu_hat.shape
    steps = kept_steps(T1 - 1, every)
    mu_hat, mu_bar = cmp.rollouts.mu_hat[:, steps], cmp.mu_bar[steps]
    rep, t, o = np.meshgrid(np.arange(R), steps, np.arange(O), indexing="ij")
    names = cmp.setting.game.obs_labels
    labels = {"obs_label": np.asarray(names, dtype=object)[o.ravel()]} if names else {}
    trajectory = pd.DataFrame({"replica": rep.ravel(), "t": t.ravel(), "obs": o.ravel(),
                               **labels, "mu_hat": mu_hat.ravel(),
                               "mu_bar": np.broadcast_to(mu_bar, mu_hat.shape).ravel(),
                               "seed": seed})
    gap_max, gap_mean = gaps(cmp.rollouts, cmp.mu_bar)
    per_replica = pd.DataFrame({"replica": np.arange(R), "return_avg": cmp.rollouts.returns,
                                "gap_max": gap_max, "gap_mean": gap_mean, "seed": seed})
    rows = [(name, *normal_interval(per_replica[name].to_numpy()))
            for name in ("return_avg", "gap_max", "gap_mean")]
    rows.append(("return_minus_J", *normal_interval(cmp.rollouts.returns - cmp.J)))
    rows.append(("J", cmp.J, cmp.J, cmp.J))
    eps = cmp.epsilon
    if eps is not None:
        rows.append(("eps_n", eps.mean, eps.ci_low, eps.ci_high))
    summary = pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high"])
    summary["seed"] = seed
    return {"trajectory.csv": trajectory, "replicas.csv": per_replica, "summary.csv": summary}


def outcome(cmp: Comparison, spec: Spec, frames: dict[str, pd.DataFrame],
            description: str) -> dict[str, object]:
    """What the manifest of ``tmf simulate`` records besides the spec."""
    s = cmp.setting
    batches = np.asarray(s.batches)
    means = frames["summary.csv"].set_index("metric")["mean"]
    return {
        "policy": description, "method": cmp.method, "agents": s.agents,
        "batch_min": int(batches.min()), "batch_max": int(batches.max()), "steps": s.T,
        "replicas": int(cmp.rollouts.returns.shape[0]),
        "activation": spec.population.activation, "init": spec.population.init,
        "J": cmp.J, "exploitability": cmp.exploitability,
        "means": {str(k): float(v) for k, v in means.items()},
        "epsilon": None if cmp.epsilon is None else {
            "deviation": "mean-field best response to the flow of the policy",
            "replicas": cmp.epsilon.replicas, "return_policy": cmp.epsilon.return_policy,
            "return_deviation": cmp.epsilon.return_deviation},
        "timings": {"total_s": round(cmp.elapsed_s, 3), "epsilon_s": round(cmp.epsilon_s, 3)},
    }


def simulate_into(spec: Spec, directory: Path, options: Options,
                  on_progress: Callable[[str, int, int], None] | None = None) -> None:
    """Simulate under the ``--policy`` choice and write trajectory.csv, replicas.csv,
    summary.csv and manifest.yaml (last).

    An equilibrium is read from the run store's solve of the same equilibrium inputs when
    there is one (``policy_choice.solved_run``; the manifest then names it in
    ``policy_reused_from``), else solved here.
    """
    from tmfcli.commands.policy_choice import choose_policy, solved_run
    from tmfcli.io import results

    problem = needs_agents(spec)
    choice = choose_policy(spec, options.policy, solved=solved_run(spec))
    chosen = choice.get(spec, on_progress=on_progress)
    on_step = None if on_progress is None else \
        (lambda done, total: on_progress("steps", done, total))
    cmp = compare(problem, chosen.on_steps(problem.T), spec.simulate.replicas, spec.seed,
                  spec.population.activation, spec.population.init, on_step=on_step,
                  epsilon=spec.simulate.epsilon)
    frames = tables(cmp, spec.seed, spec.simulate.every)
    for name, frame in frames.items():
        results.write_csv(frame, directory / name)
    extra = outcome(cmp, spec, frames, chosen.description)
    reused = None if chosen.reused_from is None else str(chosen.reused_from)
    results.write_yaml(results.manifest(spec, f"simulate --policy {choice.key}", **extra,
                                        policy_converged=chosen.converged,
                                        policy_stop_reason=chosen.stop_reason,
                                        policy_reused_from=reused),
                       directory / results.MANIFEST)


def needs_agents(spec: Spec) -> Setting:
    """The spec's setting; simulate needs a finite population (``SpecError`` otherwise)."""
    from tmfcli.errors import SpecError
    from tmfcli.io.spec import setting

    problem = setting(spec)
    if problem.agents is None:
        raise SpecError("population.agents", "missing (simulate needs a finite population)",
                        "add population.agents and population.batch", spec.source)
    return problem


def summary_rows(directory: Path) -> list[tuple[str, str]]:
    """The rows of the summary shown by ``tmf simulate``, read back from its result files."""
    from tmfcli.io.results import read_manifest

    data = read_manifest(directory) or {}
    lo, hi = data.get("batch_min"), data.get("batch_max")
    x = data.get("exploitability")
    rows = [("policy", str(data.get("policy"))),
            ("exploitability at this B", "nan" if x is None else f"{float(x):.3g}"),
            ("agents N", str(data.get("agents"))),
            ("batch B", f"{lo}" if lo == hi else f"{lo}..{hi} (schedule)"),
            ("steps", str(data.get("steps"))), ("activation", str(data.get("activation"))),
            ("replicas", str(data.get("replicas"))), ("method", str(data.get("method")))]
    frame = user_files.result_table(directory / "summary.csv",
                                    "rerun with --force to recompute it").set_index("metric")
    for metric, label in (("J", "J (mean field)"), ("return_avg", "return (N agents), 95% CI"),
                          ("return_minus_J", "return - J"),
                          ("gap_max", "max_t ||mu_hat - mu_bar||_1"),
                          ("gap_mean", "mean_t ||mu_hat - mu_bar||_1"),
                          ("eps_n", "eps_N, 95% CI")):
        if metric not in frame.index:  # a result written before eps_n existed
            continue
        mean, low, high = (float(frame.at[metric, k])  # type: ignore[arg-type]
                           for k in ("mean", "ci_low", "ci_high"))
        rows.append((label, f"{mean:.4g}" if metric == "J" else
                     f"{mean:.4g}  [{low:.4g}, {high:.4g}]"))
        if metric == "eps_n":  # what eps_N is, on a line of its own (the labels stay narrow)
            rows.append(("  deviation gain of", "a mean-field best response"))
    rows.append(("results", str(directory)))
    return rows
