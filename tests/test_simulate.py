"""`tmf simulate`: the count-based simulator against the agent-by-agent reference, its
invariants, its seeding contract, and the CLI edge.

Statistical tolerances: every comparison is a z-score |difference| / SE, where SE comes from the
sample sizes (replicas) of the quantities compared. The file makes about 600 such comparisons;
we accept |z| <= 4.5, for which P(|Z| > 4.5) = 6.8e-6, so under the null hypothesis ("same law")
the chance that any comparison fails is about 0.4% (Bonferroni). The SE of a sample variance
or covariance is the asymptotic one, sqrt(Var[(x - mean)(y - mean)] / R), estimated from the
sample. Seeds are fixed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.io import spec as specs
from tmfcli.io.policy_files import load_policy, write_policy
from tmfcli.io.resolve import setting
from tmfcli.model.flow import step
from tmfcli.model.games.project import QueueingPerStep as Queueing
from tmfcli.model.policy import (
    Policy,
    PopulationPolicy,
    TabularPolicy,
    on_flow,
    uniform_policy,
)
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import (
    BLOCK,
    CHUNK,
    Rollouts,
    gaps,
    path_of,
    rounded_counts,
    simulate,
    simulate_agents,
)

Z = 4.5  # see the module docstring
runner = CliRunner()


def make(game: str, N: int, B: Any, steps: int, mu0: list[float] | None = None,
         params: dict[str, Any] | None = None, **extra: Any) -> Setting:
    data: dict[str, Any] = {"name": "t", "game": {"name": game, "params": params or {}},
                            "horizon": {"steps": steps},
                            "population": {"agents": N, "batch": B}, **extra}
    if mu0 is not None:
        data["game"]["mu0"] = mu0
    return setting(specs.from_dict(data))


def random_tabular(s: Setting, seed: int) -> TabularPolicy:
    rng = np.random.default_rng(seed)
    return TabularPolicy(rng.dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs)))


def random_population(s: Setting, seed: int) -> PopulationPolicy:
    rng = np.random.default_rng(seed)
    O, A = s.game.n_obs, s.game.n_act
    return PopulationPolicy(theta=rng.normal(size=(s.T, O, A)), W=3 * rng.normal(size=(O, A, O)))


def z_score(diff: float, se: float) -> float:
    if se == 0.0:
        return 0.0 if abs(diff) < 1e-12 else np.inf
    return abs(diff) / se


def mean_and_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def var_and_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dev2 = (x - x.mean(axis=0)) ** 2
    return dev2.sum(axis=0) / (x.shape[0] - 1), dev2.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def cov_and_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covariances of the pairs o < o' of columns, with the SE of each (as for variances)."""
    dev = x - x.mean(axis=0)
    i, j = np.triu_indices(x.shape[1], k=1)
    prod = dev[:, i] * dev[:, j]
    return prod.sum(axis=0) / (x.shape[0] - 1), prod.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def assert_same_law(a: Rollouts, b: Rollouts, times: list[int]) -> None:
    """Mean, variance and covariances of mu_hat_t at ``times`` (per observation or pair of
    observations), and the mean return."""
    for t in times:
        for stat in (mean_and_se, var_and_se, cov_and_se):
            va, sa = stat(a.mu_hat[:, t])
            vb, sb = stat(b.mu_hat[:, t])
            for o in range(va.shape[0]):
                z = z_score(va[o] - vb[o], float(np.hypot(sa[o], sb[o])))
                assert z <= Z, (stat.__name__, t, o, va[o], vb[o], z)
    ma, sa = mean_and_se(a.returns)
    mb, sb = mean_and_se(b.returns)
    assert z_score(float(ma - mb), float(np.hypot(sa, sb))) <= Z, (ma, mb)


