"""tmf train: the spec block, the sampled gradient against the exact one, convergence on
left_right, the exact yardstick on resource_selection, reproducible outputs, policy files and
the CLI errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.io import spec as specs
from tmfcli.io import spec_types
from tmfcli.io.policy_files import load_policy, write_policy
from tmfcli.io.resolve import setting
from tmfcli.learning.critic import aggregate
from tmfcli.learning.policy_class import Params, PolicyClass, on_flow_fast
from tmfcli.learning.rollouts import sample
from tmfcli.learning.tmf_pg import exact_gradient, sampled_gradient
from tmfcli.learning.train import TrainConfig, child, train
from tmfcli.model.exploitability import evaluate
from tmfcli.model.policy import on_flow
from tmfcli.model.setting import Setting

runner = CliRunner()


def spec_of(game: str, agents: int, batch: Any, rounds: int, **train_block: Any) -> spec_types.Spec:
    return specs.from_dict({"name": "t", "game": {"name": game}, "horizon": {"rounds": rounds},
                            "population": {"agents": agents, "batch": batch},
                            "train": train_block})


def run(s: Setting, **config: Any) -> pd.DataFrame:
    return train(s, TrainConfig(time_index="round", **config)).history


# --- spec block -------------------------------------------------------------------------------
def test_the_issue_example_block_is_read_with_documented_defaults() -> None:
    spec = spec_of("left_right", 10, 1, 2, algorithm="tmf-pg", iterations=200, inner_steps=10,
                   rollouts=8, lr=0.1, time_index="round", seed=0)
    t = spec.train
    assert (t.algorithm, t.iterations, t.inner_steps, t.rollouts, t.lr, t.time_index, t.seed) \
        == ("tmf-pg", 200, 10, 8, 0.1, "round", 0)
    assert (t.optimizer, t.entropy_bonus, t.lr_decay) == ("sgd", 0.0, 0.0)
    assert specs.from_dict({"name": "t", "game": {"name": "sis"}}).train.seed is None


BASE: dict[str, Any] = {"name": "demo", "game": {"name": "left_right"}, "horizon": {"rounds": 2},
        "population": {"agents": 20, "batch": 1},
        "train": {"iterations": 3, "rollouts": 2, "inner_steps": 2}, "seed": 1}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.mark.parametrize(("override", "message"), [
    ("train.algorithm=ppo",
     "train.algorithm: unknown value 'ppo' — use one of: tmf-pg, tmf-pg-exact, mf-q, "
     "independent-pg"),
    ("train.lr=-0.1", "train.lr: -0.1 is out of range — use a number > 0"),
    ("train.rollouts=0", "train.rollouts: 0 is too small — use an integer >= 1"),
    ("train.optimizer=lbfgs", "train.optimizer: unknown value 'lbfgs' — use one of: adam, sgd"),
    ("train.iterations=0", "train.iterations: 0 is too small — use an integer >= 1"),
    ("train.rollout=1", "train.rollout: unknown key — did you mean 'rollouts'?"),
])
def test_bad_train_block_fails_with_one_line(tmp_path: Path, override: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    result = invoke("train", str(path), "--set", override, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    # a bad --set is blamed on the override, the same mistake in the file on the file
    assert result.output.strip() == f"Error: --set {override}: {message.split(': ', 1)[1]}"
    assert not (tmp_path / "out").exists()
    key, value = override.split("=")
    written = {**BASE, "train": {**BASE["train"], key.split(".")[1]: yaml.safe_load(value)}}
    path.write_text(yaml.safe_dump(written))
    result = invoke("train", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {path}:{message}"
    assert not (tmp_path / "out").exists()


def test_round_time_index_needs_a_horizon_in_rounds(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "horizon": {"steps": 4}}))
    result = invoke("train", str(path), "--set", "train.time_index=round")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: --set train.time_index=round: a time index per round needs a horizon in "
        "rounds — give horizon: {rounds: H}, or use time_index: step or none")


def test_train_needs_a_finite_population(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "population": {"alpha": 0.5}}))
    result = invoke("train", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "population.agents: missing" in result.output


# --- the gradient -----------------------------------------------------------------------------
@pytest.mark.parametrize(("game", "agents", "batch"), [
    ("left_right", 10_000, 2500), ("resource_selection_per_step", 10_000, "all"),
    ("queueing", 10_000, 2500), ("left_right", 1000, 1)])
def test_sampled_gradient_is_the_exact_gradient_in_expectation(game: str, agents: int,
                                                               batch: Any) -> None:
    """Mean of M sampled gradients (N = 10^4, B = N/4 or N; N = 1000, B = 1 on the compiled
    chain; round index, W != 0) against the exact TMF-PG gradient on the flow of the same
    policy: within 4.5 standard errors per coordinate (plus 2e-3 for the O(1/N)
    finite-population terms, docs/train.md)."""
    s = setting(spec_of(game, agents, batch, 2))
    cls = PolicyClass.of(s, "round")
    rng = np.random.default_rng(7)
    zero = cls.zeros()
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    policy = cls.policy(params)
    flow = evaluate(s, on_flow(s, policy)).flow
    exact = exact_gradient(cls, params, s, flow)
    M = 60
    draws = []
    for i in range(M):
        batch_ = sample(s, policy, 4, child(3, i))
        g = sampled_gradient(cls, params, batch_, aggregate(batch_, cls.index))
        draws.append(np.concatenate([g.theta.ravel(), g.W.ravel()]))
    draws_ = np.array(draws)
    want = np.concatenate([exact.theta.ravel(), exact.W.ravel()])
    se = draws_.std(axis=0, ddof=1) / np.sqrt(M)
    assert np.abs(want).max() > 0.02  # the comparison is not between zeros
    assert np.all(np.abs(draws_.mean(axis=0) - want) <= 4.5 * se + 2e-3)


def enumerated_gradients(N: int, scale: float) -> tuple[np.ndarray, ...]:
    """left_right at B = N, 2 rounds (T = 2), discount 0.9: the exact means, over the law of
    the number c_L of agents going left at t = 0 (Binomial(N, pi(left))), of the returned
    sampled gradient and of the same gradient with the critic's Q as the advantage (no
    baseline), with theta[0, 0] = scale (1, -1); and, in closed form, the N-agent own gradient
    and the mean-field gradient (exact_gradient). Only theta[0, 0] can be non-zero: at t = 1
    every agent at o earns the same, so every advantage is 0, and mu_0 = e_0."""
    from math import comb

    from tmfcli.learning.critic import Critic
    from tmfcli.learning.rollouts import Batch, rewards_along

    s = setting(specs.from_dict({"name": "t", "game": {"name": "left_right"},
                                 "horizon": {"rounds": 2}, "discount": 0.9,
                                 "population": {"agents": N, "batch": "all"}}))
    cls = PolicyClass.of(s, "round")
    zero = cls.zeros()
    theta = zero.theta.copy()
    theta[0, 0] = [scale, -scale]
    params = Params(theta, zero.W)
    policy = cls.policy(params)
    p = float(policy.probs(s.game.mu0, 0)[0, 0])
    returned, no_baseline = np.zeros(2), np.zeros(2)
    for left in range(N + 1):
        n = np.array([[[N, 0, 0], [0, left, N - left], [0, N, 0]]])
        m = n[:, :2].copy()
        c = np.zeros((1, 2, 3, 2), dtype=np.int64)
        c[0, 0, 0] = [left, N - left]
        c[0, 1, 1:, 0] = [left, N - left]
        X = np.zeros((1, 2, 3, 2, 3), dtype=np.int64)
        X[0, 0, 0, :, 1:] = np.diag([left, N - left])
        X[0, 1, 1:, 0, 1] = [left, N - left]
        reward, idle = rewards_along(s, n, m, c)
        pi = np.stack([policy.probs(n[:, t] / N, t) for t in range(2)], axis=1)
        b = Batch(agents=N, gamma=s.gamma, n=n, m=m, c=c, X=X, Y=None, reward=reward,
                  idle_reward=idle, pi=pi)
        critic = aggregate(b)
        weight = comb(N, left) * p ** left * (1 - p) ** (N - left)
        returned += weight * sampled_gradient(cls, params, b, critic).theta[0, 0]
        plain = Critic(critic.Q, critic.S, np.nan_to_num(critic.Q))
        no_baseline += weight * sampled_gradient(cls, params, b, plain).theta[0, 0]
    q = 1 - p  # own: d/dz_left of E[G_i], G_i = -0.9 (1 + others left) / N or -1.8 (1 + ...)
    own = 0.9 * p * q * (1 / N + (N - 1) / N * (2 * q - p)) * np.array([1.0, -1.0])
    mean_field = exact_gradient(cls, params, s, evaluate(s, on_flow(s, policy)).flow)
    return returned, no_baseline, own, mean_field.theta[0, 0]


@pytest.mark.parametrize("N", [4, 64])
def test_what_the_sampled_gradient_estimates(N: int) -> None:
    """Pins docs/train.md, "What the sampled gradient estimates", exactly (enumeration, no
    Monte Carlo), on left_right at B = N: without the baseline the count critic's gradient has
    the mean of the N-agent own gradient; the returned gradient (leave-one-out baseline) has
    the mean own - mean-field / N (so, relative to the own gradient, -20% at N = 4 and -1.5% at
    N = 64 for the uniform policy, +46% and -1.7% at theta[0, 0] = (0.5, -0.5), where the
    gradient is small), and at the uniform policy that is the mean-field gradient itself."""
    for scale in (0.0, 0.5, -0.5):
        returned, no_baseline, own, mean_field = enumerated_gradients(N, scale)
        np.testing.assert_allclose(no_baseline, own, rtol=1e-12)
        np.testing.assert_allclose(N * (returned - own), -mean_field, rtol=1e-9, atol=1e-12)
        if scale == 0.0:
            np.testing.assert_allclose(returned, mean_field, rtol=1e-12)


def test_independent_pg_keeps_w_at_zero_and_mf_q_runs_on_the_same_rollouts() -> None:
    s = setting(spec_of("left_right", 50, 5, 2))
    for algorithm in ("independent-pg", "mf-q"):
        result = train(s, TrainConfig(algorithm=algorithm, iterations=3, rollouts=2,
                                      time_index="round"))
        # 2 rollouts x 20 steps x 5 active agents per iteration
        assert list(result.history["samples"]) == [200, 400, 600, 600]
        if algorithm == "independent-pg":
            assert np.all(result.policy.W == 0)  # type: ignore[attr-defined]


# --- learning ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("agents", "batch"), [(10_000, "all"), (100, 1)])
def test_left_right_tmf_pg_from_samples_reaches_the_equilibrium(agents: int, batch: Any) -> None:
    """Exploitability <= 0.01 (closed form: equilibrium sends 2/3 left) from samples only, in
    rounds, at B = N (N = 10^4, cost independent of N) and B = 1 (N = 100, 200 steps). The
    N-agent game's own equilibrium is O(1/N) away from the mean field's (an agent counts itself
    in mu_hat): at N = 100, B = N it alone leaves an exploitability of about 0.007."""
    s = setting(spec_of("left_right", agents, batch, 2))
    history = run(s, iterations=60, rollouts=16, lr=0.4, lr_decay=0.05, seed=0)
    assert history["exploitability"].iloc[0] > 0.15  # the uniform start is far from it
    assert history["exploitability"].iloc[-1] <= 0.01


@pytest.mark.parametrize("batch", ["all", 1])
def test_resource_selection_sampled_tracks_the_exact_yardstick(batch: Any) -> None:
    """The timed resource selection (MODEL.md section 9), N = 1000, two rounds: after the same
    iterations with the same steps, sampled TMF-PG's exploitability is within 0.02 of
    tmf-pg-exact's, at B = N and B = 1 alike (the same quantity at every B: no rescaling)."""
    s = setting(spec_of("resource_selection", 1000, batch, 2))
    kwargs: dict[str, Any] = {"iterations": 10, "rollouts": 4, "lr": 0.2, "seed": 0}
    sampled = run(s, algorithm="tmf-pg", **kwargs)["exploitability"]
    exact = run(s, algorithm="tmf-pg-exact", **kwargs)["exploitability"]
    assert exact.iloc[-1] < exact.iloc[0] - 0.05  # learning happened
    assert abs(sampled.iloc[-1] - exact.iloc[-1]) <= 0.02


