"""What ``tmf simulate`` runs: replicas of the N-agent system beside the mean-field flow of the
same policy, the N-agent epsilon of the policy (deviation gain of one agent playing the
mean-field best response, ``tmfcli.simulation.epsilon``), the linear-noise prediction of the
same quantities (``tmfcli.analysis.fluctuations``: bands, gap constants, refined flow, return
correction), and the tables, manifest entries and summary rows of the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tmfcli import seeds
from tmfcli.analysis.fit import normal_interval
from tmfcli.analysis.fluctuations import Prediction, return_correction, try_predict
from tmfcli.command_registry import Options
from tmfcli.io import user_files
from tmfcli.io.spec_types import Spec
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

Z90, Z95 = 1.6448536269514722, 1.959963984540054  # Gaussian quantiles: 5-95% and 2.5-97.5%


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
    prediction: Prediction | None = None
    return_correction: float = float("nan")  # N (E G - J), predicted
    prediction_s: float = 0.0
    prediction_skipped: str = ""  # why there is no prediction (too large, kernels not finite)


def compare(setting: Setting, policy: Policy, replicas: int, seed: Seed,
            activation: str = "subset", init: str = "iid",
            on_step: OnStep | None = None, epsilon: bool = True) -> Comparison:
    """Simulate ``replicas`` replicas, evaluate the policy on the mean field, and (with
    ``epsilon``) estimate its N-agent epsilon over as many paired replicas (streams
    ``SIMULATE_REPLICAS``, ``EPS_N`` and ``PREDICTION`` of the seed, ``tmfcli.seeds``)."""
    start = time.perf_counter()
    check_inputs(setting, policy, replicas, activation, init)
    pi_bar = on_flow(setting, policy)
    ev = evaluate(setting, pi_bar)
    rollouts = simulate(setting, policy, replicas, seeds.sequence(seed, seeds.SIMULATE_REPLICAS),
                        activation, init,
                        _share(on_step, 0.0, 1 / 3 if epsilon else 1.0))
    middle = time.perf_counter()
    eps = None
    if epsilon:
        eps = epsilon_n(setting, policy, replicas, seeds.sequence(seed, seeds.EPS_N),
                        activation=activation, init=init,
                        on_step=_share(on_step, 1 / 3, 2 / 3))
    end = time.perf_counter()
    pred, skipped = try_predict(setting, policy, seeds.sequence(seed, seeds.PREDICTION),
                                activation, init, mu_bar=ev.flow.mu)
    correction = float("nan") if pred is None else \
        return_correction(setting, policy, pred.fluct)
    done = time.perf_counter()
    return Comparison(setting=setting, rollouts=rollouts, pi_bar=pi_bar, mu_bar=ev.flow.mu,
                      J=ev.J, exploitability=ev.exploitability, epsilon=eps,
                      method=path_of(setting, activation), elapsed_s=done - start,
                      epsilon_s=end - middle, prediction=pred, return_correction=correction,
                      prediction_s=done - end, prediction_skipped=skipped)


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
    frames = {"trajectory.csv": trajectory, "replicas.csv": per_replica}
    if cmp.prediction is not None:
        rows += predicted_rows(cmp)
        frames["bands.csv"] = bands(cmp, steps, seed)
    summary = pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high"])
    summary["seed"] = seed
    return {**frames, "summary.csv": summary}


def predicted_rows(cmp: Comparison) -> list[tuple[str, float, float, float]]:
    """Summary rows of the linear-noise prediction beside the measured ones (docs/simulate.md):
    gap_max_predicted = c_max / sqrt(N) (interval: +-1.96 Monte Carlo standard errors),
    gap_mean_predicted = c_mean / sqrt(N), return_minus_J_predicted = the O(1/N) correction,
    and the error of the replicas' mean flow against the plain and the refined mean field,
    max_t ||mean_hat_t - mu_bar_t||_1 and max_t ||mean_hat_t - mu_bar_t - b_t/N||_1, beside
    mean_noise, the size of the Monte Carlo error of mean_hat itself
    (max_t sqrt(2/pi) sum_o sd_hat_t(o) / sqrt(R)), below which they cannot be told apart."""
    pred = cmp.prediction
    assert pred is not None
    N = int(cmp.setting.agents or 1)
    root = np.sqrt(N)
    c, se = pred.c_max / root, pred.c_max_se / root
    mu_hat = cmp.rollouts.mu_hat
    R = mu_hat.shape[0]
    mean_hat = mu_hat.mean(axis=0)
    plain = float(np.abs(mean_hat - cmp.mu_bar).sum(axis=1).max())
    refined = float(np.abs(mean_hat - pred.fluct.refined(N)).sum(axis=1).max())
    sd_hat = mu_hat.std(axis=0, ddof=1) if R > 1 else np.zeros_like(mean_hat)
    floor = float(np.sqrt(2 / np.pi) * (sd_hat.sum(axis=1) / np.sqrt(R)).max())
    gap_mean = pred.c_mean / root
    corr = cmp.return_correction / N
    return [("gap_max_predicted", c, c - Z95 * se, c + Z95 * se),
            ("gap_mean_predicted", gap_mean, gap_mean, gap_mean),
            ("return_minus_J_predicted", corr, corr, corr),
            ("mean_error_plain", plain, plain, plain),
            ("mean_error_refined", refined, refined, refined),
            ("mean_noise", floor, floor, floor)]


def bands(cmp: Comparison, steps: Array, seed: int) -> pd.DataFrame:
    """``bands.csv``: per kept step and observation, the predicted Gaussian law of mu_hat_t(o)
    beside the replicas' (mean, sd, quantiles).

    mu_refined = mu_bar + b/N is the predicted mean, sd_pred = sqrt(C_t(o,o) / N); the predicted
    5-95% band is mu_refined +- 1.645 sd_pred (to set beside the empirical q05, q95) and the
    2.5-97.5% band mu_refined +- 1.96 sd_pred (beside q025, q975)."""
    pred = cmp.prediction
    assert pred is not None
    N = int(cmp.setting.agents or 1)
    mu_hat = cmp.rollouts.mu_hat[:, steps]
    R, K, O = mu_hat.shape
    t, o = np.meshgrid(steps, np.arange(O), indexing="ij")
    names = cmp.setting.game.obs_labels
    labels = {"obs_label": np.asarray(names, dtype=object)[o.ravel()]} if names else {}
    mean = pred.fluct.refined(N)[steps]
    sd = pred.fluct.sd(N)[steps]
    q = np.quantile(mu_hat, [0.025, 0.05, 0.95, 0.975], axis=0)
    sd_hat = mu_hat.std(axis=0, ddof=1) if R > 1 else np.full((K, O), np.nan)
    return pd.DataFrame({
        "t": t.ravel(), "obs": o.ravel(), **labels, "mu_bar": cmp.mu_bar[steps].ravel(),
        "mu_refined": mean.ravel(), "mean_hat": mu_hat.mean(axis=0).ravel(),
        "sd_pred": sd.ravel(), "sd_hat": sd_hat.ravel(),
        "pred_q05": (mean - Z90 * sd).ravel(), "pred_q95": (mean + Z90 * sd).ravel(),
        "q05": q[1].ravel(), "q95": q[2].ravel(),
        "pred_q025": (mean - Z95 * sd).ravel(), "pred_q975": (mean + Z95 * sd).ravel(),
        "q025": q[0].ravel(), "q975": q[3].ravel(), "seed": seed})


def outcome(cmp: Comparison, spec: Spec, frames: dict[str, pd.DataFrame],
            description: str) -> dict[str, object]:
    """What the manifest of ``tmf simulate`` records besides the spec."""
    s = cmp.setting
    batches = s.decision_batches
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
        "prediction": {"skipped": cmp.prediction_skipped} if cmp.prediction is None else {
            "c_max": cmp.prediction.c_max, "c_max_se": cmp.prediction.c_max_se,
            "c_mean": cmp.prediction.c_mean, "samples": cmp.prediction.samples,
            "derivatives": cmp.prediction.fluct.method,
            "return_correction": cmp.return_correction},
        "timings": {"total_s": round(cmp.elapsed_s, 3), "epsilon_s": round(cmp.epsilon_s, 3),
                    "prediction_s": round(cmp.prediction_s, 3)},
    }


def simulate_into(spec: Spec, directory: Path, options: Options,
                  on_progress: Callable[[str, int, int], None] | None = None) -> None:
    """Simulate under the ``--policy`` choice and write trajectory.csv, replicas.csv,
    summary.csv, bands.csv and manifest.yaml (last).

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
    cmp = compare(problem, chosen.on_steps(problem.T, problem.stages), spec.simulate.replicas,
                  spec.seed, spec.population.activation, spec.population.init, on_step=on_step,
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
    from tmfcli.io.resolve import setting

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
    predicted = {"return_minus_J": ("return_minus_J_predicted", "  predicted, O(1/N) term"),
                 "gap_max": ("gap_max_predicted", "  predicted c_max/sqrt(N)"),
                 "gap_mean": ("gap_mean_predicted", "  predicted c_mean/sqrt(N)")}
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
        if metric in predicted and predicted[metric][0] in frame.index:
            name, text = predicted[metric]
            mean, low, high = (float(frame.at[name, k])  # type: ignore[arg-type]
                               for k in ("mean", "ci_low", "ci_high"))
            rows.append((text, f"{mean:.4g}" if low == high else
                         f"{mean:.4g}  [{low:.4g}, {high:.4g}]"))
        if metric == "eps_n":  # what eps_N is, on a line of its own (the labels stay narrow)
            rows.append(("  deviation gain of", "a mean-field best response"))
    skipped = (data.get("prediction") or {}).get("skipped")
    if skipped:
        rows.append(("prediction", f"skipped: {skipped}"))
    if "mean_error_plain" in frame.index:
        value = {m: float(frame.at[m, "mean"])  # type: ignore[arg-type]
                 for m in ("mean_error_plain", "mean_error_refined", "mean_noise")}
        rows.append(("max_t ||mean mu_hat - mu_bar||_1", f"{value['mean_error_plain']:.3g}"))
        rows.append(("  against mu_bar + b/N (refined)", f"{value['mean_error_refined']:.3g}"))
        rows.append(("  Monte Carlo noise of the mean", f"{value['mean_noise']:.3g}"))
    rows.append(("results", str(directory)))
    return rows
