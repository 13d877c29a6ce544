"""tmf bound-check: slope fit, bootstrap, reference bound, Lipschitz constants, the sweep, the CLI.

Fixed seeds; tolerances are a few standard errors of the quantity tested (stated beside each).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.analysis.bound import (
    Constants,
    game_constants,
    initial_error,
    max_allowance,
    reference_bound,
    sampled_lipschitz,
    verdict,
)
from tmfcli.analysis.fit import bootstrap_means, fit_slope, interval, loglog_slope
from tmfcli.cli import app
from tmfcli.commands import bound_check as bc
from tmfcli.io import results
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.games import GAMES
from tmfcli.model.games.base import Lipschitz
from tmfcli.model.games.classic import SIS
from tmfcli.model.policy import PopulationPolicy, TabularPolicy
from tmfcli.model.setting import Batch
from tmfcli.simulation.counts import simulate

from .conftest import interrupt_cells

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


def write(tmp_path: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def synthetic(rng: np.random.Generator, N: np.ndarray, R: int, exponent: float) -> list[Any]:
    """Per cell R replicas of 2 N^exponent times a mean-one gamma noise (cv 0.5)."""
    return [2.0 * n ** exponent * rng.gamma(4.0, 0.25, size=(R, 1)) for n in N]


def test_slope_fit_recovers_a_known_exponent_and_its_interval_covers_it() -> None:
    N = np.array([30, 100, 300, 1000, 3000, 10000])
    covered, slopes = 0, []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        cells = synthetic(rng, N, 100, -0.5)
        est = np.array([c.mean() for c in cells])
        boot = np.stack([bootstrap_means(c, rng, 1000)[:, 0] for c in cells], axis=-1)
        fit = fit_slope(N, est, boot)
        slopes.append(fit.slope)
        covered += fit.ci_low <= -0.5 <= fit.ci_high
    # each point has a relative error of 0.5 / sqrt(100) = 5%; the slope's sd is ~0.013
    assert abs(np.mean(slopes) + 0.5) < 0.01
    assert np.std(slopes) < 0.03
    assert covered >= 34  # nominal 95% of 40 = 38; P(covered < 34) < 1% for a true 95% CI


def test_loglog_slope_is_exact_on_a_power_law_and_vectorised() -> None:
    N = np.array([10.0, 100.0, 1000.0])
    y = np.stack([3 * N ** -0.5, 0.1 * N ** -1.0, np.array([1.0, 0.0, 1.0])])
    slopes = loglog_slope(N, y)
    np.testing.assert_allclose(slopes[:2], [-0.5, -1.0])
    assert np.isnan(slopes[2])  # a zero has no logarithm


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(1.0, 2.0, size=(400, 1))
    low, high = interval(bootstrap_means(values, rng, 4000))
    se = values.std(ddof=1) / math.sqrt(400)
    # the percentile interval of a mean is the normal one up to O(1/sqrt(n_boot)) noise
    assert float(high[0] - low[0]) == pytest.approx(2 * 1.96 * se, rel=0.08)


@pytest.mark.parametrize(("ci", "ratio", "expected"), [
    ((-0.55, -0.45), 0.5, "pass"),
    ((-0.5, -0.3), 0.5, "pass"),
    ((-0.9, -0.6), 0.5, "pass (steeper than -1/2)"),
    ((-0.45, -0.3), 0.5, "fail: flatter than -1/2"),
    ((-0.55, -0.45), 1.2, "fail: above bound"),
    ((-0.2, 0.1), 3.0, "fail: above bound, flatter than -1/2"),
    ((math.nan, math.nan), 0.5, "fail: flatter than -1/2"),
])
def test_verdict(ci: tuple[float, float], ratio: float, expected: str) -> None:
    assert verdict(ci[0], ci[1], ratio) == expected


def test_verdict_allowance_moves_only_the_slope_threshold() -> None:
    assert verdict(-0.47, -0.4, 0.5, allowance=0.05) == "pass"
    assert verdict(-0.44, -0.4, 0.5, allowance=0.05) == "fail: flatter than -1/2"


def test_max_allowance_is_zero_for_a_fixed_horizon_and_the_loglog_slope_otherwise() -> None:
    N = np.array([100.0, 1000.0, 10000.0])
    assert max_allowance(N, np.full(3, 30.0)) == 0.0
    # T = 3N: y = sqrt(log 3N) against log N, slope from its three points (least squares)
    x = np.log(N) - np.log(N).mean()
    y = 0.5 * np.log(np.log(3 * N))
    expected = float(((y - y.mean()) * x).sum() / (x * x).sum())
    assert max_allowance(N, 3 * N) == pytest.approx(expected, rel=1e-12)
    assert 0.0 < expected < 0.1


# --------------------------------------------------------------------------------------------
# the reference bound and its constants
# --------------------------------------------------------------------------------------------
def bound_loop(alpha: np.ndarray, c: Constants, O: int, N: int, e0: float) -> np.ndarray:
    """b_{t+1} = l_t b_t + sqrt(3|O|/N), b_0 = e0: the recursion the closed form solves."""
    b = [e0]
    for a in alpha:
        b.append((1 + a * (c.L_pi + c.L_P) + (1 - a) * c.L_0) * b[-1] + math.sqrt(3 * O / N))
    return np.array(b)


@pytest.mark.parametrize("constants", [Constants(0.0, 0.0), Constants(0.81, 0.0),
                                       Constants(10.0, 10.0, 0.5)])
def test_reference_bound_solves_its_recursion(constants: Constants) -> None:
    alpha = np.array([1.0, 0.1, 0.5, 0.01, 1.0, 0.3])
    got = reference_bound(alpha, constants, 4, 50, 0.2)
    np.testing.assert_allclose(got, bound_loop(alpha, constants, 4, 50, 0.2), rtol=1e-12)
    assert np.all(np.diff(got) > 0)  # nondecreasing: b_T also bounds E max_t


def test_reference_bound_overflows_to_inf_not_nan() -> None:
    bound = reference_bound(np.ones(2000), Constants(10.0, 10.0), 4, 100, 0.2)
    assert np.isinf(bound[-1]) and not np.isnan(bound).any()


def test_initial_error() -> None:
    assert initial_error(3, 12, "iid") == pytest.approx(0.5)
    assert initial_error(3, 10, "rounded", np.array([0.5, 0.3, 0.2])) == 0.0
    assert initial_error(3, 10, "rounded", np.array([1 / 3, 1 / 3, 1 / 3])) == \
        pytest.approx(0.3)


@pytest.mark.parametrize("name", list(GAMES))
def test_sampled_lipschitz_never_exceeds_the_analytic_constants(name: str) -> None:
    game = GAMES[name]()
    declared = game.lipschitz()
    assert declared is not None
    sampled = sampled_lipschitz(game, np.random.default_rng(0), times=(0, 3))
    # a ratio of L1 distances >= 1e-8 carries a relative round-off of at most ~1e-7
    assert sampled.L_P <= declared.L_P * (1 + 1e-6) and sampled.L_0 <= declared.L_0 * (1 + 1e-6)


def test_sampled_lipschitz_finds_the_exact_constant_where_it_is_attained() -> None:
    # SIS: the susceptible row going out moves 2 * 0.81 |dmu(I)| = 0.81 ||dmu||_1, exactly
    got = sampled_lipschitz(SIS(), np.random.default_rng(1))
    assert got.L_P == pytest.approx(0.81, rel=1e-6) and got.L_0 == 0.0
    # queueing: 1 / min(s) = 10 is the supremum at an empty queue; near pairs get close
    queue = sampled_lipschitz(GAMES["queueing_per_step"](), np.random.default_rng(1))
    assert 8.0 <= queue.L_P <= 10.0 * (1 + 1e-6)


@dataclasses.dataclass(frozen=True)
class SilentSIS(SIS):
    """SIS without analytic Lipschitz constants: bound-check must sample and say so."""

    name = "silent_sis"

    def lipschitz(self) -> Lipschitz | None:  # type: ignore[override]  # on purpose: none
        return None


def test_game_without_constants_is_sampled_and_labelled() -> None:
    lip, source = game_constants(SilentSIS(), np.random.default_rng(0))
    assert source == "sampled" and lip.L_P == pytest.approx(0.81, rel=1e-6)
    lip, source = game_constants(SIS(), np.random.default_rng(0))
    assert source == "analytic" and lip.L_P == 0.81


@pytest.mark.parametrize("name", list(GAMES))
@pytest.mark.parametrize("agents", [20, 50])
def test_reference_bound_is_never_below_the_measured_error(name: str, agents: int) -> None:
    """Per step t: mean over replicas of ||mu_hat_t - mu_bar_t||_1 <= b_t, every B, random pi.

    The bound holds in expectation; the sample mean of 300 replicas is compared with it plus
    3 standard errors. A violation would show a wrong Lipschitz constant (or simulator).
    """
    base = {"name": "b", "game": {"name": name}, "horizon": {"steps": 6}}
    spec = specs.from_dict(base)
    game = spec.build_game()
    rng = np.random.default_rng(agents)
    lip = game.lipschitz()
    assert lip is not None
    constants = Constants(lip.L_P, lip.L_0)
    for batch in (1, "sqrt", "all"):
        s = setting(spec, agents=agents, batch=Batch.of(batch))
        pi = rng.dirichlet(np.ones(game.n_act), size=(s.T, game.n_obs))
        from tmfcli.model.flow import mean_field_flow

        mu_bar = mean_field_flow(s, pi).mu
        run = simulate(s, TabularPolicy(pi), 300, seed=agents)
        l1 = np.abs(run.mu_hat - mu_bar[None]).sum(axis=-1)  # (R, T+1)
        measured = l1.mean(axis=0) + 3 * l1.std(axis=0, ddof=1) / math.sqrt(300)
        bound = reference_bound(s.alpha, constants, game.n_obs, agents,
                                initial_error(game.n_obs, agents, "iid", game.mu0))
        assert np.all(measured <= bound), (batch, measured, bound)
        assert l1.max(axis=1).mean() <= bound[-1]  # e_max against the bound of the verdict


# --------------------------------------------------------------------------------------------
# mapping one policy onto every regime
# --------------------------------------------------------------------------------------------
def test_policy_steps_in_rounds_use_the_round_reached() -> None:
    spec = specs.from_dict({"name": "m", "game": {"name": "resource_selection_per_step"},
                            "horizon": {"rounds": 3}})
    T_policy = setting(spec).T
    assert T_policy == 3  # synchronous own setting: one step per round
    cases: list[tuple[int, int | str]] = [(10, 2), (12, 1), (100, "sqrt"), (7, "all"), (9, 3),
                                          (10, 4), (300, "sqrt")]
    for agents, batch in cases:
        s = setting(spec, agents=agents, batch=Batch.of(batch))
        steps = bc.policy_steps(s.T, T_policy)
        alpha = float(s.alpha[0])
        assert steps.shape == (s.T,) and steps[0] == 0 and steps[-1] == T_policy - 1
        assert np.all(np.diff(steps) >= 0)
        rounds = np.floor(np.arange(s.T) * alpha + 1e-12)
        if (3 * agents) % int(s.batches[0]) == 0:  # type: ignore[index]
            # exactly the round floor(t alpha) when B divides H N
            np.testing.assert_array_equal(steps, rounds)
        else:  # T_cell rounded up: the same round or the one before
            assert set((rounds - steps).tolist()) <= {0.0, 1.0}


def test_policy_steps_are_the_identity_for_equal_horizons() -> None:
    np.testing.assert_array_equal(bc.policy_steps(7, 7), np.arange(7))
    # a coarser policy than the cell (fraction of the horizon elapsed)
    np.testing.assert_array_equal(bc.policy_steps(6, 4), [0, 0, 1, 2, 2, 3])


def test_population_policy_is_retimed_like_a_table() -> None:
    """A population-aware policy with W = 0 and theta = log pi gives the tabular results."""
    spec = specs.from_dict({"name": "m", "game": {"name": "resource_selection_per_step"},
                            "horizon": {"rounds": 2},
                            "bound_check": {"agents": [20, 40], "batch": [1, 4]}})
    pi = np.random.default_rng(3).dirichlet(np.ones(3), size=(2, 3))
    table = TabularPolicy(pi)
    softmax = PopulationPolicy(theta=np.log(pi), W=np.zeros((3, 3, 3)))
    constants = Constants(0.0, 0.0)
    for cell in bc.grid(spec):
        a = bc.run_cell(spec, table, 2, cell, constants)
        b = bc.run_cell(spec, softmax, 2, cell, constants)
        np.testing.assert_allclose(a.values, b.values, atol=1e-12)
        assert a.J == pytest.approx(b.J)


# --------------------------------------------------------------------------------------------
# the sweep: the O(1/sqrt N) rate in rounds
# --------------------------------------------------------------------------------------------
ROUNDS: dict[str, Any] = {
          "name": "rs", "game": {"name": "resource_selection_per_step"}, "horizon": {"rounds": 2},
          "bound_check": {"agents": [30, 100, 300, 1000, 3000], "batch": [1, "sqrt", "all"],
                          "replicas": 200}, "seed": 0}


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_rounds_give_slope_minus_one_half_for_every_regime(tmp_path: Path) -> None:
    """Resource selection in rounds, B = 1, sqrt N, N: e_max ~ N^-1/2 within 0.1.

    With 200 replicas per cell the slope interval is about +-0.015, so 0.1 is > 6 of its
    standard errors: passing is not luck, and a 1/N or a flat law could not pass.
    """
    report = bc.run_bound_check(specs.from_dict(ROUNDS), tmp_path, workers=1)
    e_max = report.fits[report.fits["metric"] == "e_max"].set_index("regime")
    assert list(e_max.index.astype(str)) == ["1", "sqrt", "all"]
    for regime, row in e_max.iterrows():
        assert abs(row["slope"] + 0.5) < 0.1, regime
        assert row["ci_high"] - row["ci_low"] < 0.06, regime
        assert row["worst_ratio"] < 1.0
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert len(cells) == 15 * len(bc.METRICS)
    assert list(cells.columns) == ["regime", "N", "B", "steps", "replicas", "metric",
                                   "estimate", "ci_low", "ci_high", "bound", "predicted",
                                   "predicted_se", "ratio", "ratio_low", "ratio_high", "seed"]
    # the linear-noise constant (MODEL.md section 10): sqrt(N) e_max / c_max -> 1. At the
    # largest N (3000) the ratio's 3-sd interval (99.7%: the 95% one widened by 3/1.96) holds 1
    # in every regime; resource selection is linear (static kernels, tabular policy), so the
    # covariance is exact and only the Gaussian approximation of the maximum is left.
    big = cells[(cells["metric"] == "e_max") & (cells["N"] == 3000)]
    for cell in big.to_dict("records"):
        half = math.log(cell["ratio_high"] / cell["ratio"]) * 3 / 1.959964
        assert abs(math.log(cell["ratio"])) <= half, cell["regime"]
    assert set(e_max["constant_verdict"]) == {"pass"}
    one = cells[(cells["regime"].astype(str) == "1") & (cells["metric"] == "e_max")]
    assert one["steps"].tolist() == [2 * n for n in (30, 100, 300, 1000, 3000)]
    assert ((cells["ci_low"] <= cells["estimate"]) & (cells["estimate"] <= cells["ci_high"])).all()
    # the N-agent epsilon: the sweep's policy is the equilibrium of the synchronous setting only
    # (eps_mf ~ 0 at B = N); elsewhere the gain of the mean-field best response tracks its
    # N -> infinity limit eps_mf (pooled over the 5 cells: Monte Carlo error ~4%, finite-N
    # bias of the small cells up to ~15%).
    est = cells.pivot_table(index=["regime", "N"], columns="metric", values="estimate")
    for regime in ("1", "sqrt"):
        mine = est.loc[regime]
        assert (mine["eps_mf"] > 0.5).all()
        assert abs((mine["eps_n"] / mine["eps_mf"]).mean() - 1) < 0.25, regime
    synchronous = est.loc["all"]
    assert (synchronous["eps_mf"].abs() < 1e-6).all()
    assert (synchronous["eps_n"].abs() < 0.03).all()


def test_steps_with_small_batch_are_steeper(tmp_path: Path) -> None:
    data = {"name": "st", "game": {"name": "resource_selection_per_step"}, "horizon": {"steps": 4},
            "bound_check": {"agents": [30, 300, 3000], "batch": [1], "replicas": 200}}
    report = bc.run_bound_check(specs.from_dict(data), tmp_path, policy="uniform")
    row = report.fits.iloc[0]
    # only one agent moves per step: over 4 steps the gap is about sqrt(4 * 2/3)/N
    assert row["slope"] == pytest.approx(-1.0, abs=0.1)
    assert row["verdict"] == "pass (steeper than -1/2)"


# --------------------------------------------------------------------------------------------
# files: per-cell writes, resuming, workers, determinism
# --------------------------------------------------------------------------------------------
SMALL: dict[str, Any] = {
         "name": "small", "game": {"name": "resource_selection_per_step"},
         "horizon": {"rounds": 2},
         "bound_check": {"agents": [20, 80, 320], "batch": [1, "all"], "replicas": 40},
         "seed": 5}

TABLES = ("replicas.csv", "cells.csv", "fits.csv", "bound-check.png")


def test_partial_sweep_without_a_metric_column_starts_over(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells written before eps_n existed are not resumed (their rows would lack the metric)."""
    spec = specs.from_dict(SMALL)
    real = interrupt_cells(monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        bc.run_bound_check(spec, out, policy="uniform", workers=1)
    stage = results.sweep_stage(out, bc.sweep_hash(spec, "uniform"))  # the partial sweep
    old = pd.read_csv(stage / "replicas.csv").drop(columns=["eps_n", "eps_mf"])
    old.to_csv(stage / "replicas.csv", index=False)
    monkeypatch.setattr(bc, "run_cell", real)
    bc.run_bound_check(spec, out, policy="uniform", workers=1)
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["resumed_cells"] == 0
    assert pd.read_csv(out / "replicas.csv")["eps_n"].notna().all()


def test_interrupted_sweep_resumes_to_identical_tables(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = specs.from_dict(SMALL)
    whole = tmp_path / "whole"
    bc.run_bound_check(spec, whole, policy="uniform", workers=2)

    part = tmp_path / "part"
    real = interrupt_cells(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        bc.run_bound_check(spec, part, policy="uniform", workers=1)
    stage = results.sweep_stage(part, bc.sweep_hash(spec, "uniform"))
    assert not part.exists()  # nothing under the result's name until the sweep is whole
    assert not (stage / "manifest.yaml").exists() and (stage / "progress.yaml").exists()
    assert pd.read_csv(stage / "cells.csv")[["regime", "N"]].drop_duplicates().shape[0] == 2

    monkeypatch.setattr(bc, "run_cell", real)
    report = bc.run_bound_check(spec, part, policy="uniform", workers=1)
    assert not (part / "progress.yaml").exists() and not stage.exists()
    manifest = yaml.safe_load((part / "manifest.yaml").read_text())
    assert manifest["resumed_cells"] == 2 and manifest["passed"] == report.passed
    for name in TABLES:
        assert (part / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_changed_spec_does_not_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = interrupt_cells(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        bc.run_bound_check(specs.from_dict(SMALL), tmp_path / "out", policy="uniform")
    monkeypatch.setattr(bc, "run_cell", real)
    other = {**SMALL, "seed": 6}
    bc.run_bound_check(specs.from_dict(other), tmp_path / "fresh", policy="uniform")
    bc.run_bound_check(specs.from_dict(other), tmp_path / "out", policy="uniform")
    out = tmp_path / "out"
    assert yaml.safe_load((out / "manifest.yaml").read_text())["resumed_cells"] == 0
    for name in TABLES:
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
    # the first spec's partial sweep is kept (it resumes), its stage is not the result
    key = bc.sweep_hash(specs.from_dict(SMALL), "uniform")
    assert (results.sweep_stage(out, key) / "progress.yaml").is_file()


def test_cell_seeds_depend_on_seed_regime_and_n_only() -> None:
    spec = specs.from_dict(SMALL)
    seeds = {(c.regime, c.agents): c.seed for c in bc.grid(spec)}
    assert len(set(seeds.values())) == len(seeds)
    reordered = specs.from_dict({**SMALL, "bound_check": {**SMALL["bound_check"],
                                                          "agents": [320, 20, 80]}})
    assert {(c.regime, c.agents): c.seed for c in bc.grid(reordered)} == seeds
    assert all(0 <= s < 2**63 for s in seeds.values())


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bound_check", "message"), [
    ({"agents": [0, 10]},
     "bound_check.agents[0]: invalid number of agents 0 — use integers >= 1"),
    ({"agents": [10, 100], "batch": [50]},
     "bound_check.batch[0]: batch 50 is larger than 10 agents — use batches of at most 10 or "
     "a relative form (sqrt, all, fraction)"),
    ({"batch": []},
     "bound_check.batch: expected a non-empty list of batch forms (regimes) — write e.g. "
     "[1, sqrt, all]"),
    ({"agents": []},
     "bound_check.agents: expected a non-empty list of agent counts — write e.g. "
     "[100, 1000, 10000]"),
    ({"agents": [100]},
     "bound_check.agents: needs at least two different agent counts to fit a slope — write "
     "e.g. [100, 1000, 10000]"),
    ({"agents": [10, 100, 10]},
     "bound_check.agents[2]: 10 agents are listed twice — list each number of agents once"),
    ({"batch": [1, "sqrt", 1]},
     "bound_check.batch[2]: regime 1 is listed twice — list each regime once"),
    ({"replicas": 1}, "bound_check.replicas: 1 is too small — use an integer >= 2"),
])
def test_bad_grid_fails_with_exact_message(tmp_path: Path, bound_check: dict[str, Any],
                                           message: str) -> None:
    spec = write(tmp_path, {**SMALL, "bound_check": bound_check})
    result = invoke("bound-check", str(spec), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {spec}:{message}\n"
    assert not (tmp_path / "out").exists()


def test_bad_policy_directory_fails_with_exact_message(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL)
    result = invoke("bound-check", str(spec), "--policy", str(tmp_path / "nowhere"),
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: policy directory {tmp_path / 'nowhere'} not found — "
                             "point --policy at a directory written by 'tmf solve' or "
                             "'tmf train', or use --policy uniform\n")


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_passing_sweep_exits_0_and_reuses_its_results(tmp_path: Path) -> None:
    data = {"name": "ok", "game": {"name": "resource_selection_per_step"}, "horizon": {"steps": 4},
            "bound_check": {"agents": [30, 300, 3000], "batch": [1, "sqrt"], "replicas": 100}}
    spec, out = write(tmp_path, data), tmp_path / "out"
    result = invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform")
    assert result.exit_code == 0, result.output
    assert "pass (steeper than -1/2)" in result.stdout
    assert "steeper than -1/2 is expected in steps with small B" in result.stdout
    assert "L_P=0, L_0=0 (analytic), L_pi=0 (tabular)" in result.stdout
    for name in (*TABLES, "manifest.yaml"):
        assert (out / name).is_file()
    again = invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform")
    assert again.exit_code == 0 and "is up to date" in again.stderr
    # another policy is another result: refused unless --force
    other = invoke("bound-check", str(spec), "--out", str(out))
    assert other.exit_code == 1 and "holds a result of another spec or policy" in other.stderr
    other = invoke("bound-check", str(spec), "--out", str(out), "--force")
    assert other.exit_code == 0 and "is up to date" not in other.stderr
    assert "constant B=1: " in other.stdout and "tolerance +-10%" in other.stdout


def test_target_gap_reads_the_predicted_constant_and_refuses_bad_values(tmp_path: Path) -> None:
    data = {"name": "tg", "game": {"name": "resource_selection"}, "horizon": {"steps": 3},
            "bound_check": {"agents": [50, 200], "batch": [1, "all"], "replicas": 20}}
    spec, out = write(tmp_path, data), tmp_path / "out"
    assert invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform"
                  ).exit_code == 0
    again = invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform",
                   "--target-gap", "0.02")
    assert again.exit_code == 0 and "is up to date" in again.stderr  # nothing recomputed
    cells = pd.read_csv(out / "cells.csv", dtype={"regime": str})
    for regime in ("1", "all"):
        last = cells[(cells["regime"] == regime) & (cells["metric"] == "e_max")
                     & (cells["N"] == 200)].iloc[0]
        c = last["predicted"] * math.sqrt(200)       # c_max of the largest N
        need = math.ceil((c / 0.02) ** 2 - 1e-9)     # smallest N with c / sqrt(N) <= 0.02
        assert f"target gap 0.02, B={regime}: N = {need} [" in " ".join(again.stdout.split())
    for bad in ("-0.1", "0", "nan"):
        result = invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform",
                        "--target-gap", bad)
        assert result.exit_code == 1
        assert result.stderr == (f"Error: --target-gap: {float(bad):g} is not a positive gap — "
                                 "give the gap E max_t ||mu_hat_t - mu_bar_t||_1 to reach, "
                                 "e.g. --target-gap 0.01\n")


def test_a_gap_that_does_not_shrink_fails_with_exit_3(tmp_path: Path) -> None:
    """Two resources, everybody moves once under pi = (1/2, 1/2), from all on resource 0.

    e_max = E ||mu_hat_1 - (1/2, 1/2)||_1 = 2 E|Bin(N, 1/2)/N - 1/2| is exactly 1/2 for both
    N = 2 and N = 3: the gap does not shrink on this grid (a lattice effect of tiny N), so the
    slope is 0 +- 0.1 with 2000 replicas and the regime must fail, while the bound holds.
    """
    data = {"name": "flat", "game": {"name": "resource_selection_per_step", "params": {"K": 2}},
            "horizon": {"steps": 1},
            "bound_check": {"agents": [2, 3], "batch": ["all"], "replicas": 2000}}
    spec, out = write(tmp_path, data), tmp_path / "out"
    result = invoke("bound-check", str(spec), "--out", str(out), "--policy", "uniform")
    assert result.exit_code == 3, result.output
    assert "fail: flatter than -1/2" in result.stdout
    cells = pd.read_csv(out / "cells.csv")
    e_max = cells[cells["metric"] == "e_max"]["estimate"].to_numpy()
    np.testing.assert_allclose(e_max, [0.5, 0.5], atol=0.03)  # sd 0.5/sqrt(2000) = 0.011
    fits = pd.read_csv(out / "fits.csv")
    assert abs(float(fits.loc[fits["metric"] == "e_max", "slope"].iloc[0])) < 0.2
    assert yaml.safe_load((out / "manifest.yaml").read_text())["passed"] is False


def test_sampled_constants_are_labelled_in_the_output(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GAMES, "silent_sis", SilentSIS)
    data = {"name": "sil", "game": {"name": "silent_sis"}, "horizon": {"steps": 5},
            "bound_check": {"agents": [50, 500], "batch": ["all"], "replicas": 50}}
    result = invoke("bound-check", str(write(tmp_path, data)), "--out", str(tmp_path / "o"),
                    "--policy", "uniform", "--workers", "1")
    assert result.exit_code in (0, 3), result.output
    assert "L_P=0.81, L_0=0 (sampled)" in result.stdout
    manifest = yaml.safe_load((tmp_path / "o" / "manifest.yaml").read_text())
    assert manifest["constants"]["source"] == "sampled"


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_interrupted_before_the_fits_resumes_without_simulating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All cells done (integer regime labels read back from CSV), fits not yet written."""
    data = {**SMALL, "bound_check": {**SMALL["bound_check"], "batch": [1, 2]}}
    spec = specs.from_dict(data)
    bc.run_bound_check(spec, tmp_path / "whole", policy="uniform")
    real = bc.fit_table

    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(bc, "fit_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bc.run_bound_check(spec, tmp_path / "part", policy="uniform")
    monkeypatch.setattr(bc, "fit_table", real)
    monkeypatch.setattr(bc, "run_cell", interrupted)  # nothing left to simulate
    bc.run_bound_check(spec, tmp_path / "part", policy="uniform")
    for name in TABLES:
        assert (tmp_path / "part" / name).read_bytes() == \
            (tmp_path / "whole" / name).read_bytes(), name