# --- outputs ----------------------------------------------------------------------------------
def test_same_spec_and_seed_same_iterations_bytes_and_simulate_reads_the_policy(
        tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    frames = []
    for name in ("a", "b"):
        result = invoke("train", str(path), "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(tmp_path / name / "iterations.csv")
        assert list(frame.columns) == ["iteration", "exploitability", "return_avg", "samples",
                                       "grad_norm", "elapsed_s", "algorithm", "agents",
                                       "batch", "seed"]
        frames.append(frame.drop(columns="elapsed_s").to_csv(index=False))
    assert frames[0] == frames[1]
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert {"exploitability", "return_avg", "exploitability_exact"} <= set(summary["metric"])
    manifest = yaml.safe_load((tmp_path / "a" / "manifest.yaml").read_text())
    assert (manifest["algorithm"], manifest["agents"], manifest["batch"]) == ("tmf-pg", 20, 1)
    sim = invoke("simulate", str(path), "--policy", str(tmp_path / "a"), "--replicas", "3",
                 "--out", str(tmp_path / "sim"))
    assert sim.exit_code == 0, sim.output


def test_train_reports_the_n_agent_epsilon_of_the_policy_it_wrote(tmp_path: Path) -> None:
    """summary.csv's eps_n is epsilon_n of the written policy on the documented stream (child
    2^30 of the seed), over simulate.replicas paired replicas: the final policy, not another."""
    from tmfcli.simulation.epsilon import epsilon_n

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "simulate": {"replicas": 40}}))
    result = invoke("train", str(path), "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert "eps_N" in result.output
    s = setting(specs.load(path))
    policy = load_policy(tmp_path / "a", s.game.n_obs, s.game.n_act, s.T, alpha=s.alpha)
    root = np.random.SeedSequence(int(BASE.get("seed", 0)))
    expected = epsilon_n(s, policy, 40, np.random.SeedSequence(root.entropy,
                                                               spawn_key=(1 << 30,)))
    row = pd.read_csv(tmp_path / "a" / "summary.csv").set_index("metric").loc["eps_n"]
    assert abs(row["mean"] - expected.mean) <= 1e-9
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_round_indexed_policy_files_round_trip(tmp_path: Path) -> None:
    s = setting(spec_of("resource_selection_per_step", 30, 3, 4))
    cls = PolicyClass.of(s, "round")
    assert cls.rows == 4 and s.T == 40
    rng = np.random.default_rng(0)
    zero = cls.zeros()
    policy = cls.policy(Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape)))
    write_policy(policy, tmp_path)
    back = load_policy(tmp_path, 3, 3, s.T, alpha=s.alpha)
    mu = rng.dirichlet(np.ones(3), size=5)
    for t in (0, 9, 10, 39):
        np.testing.assert_array_equal(back.probs(mu, t), policy.probs(mu, t))
    np.testing.assert_array_equal(on_flow(s, back), on_flow(s, policy))