# (game, mu0, N, B, activation, policy kind, method); 6 steps
LAW_CASES = [
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 20, 1, "subset", "tabular", "auto"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 20, 1, "subset", "tabular", "general"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 20, 1, "bernoulli", "tabular", "auto"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 30, 30, "subset", "tabular", "auto"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 40, 9, "subset", "population", "auto"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 40, 9, "bernoulli", "tabular", "auto"),
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 20, 1, "subset", "population", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 20, 1, "subset", "tabular", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 20, 1, "bernoulli", "tabular", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 30, 30, "subset", "tabular", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 30, 30, "bernoulli", "tabular", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 40, 10, "subset", "population", "auto"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 40, 10, "bernoulli", "tabular", "auto"),
    ("sis", None, 25, 1, "subset", "tabular", "auto"),
    ("sis", None, 25, 1, "bernoulli", "population", "auto"),
    ("sis", None, 25, 25, "subset", "tabular", "auto"),
    ("sis", None, 60, 15, "subset", "tabular", "auto"),
    ("sis", None, 60, 15, "bernoulli", "tabular", "auto"),
    # timed games (MODEL.md section 9): every other step a time stage with B = 0
    ("resource_selection", [0.5, 0.3, 0.2], 20, 1, "subset", "tabular", "auto"),
    ("resource_selection", [0.5, 0.3, 0.2], 40, 9, "bernoulli", "population", "auto"),
    ("queueing", [0.4, 0.3, 0.2, 0.1], 20, 1, "subset", "tabular", "auto"),
    ("queueing", [0.4, 0.3, 0.2, 0.1], 30, 30, "bernoulli", "tabular", "auto"),
    ("queueing", [0.4, 0.3, 0.2, 0.1], 40, 10, "subset", "population", "auto"),
]


@pytest.mark.parametrize(("game", "mu0", "N", "B", "activation", "kind", "method"), LAW_CASES)
def test_count_based_and_agent_based_agree_in_law(game: str, mu0: list[float] | None, N: int,
                                                   B: int, activation: str, kind: str,
                                                   method: str) -> None:
    s = make(game, N, B, steps=6, mu0=mu0)
    policy: Policy = random_tabular(s, 1) if kind == "tabular" else random_population(s, 1)
    counts = simulate(s, policy, 2000, seed=11, activation=activation, method=method)
    agents = simulate_agents(s, policy, 600, seed=12, activation=activation)
    assert_same_law(counts, agents, times=[1, 3, 6])


@pytest.mark.parametrize("method", ["auto", "general"])
def test_active_count_is_exactly_B_or_binomial(method: str) -> None:
    """left_right from mu0 = start: after one step exactly the active agents have left 0.

    Marginal moments of mu_hat barely see the law of the active count, so test it directly:
    subset -> N - B at 0 in every replica; bernoulli -> Bin(N, 1 - alpha) (mean and variance
    against the exact values, z-scores as above)."""
    for B in (1, 7, 50):
        s = make("left_right", 50, B, steps=1)
        pi = uniform_policy(3, 2, 1)
        stay = np.round(simulate(s, pi, 60, 0, method=method).mu_hat[:, 1, 0] * 50)
        assert np.all(stay == 50 - B)
        if method == "general":
            x = np.round(simulate(s, pi, 3000, 0, activation="bernoulli").mu_hat[:, 1, 0] * 50)
            p = 1 - B / 50
            mean, se = mean_and_se(x)
            var, var_se = var_and_se(x)
            assert z_score(float(mean) - 50 * p, float(se)) <= Z
            assert z_score(float(var) - 50 * p * (1 - p), float(var_se)) <= Z


def test_rounded_init_is_the_documented_rounding() -> None:
    assert rounded_counts(np.array([0.5, 0.3, 0.2]), 7).tolist() == [4, 2, 1]  # 3.5 2.1 1.4
    assert rounded_counts(np.array([1 / 3, 1 / 3, 1 / 3]), 10).tolist() == [4, 3, 3]
    s = make("sis", 25, 5, steps=3)
    both = [simulate(s, uniform_policy(2, 2, 3), 3, 0, init="rounded"),
            simulate_agents(s, uniform_policy(2, 2, 3), 3, 0, init="rounded")]
    for r in both:
        assert np.all(r.mu_hat[:, 0] * 25 == [10, 15])


