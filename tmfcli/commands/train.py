"""What ``tmf train`` runs: TMF-PG (or a baseline) learned from N-agent rollouts, the exact
TMF-PG yardstick in the same policy class, and the tables, manifest entries and summary rows of
the result (docs/train.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tmfcli import seeds
from tmfcli.analysis.fit import normal_interval
from tmfcli.errors import SpecError
from tmfcli.io import user_files
from tmfcli.io.resolve import setting
from tmfcli.io.spec_types import Spec
from tmfcli.learning.learner import TrainConfig
from tmfcli.learning.registry import LEARNERS
from tmfcli.learning.train import TrainResult, train
from tmfcli.model.exploitability import evaluate
from tmfcli.model.setting import ALL, Setting
from tmfcli.simulation.epsilon import EpsilonEstimate, epsilon_n

Progress = Callable[[str, int, int], None]  # (phase, iteration, total)


def config_of(spec: Spec) -> TrainConfig:
    """The run's settings: the spec's train block, time index "auto" resolved, seed filled."""
    t = spec.train
    time_index = t.time_index
    if time_index == "auto":
        time_index = "round" if spec.horizon.rounds is not None else "step"
    return TrainConfig(algorithm=t.algorithm, iterations=t.iterations,
                       inner_steps=t.inner_steps, rollouts=t.rollouts, lr=t.lr, lr_decay=t.lr_decay,
                       optimizer=t.optimizer, entropy_bonus=t.entropy_bonus,
                       time_index=time_index, temperature=t.temperature,
                       seed=spec.seed if t.seed is None else t.seed,
                       activation=spec.population.activation, init=spec.population.init)


@dataclass(frozen=True)
class Training:
    """A training run, the run of its learner's yardstick on the same spec when it has one
    (``registry.Entry.yardstick``; tmf-pg: tmf-pg-exact), and the N-agent epsilon of the final
    policy (MODEL.md section 8) over ``simulate.replicas`` paired replicas (None when
    ``simulate.epsilon`` is false)."""

    setting: Setting
    config: TrainConfig
    result: TrainResult
    exact: TrainResult | None
    epsilon: EpsilonEstimate | None
    elapsed_s: float


def run(spec: Spec, on_progress: Progress | None = None) -> Training:
    """Train as the spec says; with ``train.yardstick`` also run the learner's yardstick, if it
    has one (tmf-pg: tmf-pg-exact, same class, same settings)."""
    start = time.perf_counter()
    problem = setting(spec)
    if problem.agents is None:
        raise SpecError("population.agents", "missing (train learns from N-agent rollouts)",
                        "add population.agents and population.batch", spec.source)
    config = config_of(spec)

    def tick(phase: str) -> Callable[[int, int, float], None] | None:
        if on_progress is None:
            return None
        return lambda i, total, _: on_progress(phase, i, total)

    result = train(problem, config, tick(config.algorithm))
    exact = None
    yardstick = LEARNERS[config.algorithm].yardstick
    if yardstick is not None and spec.train.yardstick:
        exact = train(problem, replace(config, algorithm=yardstick), tick(yardstick))
    eps = None
    if spec.simulate.epsilon:  # simulate.epsilon: false skips the estimate, as in simulate
        eps = epsilon_n(problem, result.policy, spec.simulate.replicas,
                        seeds.sequence(config.seed, seeds.EPS_N),
                        activation=config.activation, init=config.init,
                        on_step=None if on_progress is None else
                        lambda done, total: on_progress("eps_N", done, total))
    return Training(setting=problem, config=config, result=result, exact=exact, epsilon=eps,
                    elapsed_s=time.perf_counter() - start)


def train_into(spec: Spec, directory: Path, options: object = None,
               on_progress: Progress | None = None) -> None:
    """Train and write iterations.csv, summary.csv, the policy files and manifest.yaml (last)."""
    from tmfcli.io import results
    from tmfcli.io.policy_files import write_policy

    training = run(spec, on_progress=on_progress)
    frames = tables(training, spec)
    for name, frame in frames.items():
        results.write_csv(frame, directory / name)
    game = training.setting.game
    write_policy(training.result.policy, directory, game.obs_labels, game.act_labels)
    results.write_yaml(results.manifest(spec, "train", **outcome(training, frames)),
                       directory / results.MANIFEST)


def batch_of(spec: Spec, s: Setting) -> str:
    """B as written in the tables: the number of agents acting per step, or the schedule."""
    batches = s.decision_batches
    if batches.min() == batches.max():
        return str(int(batches[0]))
    return (spec.population.batch or ALL).label


def tables(training: Training, spec: Spec) -> dict[str, pd.DataFrame]:
    """``iterations.csv`` and ``summary.csv`` (docs/train.md), each with a seed column."""
    c, s, r = training.config, training.setting, training.result
    history = r.history.assign(algorithm=c.algorithm, agents=s.agents,
                               batch=batch_of(spec, s), seed=c.seed)
    ev = r.evaluation
    rows = [("exploitability", ev.exploitability, ev.exploitability, ev.exploitability),
            ("J", ev.J, ev.J, ev.J),
            ("return_avg", *normal_interval(r.returns))]
    if training.exact is not None:
        x = training.exact.evaluation.exploitability
        rows.append(("exploitability_exact", x, x, x))
    # where every learner starts (theta = 0): the scale of claim 3's "reaches the equilibrium"
    O, A = s.game.n_obs, s.game.n_act
    u = evaluate(s, np.full((s.T, O, A), 1.0 / A)).exploitability
    rows.append(("exploitability_uniform", u, u, u))
    eps = training.epsilon
    if eps is not None:
        rows.append(("eps_n", eps.mean, eps.ci_low, eps.ci_high))
    summary = pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high"])
    summary["seed"] = c.seed
    return {"iterations.csv": history, "summary.csv": summary}


def outcome(training: Training, frames: dict[str, pd.DataFrame]) -> dict[str, object]:
    """What the manifest of ``tmf train`` records besides the spec."""
    c, s, r = training.config, training.setting, training.result
    batches = s.decision_batches
    means = frames["summary.csv"].set_index("metric")["mean"]
    data: dict[str, object] = {
        "algorithm": c.algorithm, "agents": s.agents, "batch": int(batches.max())
        if batches.min() == batches.max() else [int(b) for b in batches[:10]],
        "steps": s.T, "time_index": c.time_index, "seed": c.seed,
        "iterations": c.iterations, "samples": r.samples,
        "exploitability": r.evaluation.exploitability, "J": r.evaluation.J,
        "means": {str(k): float(v) for k, v in means.items()},
        "epsilon": None if training.epsilon is None else {
            "deviation": "mean-field best response to the flow of the policy",
            "replicas": training.epsilon.replicas,
            "return_policy": training.epsilon.return_policy,
            "return_deviation": training.epsilon.return_deviation},
        "timings": {"total_s": round(training.elapsed_s, 3),
                    "train_s": round(r.elapsed_s, 3)},
    }
    if training.exact is not None:
        data["exploitability_exact"] = training.exact.evaluation.exploitability
    return data


def summary_rows(directory: Path) -> list[tuple[str, str]]:
    """The rows of the summary shown by ``tmf train``, read back from its result files."""
    from tmfcli.io.results import read_manifest

    data = read_manifest(directory) or {}
    frame = user_files.result_table(directory / "summary.csv",
                                    "rerun with --force to recompute it").set_index("metric")
    rows = [("algorithm", str(data.get("algorithm"))), ("agents N", str(data.get("agents"))),
            ("batch B", str(data.get("batch"))), ("steps", str(data.get("steps"))),
            ("time index", str(data.get("time_index"))),
            ("iterations", str(data.get("iterations"))),
            ("samples (decisions)", str(data.get("samples")))]
    label = f"exploitability ({data.get('algorithm')})"
    rows.append((label, f"{float(frame.at['exploitability', 'mean']):.4g}"))  # type: ignore[arg-type]
    if "exploitability_exact" in frame.index:
        entry = LEARNERS.get(str(data.get("algorithm")))
        yardstick = entry.yardstick if entry is not None else None
        rows.append((f"exploitability ({yardstick or 'yardstick'}, same class)",
                     f"{float(frame.at['exploitability_exact', 'mean']):.4g}"))  # type: ignore[arg-type]
    mean, low, high = (float(frame.at["return_avg", k])  # type: ignore[arg-type]
                       for k in ("mean", "ci_low", "ci_high"))
    rows.append(("return (N agents), 95% CI", f"{mean:.4g}  [{low:.4g}, {high:.4g}]"))
    rows.append(("J (mean field)", f"{float(frame.at['J', 'mean']):.4g}"))  # type: ignore[arg-type]
    if "eps_n" in frame.index:
        mean, low, high = (float(frame.at["eps_n", k])  # type: ignore[arg-type]
                           for k in ("mean", "ci_low", "ci_high"))
        rows.append(("eps_N, 95% CI", f"{mean:.4g}  [{low:.4g}, {high:.4g}]"))
        rows.append(("  deviation gain of", "a mean-field best response"))
    rows.append(("results", str(directory)))
    return rows