def test_policy_class_gradient_is_finite_differences_and_files_read_back(tmp_path: Path) -> None:
    """PopulationPolicy owns the logits, log-probabilities and the chain rule: the gradient of
    log pi(a | o, mu_hat) at step t (log_prob_gradient), and the chain rule of a logit gradient
    g (gradient: d/d params of sum g * z along mu), equal central finite differences; the
    written files read back to the same probabilities."""
    s = setting(spec_of("queueing", 30, 3, 2))
    cls = PolicyClass.of(s, "round")
    rng = np.random.default_rng(4)
    zero = cls.zeros()
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    policy = cls.policy(params)
    mu_hat, t, o, a = rng.dirichlet(np.ones(4)), 13, 2, 1
    d_theta, d_W = policy.log_prob_gradient(a, o, mu_hat, t)
    mu = rng.dirichlet(np.ones(4), size=(3, s.T + 1))
    g = rng.normal(size=(3, s.T, 4, 4))
    c_theta, c_W = policy.gradient(g, mu)
    h = 1e-6
    for which, grads in (("theta", (d_theta, c_theta)), ("W", (d_W, c_W))):
        base = getattr(params, which)
        for index in np.ndindex(base.shape):
            up, down = base.copy(), base.copy()
            up[index] += h
            down[index] -= h
            moved = [cls.policy(Params(**{**vars(params), which: x})) for x in (up, down)]
            fd_log = (np.log(moved[0].probs(mu_hat, t)[o, a])
                      - np.log(moved[1].probs(mu_hat, t)[o, a])) / (2 * h)
            fd_chain = ((g * moved[0].logits_along(mu)).sum()
                        - (g * moved[1].logits_along(mu)).sum()) / (2 * h)
            assert abs(grads[0][index] - fd_log) <= 1e-7
            assert abs(grads[1][index] - fd_chain) <= 1e-6 * max(1.0, abs(fd_chain))
    np.testing.assert_allclose(policy.log_probs_along(mu), np.log(policy.probs_along(mu)),
                               rtol=0, atol=1e-12)
    write_policy(policy, tmp_path)
    back = load_policy(tmp_path, 4, 4, s.T, alpha=s.alpha)
    np.testing.assert_array_equal(back.probs(mu_hat, t), policy.probs(mu_hat, t))


