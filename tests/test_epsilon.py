"""The N-agent epsilon (MODEL.md section 8): Monte Carlo deviation gains against exact values.

The exact reference enumerates the joint chain (others' counts n, tagged observation x) of small
systems agent by agent: the active set over all B-subsets (or independent Bernoulli draws), each
other agent's move as its own categorical draw, the count distribution as a convolution. It
shares nothing with the sampler but the game's functions; it is itself checked against the
closed form of left_right at T = 2.

Statistical tolerances: a Monte Carlo mean is accepted when |mean - exact| <= Z * SE, SE the
sample standard error of the paired differences (or returns). Z = 4.5: P(|Z| > 4.5) = 6.8e-6,
so over the ~45 comparisons of this file a false failure has probability about 3e-4. Seeds are
fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.commands import simulate as simulate_command
from tmfcli.errors import ResultsError, SpecError
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy, uniform_policy
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import path_of, simulate
from tmfcli.simulation.epsilon import best_response, epsilon_n, tagged_returns

Z = 4.5  # see the module docstring

Counts = tuple[int, ...]


def make(game: str, N: int, B: Any, steps: int | None = None, rounds: int | None = None,
         params: dict[str, Any] | None = None, activation: str = "subset",
         mu0: list[float] | None = None, **extra: Any) -> Setting:
    data: dict[str, Any] = {"name": "t", "game": {"name": game, "params": params or {}},
                            "population": {"agents": N, "batch": B,
                                           "activation": activation}, **extra}
    if mu0 is not None:
        data["game"]["mu0"] = mu0
    if steps is not None:
        data["horizon"] = {"steps": steps}
    if rounds is not None:
        data["horizon"] = {"rounds": rounds}
    return setting(specs.from_dict(data))


# --- the exact reference ---------------------------------------------------------------------
def _convolve(dist: dict[Counts, float], p: np.ndarray) -> dict[Counts, float]:
    """Add one agent whose next observation has law p (O,) to a law of count vectors."""
    out: dict[Counts, float] = {}
    for counts, q in dist.items():
        for o2, w in enumerate(p):
            if w > 0:
                key = tuple(c + (i == o2) for i, c in enumerate(counts))
                out[key] = out.get(key, 0.0) + q * w
    return out


def _compositions(total: int, O: int) -> list[Counts]:
    return [c for c in product(range(total + 1), repeat=O) if sum(c) == total]


def _initial(s: Setting, init: str) -> dict[tuple[Counts, int], float]:
    N, O = int(s.agents or 0), s.game.n_obs
    mu0 = np.asarray(s.game.mu0, dtype=float)
    out: dict[tuple[Counts, int], float] = {}
    if init == "rounded":
        from tmfcli.simulation.counts import rounded_counts

        everyone = rounded_counts(mu0, N)
        for x in range(O):
            if everyone[x]:
                n = tuple(int(c - (i == x)) for i, c in enumerate(everyone))
                out[(n, x)] = everyone[x] / N
        return out
    others: dict[Counts, float] = {(0,) * O: 1.0}
    for _ in range(N - 1):
        others = _convolve(others, mu0)
    for n, q in others.items():
        for x in range(O):
            if mu0[x] > 0:
                out[(n, x)] = q * mu0[x]
    return out


def _active_sets(n: Counts, draws: int, alpha: float, activation: str) -> list[tuple[Counts,
                                                                                     float]]:
    """Laws of the others' active counts m: hypergeometric (subset) or binomial (bernoulli)."""
    out = []
    for m in product(*(range(k + 1) for k in n)):
        if activation == "subset":
            if sum(m) != draws:
                continue
            w = math.prod(math.comb(k, j) for k, j in zip(n, m, strict=True)) \
                / math.comb(sum(n), draws)
        else:
            w = math.prod(math.comb(k, j) * alpha**j * (1 - alpha)**(k - j)
                          for k, j in zip(n, m, strict=True))
        out.append((m, w))
    return out