@pytest.mark.parametrize(("game", "N", "B", "activation", "kind"), [
    ("queueing_per_step", 50, 10, "subset", "tabular"),
    ("queueing_per_step", 50, 10, "bernoulli", "population"),
    ("sis", 40, 40, "subset", "tabular"),
    ("sis", 40, 13, "subset", "population"),
    ("resource_selection_per_step", 30, 1, "subset", "tabular"),
    ("resource_selection_per_step", 30, 6, "bernoulli", "tabular"),
])
def test_one_step_mean_is_the_mean_field_map(game: str, N: int, B: int, activation: str,
                                             kind: str) -> None:
    """E[mu_hat_1 | mu_hat_0 = n/N] = Phi_0(n/N), from a fixed count vector (rounded init)."""
    base = make(game, N, B, steps=1)
    O = base.game.n_obs
    counts = np.random.default_rng(3).multinomial(N, np.full(O, 1 / O))
    mu = counts / N
    s = make(game, N, B, steps=1, mu0=mu.tolist())
    policy: Policy = random_tabular(s, 2) if kind == "tabular" else random_population(s, 2)
    r = simulate(s, policy, 4000, seed=5, activation=activation, init="rounded")
    assert np.all(np.round(r.mu_hat[:, 0] * N) == counts)
    expected = step(mu, policy.probs(mu, 0), s.game.transition(mu, 0),
                    s.game.idle_transition(mu, 0), float(s.alpha[0]))
    mean, se = mean_and_se(r.mu_hat[:, 1])
    for o in range(O):
        assert z_score(mean[o] - expected[o], se[o]) <= Z, (o, mean[o], expected[o])


@dataclasses.dataclass(frozen=True)
class NoIdle(Queueing):
    """Queueing whose idle kernel must never be used (its reward uses r0 by design)."""

    def idle_transition(self, mu: np.ndarray, t: int) -> np.ndarray:
        raise AssertionError("P0 used although every agent is active")


@pytest.mark.parametrize("activation", ["subset", "bernoulli"])
def test_all_active_is_the_synchronous_game(activation: str) -> None:
    s = make("queueing_per_step", 40, "all", steps=8, mu0=[0.4, 0.3, 0.2, 0.1])
    poisoned = dataclasses.replace(s, game=NoIdle().with_mu0(s.game.mu0))
    policy = random_tabular(s, 4)
    a = simulate(poisoned, policy, 30, seed=1, activation=activation)
    b = simulate(s, policy, 30, seed=1, activation=activation)
    np.testing.assert_array_equal(a.mu_hat, b.mu_hat)
    np.testing.assert_array_equal(a.returns, b.returns)


@pytest.mark.parametrize(("game", "method"), [("resource_selection_per_step", "auto"),
                                              ("resource_selection_per_step", "general"),
                                              ("sis", "auto")])
def test_one_active_agent_moves_at_most_one_agent(game: str, method: str) -> None:
    s = make(game, 50, 1, steps=300)
    r = simulate(s, random_tabular(s, 6), 30, seed=2, method=method)
    counts = np.round(r.mu_hat * 50).astype(int)
    change = np.abs(np.diff(counts, axis=1)).sum(axis=-1)
    assert change.max() <= 2
    assert change.max() == 2  # and it does move (the policy is random)


