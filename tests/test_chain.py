"""The shared count-chain step (``tmfcli.simulation.chain``): the compiled sequential chain
draws exactly what the numpy loops it replaced drew (same counts, same bytes), it has the law
of the agent-by-agent reference (statistically, fixed seeds, z <= 4.5 as in test_simulate),
also with steps where nobody decides (B_t = 0), and the compiled learning loops (critic,
sampled and exact gradients, the policy on its flow) equal their numpy references to 1e-12."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from tests.test_simulate import assert_same_law, make, random_population, random_tabular
from tmfcli.learning.critic import aggregate, aggregate_reference
from tmfcli.learning.policy_class import Params, PolicyClass, on_flow_fast
from tmfcli.learning.rollouts import compiled_path, sample
from tmfcli.learning.tmf_pg import (
    exact_gradient,
    exact_gradient_reference,
    sampled_gradient,
    sampled_gradient_reference,
)
from tmfcli.model.exploitability import evaluate
from tmfcli.model.policy import PopulationPolicy, on_flow
from tmfcli.model.setting import Setting
from tmfcli.simulation.counts import Rollouts, simulate, simulate_agents


def with_batches(s: Setting, batches: list[int]) -> Setting:
    """The setting with a cyclic per-step schedule of batches (0 allowed: nobody decides)."""
    B = np.resize(np.asarray(batches, dtype=np.int64), s.T)
    return dataclasses.replace(s, batches=B, alpha=B / float(s.agents or 1))


def learner_policy(s: Setting, seed: int) -> PopulationPolicy:
    cls = PolicyClass.of(s, "step")
    rng = np.random.default_rng(seed)
    zero = cls.zeros()
    return cls.policy(Params(rng.normal(size=zero.theta.shape), 2 * rng.normal(size=zero.W.shape)))


def as_rollouts(batch: Any) -> Rollouts:
    return Rollouts(mu_hat=batch.mu_hat, returns=batch.returns)


# --- the same draws -----------------------------------------------------------------------------
@pytest.mark.parametrize(("game", "batches"), [
    ("resource_selection_per_step", [1]), ("queueing_per_step", [1]), ("sis", [1]),
    ("beach_bar", [1]), ("queueing_per_step", [1, 0]), ("sis", [0, 1, 1]),
])
def test_compiled_rollouts_draw_what_the_numpy_loop_draws(game: str, batches: list[int]) -> None:
    s = with_batches(make(game, 30, 1, steps=150), batches)
    policy = learner_policy(s, 1)
    assert compiled_path(s, policy, "subset")
    fast = sample(s, policy, 5, np.random.default_rng(3))
    ref = sample(s, policy, 5, np.random.default_rng(3), method="numpy")
    for key in ("n", "m", "c", "X"):
        np.testing.assert_array_equal(getattr(fast, key), getattr(ref, key))
    if ref.Y is not None:
        np.testing.assert_array_equal(fast.Y, ref.Y)
    np.testing.assert_allclose(fast.returns, ref.returns, rtol=0, atol=1e-12)
    rows = fast.c > 0  # the behaviour policy where somebody acted
    np.testing.assert_allclose(fast.pi[rows], ref.pi[rows], rtol=0, atol=1e-15)


@pytest.mark.parametrize("game", ["resource_selection_per_step", "queueing_per_step"])
def test_mf_q_rollouts_and_flow_policy_compiled_equal_the_numpy_loops(game: str) -> None:
    """mf-q's Boltzmann policy of the previous mean action, read as data by the compiled chain
    (chain.MEAN_ACTION): the same draws as the numpy loop; its policy on its own flow and its
    TD semi-gradient equal the numpy references (1e-13, 1e-11 relative)."""
    from tmfcli.learning.mf_q import MeanFieldQ

    s = setting_in_rounds(game, 30, 1)
    mfq = MeanFieldQ(PolicyClass.of(s, "round"), 0.05)
    zero = mfq.zeros()
    rng = np.random.default_rng(0)
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    behaviour = mfq.decide(params)
    assert compiled_path(s, behaviour, "subset", mean_action=True)
    fast = sample(s, behaviour, 5, np.random.default_rng(1), mean_action=True)
    ref = sample(s, behaviour, 5, np.random.default_rng(1), mean_action=True, method="numpy")
    for key in ("n", "m", "c", "X"):
        np.testing.assert_array_equal(getattr(fast, key), getattr(ref, key))
    np.testing.assert_allclose(mfq.on_flow(params, s), mfq.on_flow_reference(params, s),
                               rtol=0, atol=1e-13)
    for b in (fast, sample(s, behaviour, 3, np.random.default_rng(2), mean_action=True)):
        g = mfq.td_gradient(params, b, s.alpha)
        h = mfq.td_gradient_reference(params, b, s.alpha)
        np.testing.assert_allclose(g.theta, h.theta, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(g.W, h.W, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("kind", ["tabular", "population"])
@pytest.mark.parametrize("game", ["resource_selection_per_step", "sis", "beach_bar"])
def test_compiled_simulation_is_the_numpy_loop_byte_for_byte(game: str, kind: str) -> None:
    s = make(game, 40, 1, steps=1100)  # crosses a chunk of pre-drawn uniforms
    policy = random_tabular(s, 2) if kind == "tabular" else random_population(s, 2)
    fast = simulate(s, policy, 7, seed=4)
    ref = simulate(s, policy, 7, seed=4, method="numpy")
    np.testing.assert_array_equal(fast.mu_hat, ref.mu_hat)
    np.testing.assert_array_equal(fast.returns, ref.returns)


# --- the law ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("game", "mu0", "N", "batches", "activation"), [
    ("resource_selection_per_step", [0.5, 0.3, 0.2], 20, [1], "subset"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 20, [1], "subset"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 20, [1, 0], "subset"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 20, [1], "bernoulli"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 30, [7], "subset"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 30, [7, 0], "bernoulli"),
    ("queueing_per_step", [0.4, 0.3, 0.2, 0.1], 30, [30], "subset"),
    ("sis", None, 25, [0, 1], "subset"),
    ("sis", None, 25, [25], "bernoulli"),
])
def test_learning_rollouts_have_the_law_of_the_agent_by_agent_reference(
        game: str, mu0: list[float] | None, N: int, batches: list[int],
        activation: str) -> None:
    """The rollouts of ``tmf train`` (compiled at B_t <= 1 with subset activation, numpy
    ``chain.step`` otherwise) against ``simulate_agents``: mean, variance and covariances of
    mu_hat_t and the mean return, 2000 against 600 replicas, a population-aware policy."""
    s = with_batches(make(game, N, 1, steps=6, mu0=mu0), batches)
    policy = learner_policy(s, 5)
    ours = sample(s, policy, 2000, np.random.default_rng(11), activation=activation)
    agents = simulate_agents(s, policy, 600, seed=12, activation=activation)
    assert_same_law(as_rollouts(ours), agents, times=[1, 3, 6])


def test_a_step_where_nobody_decides_moves_everyone_by_p0() -> None:
    """B_t = 0: no decisions are recorded, the critic gives them no advantage, and the idle
    agents still move (queueing serves them) and earn r0."""
    s = with_batches(make("queueing_per_step", 50, 1, steps=40, mu0=[0.2, 0.4, 0.2, 0.2]), [1, 0])
    policy = learner_policy(s, 3)
    for method in ("auto", "numpy"):
        batch = sample(s, policy, 4, np.random.default_rng(0), method=method)
        assert batch.m[:, 1::2].sum() == 0 and batch.c[:, 1::2].sum() == 0
        assert batch.m[:, 0::2].sum() == 4 * 20
        assert batch.Y is not None and batch.Y[:, 1::2, 1:, 0].sum() > 0  # served while idle
        np.testing.assert_array_equal(batch.n[:, 1:].sum(axis=-1), 50)
        critic = aggregate(batch, np.zeros(s.T, dtype=np.int64))
        assert np.all(critic.advantage[:, 1::2] == 0)
        assert np.all(np.isnan(critic.Q[:, 1::2]))


# --- the compiled learning loops against their references ----------------------------------------
@pytest.mark.parametrize(("game", "batch", "entropy"), [
    ("queueing_per_step", 1, 0.0), ("resource_selection_per_step", 1, 0.1), ("sis", 3, 0.0),
    ("beach_bar", "all", 0.2),
])
def test_compiled_critic_and_gradients_equal_the_numpy_references(game: str, batch: Any,
                                                                 entropy: float) -> None:
    s = setting_in_rounds(game, 12, batch)
    cls = PolicyClass.of(s, "round")
    rng = np.random.default_rng(1)
    zero = cls.zeros()
    params = Params(rng.normal(size=zero.theta.shape), rng.normal(size=zero.W.shape))
    b = sample(s, cls.policy(params), 5, np.random.default_rng(2))
    fast, ref = aggregate(b, cls.index), aggregate_reference(b, cls.index)
    np.testing.assert_allclose(fast.Q, ref.Q, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast.S, ref.S, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast.advantage, ref.advantage, rtol=1e-12, atol=1e-12)
    moved = Params(params.theta + 0.1, params.W - 0.1)  # an inner step: ratios != 1
    for p in (params, moved):
        g, h = (sampled_gradient(cls, p, b, fast, entropy),
                sampled_gradient_reference(cls, p, b, fast, entropy))
        np.testing.assert_allclose(g.theta, h.theta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(g.W, h.W, rtol=0, atol=1e-12)
    flow = evaluate(s, on_flow(s, cls.policy(params))).flow
    g, h = (exact_gradient(cls, params, s, flow, entropy),
            exact_gradient_reference(cls, params, s, flow, entropy))
    np.testing.assert_allclose(g.theta, h.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.W, h.W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(on_flow_fast(cls, params, s), on_flow(s, cls.policy(params)),
                               rtol=0, atol=1e-13)


def setting_in_rounds(game: str, N: int, batch: Any) -> Setting:
    from tmfcli.io import spec as specs
    from tmfcli.io.resolve import setting

    return setting(specs.from_dict({"name": "t", "game": {"name": game},
                                    "horizon": {"rounds": 2},
                                    "population": {"agents": N, "batch": batch}}))


@pytest.mark.parametrize(("row", "ok"), [
    ([0.25, 0.75], True), ([1.0, 1e-10], True), ([1.3, -0.3], False), ([0.5, 0.4], False),
    ([np.nan, 1.0], False), ([np.inf, 0.0], False), ([np.inf, -np.inf], False),
    ([1.0 + 2e-9, 0.0], False), ([-2e-9, 1.0 + 2e-9], False),
])
def test_rows_ok_is_the_check_of_check_table(row: list[float], ok: bool) -> None:
    """The compiled loop's kernel check accepts what ``checks.check_table`` accepts: rows of
    finite entries >= -1e-9 summing to 1 within 1e-9 (each row here beside a good one)."""
    from tmfcli.simulation.chain import rows_ok

    P = np.array([0.5, 0.5, *row])
    assert rows_ok(P, 2) is ok
    assert rows_ok(np.array([*row, 0.5, 0.5]), 2) is ok