def exact_return(s: Setting, policy: Policy, sigma: Policy, activation: str = "subset",
                 init: str = "iid") -> float:
    """E[G] of the tagged agent playing sigma among N - 1 agents playing policy, exactly."""
    game, T = s.game, s.T
    N, O = int(s.agents or 0), game.n_obs
    batches = np.asarray(s.batches)
    dist = _initial(s, init)
    value = 0.0
    for t in range(T):
        B = int(batches[t])
        alpha = B / N
        nxt: dict[tuple[Counts, int], float] = {}
        for (n, x), q in dist.items():
            mu = (np.array(n) + np.eye(O)[x]) / N
            P, P0 = game.transition(mu, t), game.idle_transition(mu, t)
            r, r0 = game.reward(mu, t), game.idle_reward(mu, t)
            pi, sg = policy.probs(mu, t), sigma.probs(mu, t)
            moved = np.einsum("oa,oap->op", pi, P)          # an active other agent at o
            for me, p_me in ((True, alpha), (False, 1 - alpha)):
                if p_me == 0:
                    continue
                # the tagged agent: reward and next observation
                value += s.gamma**t * q * p_me * (float(sg[x] @ r[x]) if me else float(r0[x]))
                x_law = sg[x] @ P[x] if me else P0[x]
                draws = B - 1 if me else B
                for m, w in _active_sets(n, draws, alpha, activation):
                    others: dict[Counts, float] = {(0,) * O: 1.0}
                    for o in range(O):
                        for _ in range(m[o]):
                            others = _convolve(others, moved[o])
                        for _ in range(n[o] - m[o]):
                            others = _convolve(others, P0[o])
                    for n2, w2 in others.items():
                        for x2 in range(O):
                            if x_law[x2] > 0:
                                key = (n2, x2)
                                nxt[key] = nxt.get(key, 0.0) + q * p_me * w * w2 * x_law[x2]
        dist = nxt
    return value


def exact_gain(s: Setting, policy: Policy, sigma: Policy, activation: str = "subset",
               init: str = "iid") -> tuple[float, float]:
    """(E[G^pi], E[G^sigma]) of the tagged agent, exactly."""
    return (exact_return(s, policy, policy, activation, init),
            exact_return(s, policy, sigma, activation, init))


def left_right_closed_form(N: int, B: int, p: float, q: float, gamma: float) -> float:
    """E[G] at T = 2, subset activation: the tagged agent is paid only at step 1 and only when
    active then; it went left with probability q if it was active at step 0, and the k = B - 1
    others active with it went left each with probability p."""
    a = B / N
    left = -(1 + (B - 1) * p) / N
    right = -2 * (1 + (B - 1) * (1 - p)) / N
    return gamma * a * a * (q * left + (1 - q) * right)


def always(s: Setting, action: int) -> TabularPolicy:
    pi = np.zeros((s.T, s.game.n_obs, s.game.n_act))
    pi[..., action] = 1.0
    return TabularPolicy(pi)


def mixed(s: Setting, p: float) -> TabularPolicy:
    pi = np.empty((s.T, s.game.n_obs, 2))
    pi[..., 0], pi[..., 1] = p, 1 - p
    return TabularPolicy(pi)


def check_close(est: float, exact: float, se: float, what: str) -> None:
    assert abs(est - exact) <= Z * se + 1e-12, f"{what}: {est} vs exact {exact} (se {se})"


# --- the reference itself --------------------------------------------------------------------
@pytest.mark.parametrize(("N", "B"), [(2, 1), (3, 2), (5, 5), (6, 3)])
def test_enumeration_matches_the_left_right_closed_form(N: int, B: int) -> None:
    s = make("left_right", N, B, discount=0.9)
    for p, q in ((1.0, 0.0), (2 / 3, 1.0), (0.3, 0.6)):
        got = exact_return(s, mixed(s, p), mixed(s, q))
        assert got == pytest.approx(left_right_closed_form(N, B, p, q, 0.9), abs=1e-12)


def test_left_right_eps_at_the_equilibrium_is_one_third_over_n() -> None:
    """B = N, pi = 2/3 left: going left gains 1/(3N) (algebra of the closed form), the
    mean-field best response (greedy, ties to the first action = left)."""
    for N in (2, 4, 6):
        s = make("left_right", N, "all")
        pi, pi_l = exact_gain(s, mixed(s, 2 / 3), always(s, 0))
        assert pi_l - pi == pytest.approx(1 / (3 * N), abs=1e-12)