@pytest.mark.parametrize(("game", "B", "T", "mu0"), [
    ("queueing_per_step", 7, 12, [0.4, 0.3, 0.2, 0.1]),
    ("resource_selection_per_step", 1, CHUNK + 300, None),  # crosses a chunk of pre-drawn uniforms
    ("queueing_per_step", 1, CHUNK + 30, [0.4, 0.3, 0.2, 0.1]),  # compiled, idle agents move
    ("queueing", 1, CHUNK + 30, [0.4, 0.3, 0.2, 0.1]),  # timed: B_t in {1, 0}
])
def test_adding_replicas_does_not_change_the_first_ones(game: str, B: int, T: int,
                                                        mu0: list[float] | None) -> None:
    s = make(game, 60, B, steps=T, mu0=mu0)
    policy = random_tabular(s, 7)
    few = simulate(s, policy, 3, seed=9)
    many = simulate(s, policy, 2 * BLOCK + 3, seed=9)
    np.testing.assert_array_equal(few.mu_hat, many.mu_hat[:3])
    np.testing.assert_array_equal(few.returns, many.returns[:3])
    mid = simulate(s, policy, BLOCK + 1, seed=9)
    np.testing.assert_array_equal(mid.mu_hat, many.mu_hat[:BLOCK + 1])
    # an already-spawned SeedSequence gives the same as its seed; another seed differs
    used = np.random.SeedSequence(9)
    used.spawn(4)
    np.testing.assert_array_equal(simulate(s, policy, 3, seed=used).mu_hat, few.mu_hat)
    assert not np.array_equal(simulate(s, policy, 3, seed=10).mu_hat, few.mu_hat)


def test_paths_are_chosen_as_documented() -> None:
    assert path_of(make("sis", 10, 1, steps=2), "subset") == "sequential"
    assert path_of(make("sis", 10, 1, steps=2), "bernoulli") == "general"
    # idle agents move: sequential when the kernels compile (queueing's do), drawn in the loop
    assert path_of(make("queueing_per_step", 10, 1, steps=2), "subset") == "sequential"
    # a timed game at B = 1: B_t alternates 1 (decisions) and 0 (time stages)
    assert path_of(make("queueing", 10, 1, steps=2), "subset") == "sequential"
    assert path_of(make("sis", 10, [1, 2], steps=2), "subset") == "general"


def test_gaps_are_max_and_mean_of_l1_over_time() -> None:
    mu_hat = np.array([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])
    mu_bar = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    g_max, g_mean = gaps(Rollouts(mu_hat=mu_hat, returns=np.zeros(1)), mu_bar)
    assert g_max.tolist() == [2.0] and g_mean.tolist() == [1.0]


def test_sample_mean_tracks_the_mean_field_flow_of_a_population_policy() -> None:
    """E[mu_hat_t] -> mu_bar_t (flow of on_flow(policy)); at N = 2000 the bias is O(1/N)."""
    s = make("sis", 2000, 200, steps=10)
    policy = random_population(s, 8)
    pi_bar = on_flow(s, policy)
    mu_bar = np.empty((s.T + 1, 2))
    mu_bar[0] = s.game.mu0
    for t in range(s.T):
        mu_bar[t + 1] = step(mu_bar[t], pi_bar[t], s.game.transition(mu_bar[t], t),
                             s.game.idle_transition(mu_bar[t], t), float(s.alpha[t]))
        np.testing.assert_allclose(pi_bar[t], policy.probs(mu_bar[t], t))
    r = simulate(s, policy, 500, seed=1)
    mean, se = mean_and_se(r.mu_hat[:, -1])
    # 5 SE plus the O(1/N) bias of a nonlinear map (|bias| <= 5e-3 is generous at N = 2000)
    assert np.all(np.abs(mean - mu_bar[-1]) <= Z * se + 5e-3)


# --- policy files ----------------------------------------------------------------------------
def test_policy_files_round_trip(tmp_path: Path) -> None:
    s = make("queueing_per_step", 10, 2, steps=4)
    pop = random_population(s, 3)
    write_policy(pop, tmp_path / "pop")
    back = load_policy(tmp_path / "pop", 4, 4, 4)
    assert isinstance(back, PopulationPolicy)
    np.testing.assert_array_equal(back.theta, pop.theta)
    np.testing.assert_array_equal(back.W, pop.W)
    tab = random_tabular(s, 3)
    write_policy(tab, tmp_path / "tab")
    again = load_policy(tmp_path / "tab", 4, 4, 4)
    assert isinstance(again, TabularPolicy)
    np.testing.assert_array_equal(again.pi, tab.pi)
    assert on_flow(s, tab) is not None and np.array_equal(on_flow(s, tab), tab.pi)