def test_policy_class_at_points_of_several_steps_is_its_per_step_probs() -> None:
    """probs_at (the kernels of bound-check's fluctuation theory) is probs at each point's
    step, for a round-indexed policy (k(t) != t)."""
    s = setting(spec_of("queueing", 30, 3, 2))
    cls = PolicyClass.of(s, "round")
    rng = np.random.default_rng(5)
    zero = cls.zeros()
    policy = cls.policy(Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape)))
    steps = np.array([0, 7, 13, s.T - 1])
    mu = rng.dirichlet(np.ones(4), size=(4, 5))                           # (n, P, O)
    at = policy.probs_at(mu, steps)
    for i, t in enumerate(steps):
        np.testing.assert_allclose(at[i], policy.probs(mu[i], int(t)), rtol=0, atol=1e-15)


def test_train_honours_simulate_epsilon_false(tmp_path: Path) -> None:
    """simulate.epsilon: false skips the N-agent epsilon in train as in simulate: no eps_n
    row, epsilon: null in the manifest, and the other tables the same bytes."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    tables = {}
    for flag in ("true", "false"):
        out = tmp_path / flag
        result = invoke("train", str(path), "--set", f"simulate.epsilon={flag}", "--out",
                        str(out))
        assert result.exit_code == 0, result.output
        summary = pd.read_csv(out / "summary.csv")
        assert ("eps_n" in set(summary["metric"])) == (flag == "true")
        manifest = yaml.safe_load((out / "manifest.yaml").read_text())
        assert (manifest["epsilon"] is None) == (flag == "false")
        iterations = pd.read_csv(out / "iterations.csv").drop(columns="elapsed_s")
        tables[flag] = (iterations.to_csv(index=False),
                        summary[summary["metric"] != "eps_n"].to_csv(index=False))
    assert tables["true"] == tables["false"]


@pytest.mark.parametrize(("game", "batch"), [("resource_selection_per_step", 1),
                                             ("queueing_per_step", 7)])
def test_fast_on_flow_equals_the_reference(game: str, batch: int) -> None:
    s = setting(spec_of(game, 20, batch, 2))
    cls = PolicyClass.of(s, "round")
    rng = np.random.default_rng(1)
    zero = cls.zeros()
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    np.testing.assert_allclose(on_flow_fast(cls, params, s), on_flow(s, cls.policy(params)),
                               rtol=0, atol=1e-14)


def followed_returns(s: Setting, policy: Any, rng: np.random.Generator) -> np.ndarray:
    """Reference: N agents followed one by one; per (t, o, a), the sum over the active agents
    at (o, a) at step t of their own return-to-go G^i_t (gamma = 1), divided by N."""
    game, T, N = s.game, s.T, int(s.agents or 0)
    O, A = game.n_obs, game.n_act
    obs = rng.choice(O, size=N, p=game.mu0)
    rewards = np.zeros((T, N))
    decisions = []
    for t in range(T):
        mu = np.bincount(obs, minlength=O) / N
        active = rng.choice(N, size=int(s.batches[t]), replace=False)  # type: ignore[index]
        o = obs[active]
        pi, P = policy.probs(mu, t), game.transition(mu, t)
        a = np.array([rng.choice(A, p=pi[k]) for k in o])
        rewards[t] = game.idle_reward(mu, t)[obs]
        rewards[t, active] = game.reward(mu, t)[o, a]
        decisions.append((t, active, o, a))
        obs = obs.copy()
        obs[active] = [rng.choice(O, p=P[k, b]) for k, b in zip(o, a, strict=True)]
    togo = np.cumsum(rewards[::-1], axis=0)[::-1]
    out = np.zeros((T, O, A))
    for t, active, o, a in decisions:
        np.add.at(out[t], (o, a), togo[t, active] / N)
    return out


def test_count_critic_equals_followed_agents_in_expectation() -> None:
    """Rao-Blackwellisation check: sum_a c_t(o,a) Q_t(o,a) e_a (the count critic's totals per
    (t, o, a)) has the expectation of the sum of the followed agents' returns-to-go over the
    active agents at (t, o, a); N = 6, B = 2, resource_selection, W != 0."""
    s = setting(specs.from_dict({"name": "t", "game": {"name": "resource_selection_per_step",
                                                       "mu0": [0.5, 0.3, 0.2]},
                                 "horizon": {"steps": 4},
                                 "population": {"agents": 6, "batch": 2}}))
    cls = PolicyClass.of(s, "step")
    rng = np.random.default_rng(5)
    zero = cls.zeros()
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    policy = cls.policy(params)
    M = 800
    counts = np.array([
        np.nan_to_num(b.c * aggregate(b).Q)[0] / 6
        for b in (sample(s, lambda t, mu, prev: policy.probs(mu, t), 1, child(11, i))
                  for i in range(M))])
    agents = np.array([followed_returns(s, policy, np.random.default_rng(i)) for i in range(M)])
    diff = counts.mean(axis=0) - agents.mean(axis=0)
    se = np.sqrt(counts.var(axis=0, ddof=1) / M + agents.var(axis=0, ddof=1) / M)
    assert np.abs(agents.mean(axis=0)).max() > 0.1
    assert np.all(np.abs(diff) <= 4.5 * se + 1e-12)


@pytest.mark.parametrize(("game", "batch"), [("resource_selection_per_step", 1),
                                             ("queueing_per_step", 1), ("queueing_per_step", 4)])
def test_rollouts_have_the_law_of_the_simulator(game: str, batch: int) -> None:
    """Learning rollouts (sequential path at B = 1, general otherwise) against
    ``simulation.counts.simulate``: mean of mu_hat_T and of the return within 4.5 standard
    errors, 400 replicas each, a population-aware policy."""
    from tmfcli.simulation.counts import simulate

    s = setting(specs.from_dict({"name": "t", "game": {"name": game},
                                 "horizon": {"steps": 30},
                                 "population": {"agents": 10, "batch": batch}}))
    cls = PolicyClass.of(s, "step")
    rng = np.random.default_rng(2)
    zero = cls.zeros()
    policy = cls.policy(Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape)))
    ours = sample(s, lambda t, mu, prev: policy.probs(mu, t), 400, child(4, 0))
    ref = simulate(s, policy, 400, 9)
    for x, y in ((ours.mu_hat[:, -1], ref.mu_hat[:, -1]), (ours.returns, ref.returns)):
        se = np.sqrt(x.var(axis=0, ddof=1) / 400 + y.var(axis=0, ddof=1) / 400)
        assert np.all(np.abs(x.mean(axis=0) - y.mean(axis=0)) <= 4.5 * se + 1e-12)
    assert ours.decisions == 400 * 30 * batch