# --- Monte Carlo against the exact values ----------------------------------------------------
CASES = [  # game, N, B, steps, activation, init, params
    ("left_right", 2, 1, None, "subset", "iid", None),
    ("left_right", 3, 2, None, "subset", "iid", None),
    ("left_right", 4, 4, None, "subset", "iid", None),
    ("left_right", 6, 3, None, "bernoulli", "iid", None),
    ("left_right", 5, 1, 4, "subset", "iid", None),
    ("left_right", 5, 2, 3, "bernoulli", "iid", None),
    ("resource_selection_per_step", 4, 1, 5, "subset", "iid", {"K": 2, "c": [1.0, 0.7]}),
    ("resource_selection_per_step", 4, 2, 4, "subset", "rounded", {"K": 2, "c": [1.0, 0.7]}),
    ("sis", 4, 2, 4, "subset", "iid", None),
    ("sis", 4, 1, 5, "subset", "rounded", None),
    ("sis", 3, 3, 4, "bernoulli", "iid", None),
    ("queueing_per_step", 3, 1, 4, "subset", "iid", {"K": 2, "s": [0.6, 0.3]}),
    ("queueing_per_step", 4, 2, 3, "bernoulli", "rounded", {"K": 2, "s": [0.6, 0.3]}),
    # timed games (MODEL.md section 9): time stages with B = 0 between the decisions
    ("resource_selection", 4, 1, 3, "subset", "iid", {"K": 2, "c": [1.0, 0.7]}),
    ("queueing", 3, 1, 3, "subset", "iid", {"K": 2, "s": [0.6, 0.3]}),
    ("queueing", 5, 2, 2, "bernoulli", "rounded", {"K": 2, "s": [0.6, 0.3]}),
    ("queueing", 2, 2, 3, "subset", "iid", {"K": 2, "s": [0.6, 0.3]}),
]


def _mu0_for(game: str) -> list[float] | None:
    # resource selection starts spread out so that the rounded start is not deterministic
    return {"resource_selection_per_step": [0.5, 0.5], "resource_selection": [0.5, 0.5],
            "queueing_per_step": [0.5, 0.3, 0.2], "queueing": [0.5, 0.3, 0.2]}.get(game)


@pytest.mark.parametrize(("game", "N", "B", "steps", "activation", "init", "params"), CASES)
def test_monte_carlo_covers_the_exact_gain(game: str, N: int, B: int, steps: int | None,
                                           activation: str, init: str,
                                           params: dict[str, Any] | None) -> None:
    s = make(game, N, B, steps=steps, params=params, activation=activation,
             mu0=_mu0_for(game), discount=0.95)
    rng = np.random.default_rng(N * 100 + B)
    pi = TabularPolicy(rng.dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs)))
    sigma = best_response(s, pi)
    exact_pi, exact_sigma = exact_gain(s, pi, sigma, activation, init)
    R = 4000
    runs = tagged_returns(s, pi, R, seed=7, deviation=sigma, activation=activation, init=init)
    se = runs.gains.std(ddof=1) / math.sqrt(R)
    check_close(float(runs.gains.mean()), exact_sigma - exact_pi, se, "gain")
    check_close(float(runs.policy.mean()), exact_pi, runs.policy.std(ddof=1) / math.sqrt(R),
                "return under pi")
    check_close(float(runs.deviation.mean()), exact_sigma,
                runs.deviation.std(ddof=1) / math.sqrt(R), "return under sigma")
    est = epsilon_n(s, pi, R, seed=7, activation=activation, init=init)
    assert est.mean == pytest.approx(float(runs.gains.mean()), abs=1e-15)
    assert est.ci_low <= est.mean <= est.ci_high
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.959963984540054 * se, rel=1e-9)


@pytest.mark.parametrize("B", [1, 2])
def test_population_aware_policy_against_the_exact_gain(B: int) -> None:
    """pi reads mu_hat (W != 0) and the dynamics depend on mu (sis): nothing is shared."""
    s = make("sis", 4, B, steps=3, discount=0.9)
    rng = np.random.default_rng(3)
    pol = PopulationPolicy(theta=rng.normal(size=(3, 2, 2)), W=3 * rng.normal(size=(2, 2, 2)))
    dev = PopulationPolicy(theta=rng.normal(size=(3, 2, 2)), W=3 * rng.normal(size=(2, 2, 2)))
    exact_pi, exact_sigma = exact_gain(s, pol, dev)
    R = 4000
    runs = tagged_returns(s, pol, R, seed=11, deviation=dev)
    check_close(float(runs.gains.mean()), exact_sigma - exact_pi,
                runs.gains.std(ddof=1) / math.sqrt(R), "gain")


# --- identities and invariants ---------------------------------------------------------------
@pytest.mark.parametrize(("game", "B", "activation"), [
    ("resource_selection_per_step", 1, "subset"), ("resource_selection_per_step", 7, "bernoulli"),
    ("sis", 7, "subset"), ("queueing_per_step", 1, "subset"), ("queueing_per_step", 30, "subset")])