def test_population_policy_without_weights_is_softmax_of_theta() -> None:
    theta = np.log(np.array([[[1.0, 3.0], [2.0, 2.0]]]))
    p = PopulationPolicy(theta=theta, W=np.zeros((2, 2, 2)))
    np.testing.assert_allclose(p.probs(np.array([[0.3, 0.7], [1.0, 0.0]]), 0),
                               np.broadcast_to([[0.25, 0.75], [0.5, 0.5]], (2, 2, 2)))


# --- the command line ------------------------------------------------------------------------
SPEC = {
    "name": "qsim",
    "game": {"name": "queueing_per_step", "params": {"K": 3}, "mu0": [0.4, 0.3, 0.2, 0.1]},
    "horizon": {"steps": 10},
    "population": {"agents": 200, "batch": 20},
    "solver": {"algorithm": "mirror-descent", "iterations": 200, "restarts": 0},
    "simulate": {"replicas": 30},
    "seed": 4,
}
TABLES = ("trajectory.csv", "replicas.csv", "summary.csv")


def write_spec(tmp_path: Path, data: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data or SPEC))
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


def test_cli_writes_tables_and_is_reproducible(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    first = invoke("simulate", str(spec), "--out", str(a))
    assert first.exit_code == 0, first.output
    assert "return (N agents)" in first.stdout
    assert invoke("simulate", str(spec), "--out", str(b)).exit_code == 0
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    header = {n: (a / n).read_text().splitlines()[0] for n in TABLES}
    assert header == {"trajectory.csv": "replica,t,obs,obs_label,mu_hat,mu_bar,seed",
                      "replicas.csv": "replica,return_avg,gap_max,gap_mean,seed",
                      "summary.csv": "metric,mean,ci_low,ci_high,seed"}
    assert len((a / "trajectory.csv").read_text().splitlines()) == 1 + 30 * 11 * 4
    again = invoke("simulate", str(spec), "--out", str(a))
    assert again.exit_code == 0 and "up to date" in again.stderr
    # more replicas: the first 30 rows of replicas.csv are unchanged
    more = invoke("simulate", str(spec), "--out", str(tmp_path / "c"), "--replicas", "60")
    assert more.exit_code == 0, more.output
    rows_a = (a / "replicas.csv").read_text().splitlines()
    rows_c = (tmp_path / "c" / "replicas.csv").read_text().splitlines()
    assert len(rows_c) == 61 and rows_c[:31] == rows_a


def test_cli_policy_from_a_solve_directory_equals_solving_in_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    assert invoke("solve", str(spec), "--out", str(tmp_path / "eq")).exit_code == 0
    a = invoke("simulate", str(spec), "--out", str(tmp_path / "a"))
    b = invoke("simulate", str(spec), "--out", str(tmp_path / "b"),
               "--policy", str(tmp_path / "eq"))
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    for name in TABLES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    u = invoke("simulate", str(spec), "--out", str(tmp_path / "u"), "--policy", "uniform")
    assert u.exit_code == 0, u.output
    assert (tmp_path / "u" / "replicas.csv").read_bytes() != \
        (tmp_path / "a" / "replicas.csv").read_bytes()


def test_cli_population_policy_directory(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    s = make("queueing_per_step", 200, 20, steps=10, mu0=[0.4, 0.3, 0.2, 0.1])
    write_policy(random_population(s, 5), tmp_path / "pol")
    result = invoke("simulate", str(spec), "--out", str(tmp_path / "o"), "--policy",
                    str(tmp_path / "pol"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("override", "message"), [
    ("population.batch=1000",
     "population.batch: batch 1000 is larger than agents (200) — use a batch between 1 and 200"),
    ("population.agents=0", "population.agents: 0 is too small — use an integer >= 1"),
    ("population.activation=random",
     "population.activation: unknown value 'random' — use one of: subset, bernoulli"),
])
def test_cli_bad_population(tmp_path: Path, override: str, message: str) -> None:
    spec = write_spec(tmp_path)
    result = invoke("simulate", str(spec), "--set", override, "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: --set {override}: {message.split(': ', 1)[1]}\n"
    assert not (tmp_path / "o").exists()


def test_cli_needs_a_finite_population(tmp_path: Path) -> None:
    data = {**SPEC, "population": {"alpha": 0.1}}
    spec = write_spec(tmp_path, data)
    result = invoke("simulate", str(spec))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {spec}:population.agents: missing (simulate needs a "
                             "finite population) — add population.agents and population.batch\n")


def test_cli_bad_policy_directories(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    hint = "point --policy at a directory written by 'tmf solve' or 'tmf train', or use " \
        "--policy uniform"

    def run(directory: Path) -> Any:
        return invoke("simulate", str(spec), "--policy", str(directory), "--out",
                      str(tmp_path / "o"))

    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(empty)
    assert result.exit_code == 1
    assert result.stderr == f"Error: no policy.csv or logits.csv in {empty} — {hint}\n"

    result = run(tmp_path / "absent")
    assert result.exit_code == 1
    assert result.stderr == f"Error: policy directory {tmp_path / 'absent'} not found — {hint}\n"

    shape = tmp_path / "shape"
    write_policy(uniform_policy(2, 2, 50), shape)  # an SIS-shaped policy
    result = run(shape)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {shape / 'policy.csv'} holds a policy of shape (T=50, O=2, "
                             "A=2) but the spec needs (T=10, O=4, A=4) — solve the same game "
                             "and horizon first, or use --policy uniform\n")

    other = tmp_path / "other"
    write_policy(uniform_policy(4, 4, 10), other)
    (other / "manifest.yaml").write_text(yaml.safe_dump({"spec": {"game": {"name": "sis"}}}))
    result = run(other)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: the policy in {other} is for game 'sis', not "
                             "'queueing_per_step' — solve the same game first, or use "
                             "--policy uniform\n")

    half = tmp_path / "half"
    s = make("queueing_per_step", 200, 20, steps=10)
    write_policy(random_population(s, 1), half)
    (half / "mu_weights.csv").unlink()
    result = run(half)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {half / 'mu_weights.csv'} not found — a population-aware "
                             "policy needs both logits.csv and mu_weights.csv\n")
    assert not (tmp_path / "o").exists()


def test_cli_reuses_a_result_only_for_the_same_policy(tmp_path: Path) -> None:
    """The result's hash holds the policy's numbers: the same numbers in another directory
    reuse it, other numbers in the same directory are refused unless --force."""
    spec = write_spec(tmp_path)
    own = setting(specs.load(spec))
    T, O, A = own.T, own.game.n_obs, own.game.n_act
    rng = np.random.default_rng(7)
    first, second = rng.dirichlet(np.ones(A), size=(T, O)), rng.dirichlet(np.ones(A), size=(T, O))
    write_policy(TabularPolicy(first), tmp_path / "p")
    write_policy(TabularPolicy(first), tmp_path / "copy")
    out = tmp_path / "out"
    assert invoke("simulate", str(spec), "--out", str(out), "--policy",
                  str(tmp_path / "p")).exit_code == 0
    same = invoke("simulate", str(spec), "--out", str(out), "--policy", str(tmp_path / "copy"))
    assert same.exit_code == 0 and "up to date" in same.stderr
    write_policy(TabularPolicy(second), tmp_path / "p")
    other = invoke("simulate", str(spec), "--out", str(out), "--policy", str(tmp_path / "p"))
    assert other.exit_code == 1 and "holds a result of another spec or policy" in other.stderr
    other = invoke("simulate", str(spec), "--out", str(out), "--policy", str(tmp_path / "p"),
                   "--force")
    assert other.exit_code == 0 and "up to date" not in other.stderr