def test_deviating_to_the_policy_gains_exactly_nothing(game: str, B: int,
                                                       activation: str) -> None:
    s = make(game, 30, B, steps=20, activation=activation)
    pi = TabularPolicy(np.random.default_rng(0).dirichlet(np.ones(s.game.n_act),
                                                          size=(s.T, s.game.n_obs)))
    est = epsilon_n(s, pi, 60, seed=1, deviation=pi, activation=activation)
    assert (est.mean, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0)
    assert est.return_policy == est.return_deviation


@pytest.mark.parametrize(("B", "activation"), [(1, "subset"), (8, "subset"), (40, "subset"),
                                               (8, "bernoulli")])
def test_tagged_return_is_the_population_average_in_expectation(B: int,
                                                                activation: str) -> None:
    """By exchangeability E[G_tagged] = E[population-average return] (counts simulator)."""
    s = make("resource_selection_per_step", 40, B, rounds=3, activation=activation)
    pi = TabularPolicy(np.random.default_rng(5).dirichlet(np.ones(3), size=(s.T, 3, )))
    R = 3000
    tagged = tagged_returns(s, pi, R, seed=2, deviation=pi, activation=activation).policy
    pop = simulate(s, pi, R, seed=3, activation=activation).returns
    se = math.sqrt(tagged.var(ddof=1) / R + pop.var(ddof=1) / R)
    check_close(float(tagged.mean()), float(pop.mean()), se, "tagged vs population")


def test_eps_at_the_equilibrium_shrinks_with_n() -> None:
    """left_right, B = N, the mean-field equilibrium (2/3 left): the best deviation (left)
    gains exactly 1/(3N) (test above; a mixed deviation interpolates linearly, so this is
    eps_N). Monte Carlo covers 1/(3N) at N = 2, 20, 2000 and its intervals are ordered."""
    estimates = []
    for N in (2, 20, 2000):
        s = make("left_right", N, "all")
        est = epsilon_n(s, mixed(s, 2 / 3), 2000, seed=N, deviation=always(s, 0))
        se = (est.ci_high - est.ci_low) / (2 * 1.959963984540054)
        check_close(est.mean, 1 / (3 * N), se, f"N = {N}")
        estimates.append(est)
    assert estimates[0].ci_low > estimates[1].ci_high
    assert estimates[1].ci_low > estimates[2].ci_high
    s = make("left_right", 20, "all")
    right = epsilon_n(s, mixed(s, 2 / 3), 2000, seed=1, deviation=always(s, 1))
    assert right.ci_high < 0  # exactly -2/(3N): right is the worse deviation


class Opaque:
    """A tabular policy hidden behind the bare protocol: the estimator cannot see that the
    others' law ignores mu_hat, so it runs pi and sigma as two separate passes."""

    def __init__(self, table: TabularPolicy) -> None:
        self.table = table

    def probs(self, mu_hat: np.ndarray, t: int) -> np.ndarray:
        return self.table.probs(mu_hat, t)


@pytest.mark.parametrize(("B", "activation"), [(1, "subset"), (3, "subset"), (3, "bernoulli"),
                                               (30, "subset")])
def test_one_shared_pass_equals_two_passes(B: int, activation: str) -> None:
    """Tabular pi and static dynamics: both tagged agents follow one set of others; the numbers
    are those of two separate passes over the same seeds, bit for bit."""
    s = make("resource_selection_per_step", 30, B, steps=25, activation=activation)
    pi = TabularPolicy(np.random.default_rng(8).dirichlet(np.ones(3), size=(s.T, 3)))
    sigma = best_response(s, pi)
    fast = tagged_returns(s, pi, 60, seed=5, deviation=sigma, activation=activation)
    slow = tagged_returns(s, Opaque(pi), 60, seed=5, deviation=Opaque(sigma),
                          activation=activation)
    np.testing.assert_array_equal(fast.policy, slow.policy)
    np.testing.assert_array_equal(fast.deviation, slow.deviation)
    assert np.any(fast.gains != 0)


def test_first_replicas_do_not_depend_on_how_many_are_asked_for() -> None:
    for B in (1, 3):
        s = make("sis", 20, B, steps=10)
        pi = uniform_policy(2, 2, s.T)
        few = tagged_returns(s, pi, 30, seed=9)
        many = tagged_returns(s, pi, 130, seed=9)  # two blocks on the general path
        np.testing.assert_array_equal(few.gains, many.gains[:30])
        assert path_of(s, "subset") == ("sequential" if B == 1 else "general")
    # the compiled tagged chain with idle agents that move (queueing at B = 1): the same
    s = make("queueing", 20, 1, steps=30)
    pi = uniform_policy(4, 4, s.T)
    few = tagged_returns(s, pi, 5, seed=9)
    again = tagged_returns(s, pi, 5, seed=9)
    many = tagged_returns(s, pi, 12, seed=9)
    np.testing.assert_array_equal(few.gains, again.gains)
    np.testing.assert_array_equal(few.policy, many.policy[:5])
    np.testing.assert_array_equal(few.deviation, many.deviation[:5])


def test_bad_inputs_raise_tmf_errors() -> None:
    s = make("sis", 20, 2, steps=10)
    pi = uniform_policy(2, 2, s.T)
    with pytest.raises(SpecError) as bad:
        epsilon_n(s, pi, 0, seed=0)
    assert bad.value.key == "simulate.replicas"
    with pytest.raises(ResultsError, match="shape"):
        epsilon_n(s, pi, 10, seed=0, deviation=uniform_policy(2, 2, s.T + 1))
    with pytest.raises(SpecError) as bad:
        epsilon_n(s, pi, 10, seed=0, activation="sometimes")
    assert bad.value.key == "population.activation"


# --- tmf simulate ----------------------------------------------------------------------------
def test_simulate_reports_eps_n_from_its_own_seed_stream(tmp_path: Path) -> None:
    """summary.csv's eps_n row is epsilon_n of the simulated policy over simulate.replicas
    paired replicas drawn from child 2^30 of the spec's seed; the summary table shows it."""
    data = {"name": "e", "game": {"name": "sis"}, "horizon": {"steps": 12},
            "population": {"agents": 50, "batch": 5}, "simulate": {"replicas": 40}, "seed": 3}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out"),
                                      "--policy", "uniform"], prog_name="tmf")
    assert result.exit_code == 0, result.output
    assert "eps_N, 95% CI" in result.stdout and "a mean-field best response" in result.stdout
    rows = dict(simulate_command.summary_rows(tmp_path / "out"))
    shown = rows["eps_N, 95% CI"]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("metric")
    s = setting(specs.from_dict(data))
    child = np.random.SeedSequence(3, spawn_key=(1 << 30,))  # the documented stream
    est = epsilon_n(s, uniform_policy(2, 2, s.T), 40, child)
    row = summary.loc["eps_n"]
    assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (est.mean, est.ci_low, est.ci_high), abs=1e-12)
    assert row["seed"] == 3
    assert shown == f"{est.mean:.4g}  [{est.ci_low:.4g}, {est.ci_high:.4g}]"


def test_simulate_epsilon_false_skips_the_estimate_and_keeps_the_simulation(
        tmp_path: Path) -> None:
    """simulate.epsilon: false drops the eps_n row and nothing else: the other tables are the
    same bytes as with the estimate (its replicas use their own seed stream)."""
    data = {"name": "e", "game": {"name": "sis"}, "horizon": {"steps": 12},
            "population": {"agents": 50, "batch": 5}, "simulate": {"replicas": 20}, "seed": 3}
    outputs = {}
    for flag in (True, False):
        path = tmp_path / f"spec-{flag}.yaml"
        path.write_text(yaml.safe_dump({**data, "simulate": {"replicas": 20, "epsilon": flag}}))
        out = tmp_path / f"out-{flag}"
        result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(out),
                                          "--policy", "uniform"], prog_name="tmf")
        assert result.exit_code == 0, result.output
        outputs[flag] = out
    with_eps = pd.read_csv(outputs[True] / "summary.csv")
    without = pd.read_csv(outputs[False] / "summary.csv")
    assert "eps_n" in set(with_eps["metric"]) and "eps_n" not in set(without["metric"])
    pd.testing.assert_frame_equal(with_eps[with_eps["metric"] != "eps_n"].reset_index(drop=True),
                                  without)
    for name in ("trajectory.csv", "replicas.csv"):
        assert (outputs[True] / name).read_bytes() == (outputs[False] / name).read_bytes()
    manifest = yaml.safe_load((outputs[False] / "manifest.yaml").read_text())
    assert manifest["epsilon"] is None


def test_simulate_epsilon_must_be_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "e", "game": {"name": "sis"},
                                    "population": {"agents": 50, "batch": 5},
                                    "simulate": {"epsilon": "no"}}))
    result = CliRunner().invoke(app, ["simulate", str(path)], prog_name="tmf")
    assert result.exit_code == 1
    assert "simulate.epsilon: expected true or false, got 'no'" in result.output
