"""Timed games (MODEL.md section 9): the two-stage step, its closed forms, and the paper games.

Every expected value here comes from a closed form or an independent computation (a fine time
grid, a per-step game built by hand), never from the code under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.linalg
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.errors import SpecError
from tmfcli.io import resolve
from tmfcli.io import spec as specs
from tmfcli.model.exploitability import evaluate
from tmfcli.model.games.base import Array, static
from tmfcli.model.games.project import Queueing, ResourceSelectionPerStep
from tmfcli.model.games.timed import TimedGame, discounted_time, stage
from tmfcli.model.policy import TabularPolicy
from tmfcli.model.setting import Setting
from tmfcli.model.values import backward
from tmfcli.simulation.counts import gaps, simulate
from tmfcli.solvers import ALGORITHMS, run


def setting_of(game: dict[str, Any], **extra: Any) -> Any:
    return resolve.setting(specs.from_dict({"name": "t", "game": game, **extra}))


# --------------------------------------------------------------------------------------------
# test games
# --------------------------------------------------------------------------------------------
class DecisionsOnly(ResourceSelectionPerStep):
    """The per-step resource selection with r0 = 0: P = D, r = c, P0 = identity, r0 = 0."""

    name = "decisions_only"

    def idle_reward(self, mu: Array, t: int) -> Array:
        return np.zeros(mu.shape)


@dataclass(frozen=True)
class TimedDecisionsOnly(TimedGame):
    """The same decisions as a timed game with G = 0 and f = 0."""

    name = "timed_decisions_only"
    time_moves = False
    static_decisions = True
    period = 2

    def build(self) -> None:
        inner = DecisionsOnly()
        self._set(n_obs=inner.n_obs, n_act=inner.n_act, mu0=inner.mu0,
                  obs_labels=inner.obs_labels, act_labels=inner.act_labels)

    def decision(self, mu: Array, t: int) -> Array:
        return DecisionsOnly().transition(mu, t)

    def decision_reward(self, mu: Array, t: int) -> Array:
        return DecisionsOnly().reward(mu, t)

    def generator(self, mu: Array) -> Array:
        return np.zeros((*mu.shape, mu.shape[-1]))

    def flow_reward(self, mu: Array) -> Array:
        return np.zeros(mu.shape)


RATES = np.array([[-0.7, 0.5, 0.2], [0.3, -0.3, 0.0], [0.1, 0.4, -0.5]])


@dataclass(frozen=True)
class Clockwork(TimedGame):
    """Three states with constant rates and a constant flow reward; 'stay' or 'go to 0'."""

    name = "clockwork"
    static_decisions = True
    period = 2

    def build(self) -> None:
        D = np.zeros((3, 2, 3))
        D[:, 0] = np.eye(3)
        D[:, 1, 0] = 1.0
        self._set(n_obs=3, n_act=2, mu0=np.array([0.2, 0.5, 0.3]), _D=D)

    def decision(self, mu: Array, t: int) -> Array:
        return static(self._D, mu)  # type: ignore[attr-defined]

    def decision_reward(self, mu: Array, t: int) -> Array:
        return static(np.array([[0.0, -0.1]] * 3), mu)

    def generator(self, mu: Array) -> Array:
        return static(RATES, mu)

    def flow_reward(self, mu: Array) -> Array:
        return static(np.array([1.0, -0.5, 0.25]), mu)


def decisions_only() -> TimedDecisionsOnly:
    return TimedDecisionsOnly()


def clockwork() -> Clockwork:
    return Clockwork()


# --------------------------------------------------------------------------------------------
# the two-stage step
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_no_time_is_the_per_step_game_of_the_decisions(alpha: float, gamma: float) -> None:
    """G = 0 and f = 0: the timed game is the per-step game P = D, r = c, P0 = I, r0 = 0."""
    T = 7
    timed = setting_of({"module": "tests.test_timed", "factory": "decisions_only"},
                       horizon={"steps": T}, population={"alpha": alpha}, discount=gamma)
    plain = Setting(game=DecisionsOnly(), alpha=np.full(T, alpha), gamma=gamma)
    assert timed.T == 2 * T
    rng = np.random.default_rng(3)
    pi = rng.dirichlet(np.ones(3), size=(T, 3))
    pi2 = rng.dirichlet(np.ones(3), size=(2 * T, 3))  # time-stage rows: never used
    pi2[0::2] = pi
    a, b = evaluate(timed, pi2), evaluate(plain, pi)
    np.testing.assert_allclose(a.flow.mu[0::2], b.flow.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.own.V[0::2], b.own.V, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.best.V[0::2], b.best.V, rtol=0, atol=1e-12)
    assert a.J == pytest.approx(b.J, abs=1e-12)
    assert a.exploitability == pytest.approx(b.exploitability, abs=1e-12)


def test_stage_of_a_two_state_chain_is_the_closed_form() -> None:
    """0 -> 1 at rate g, 1 absorbing; f = (f0, f1): E = [[e^-gdt, 1-e^-gdt], [0, 1]] and
    F(0) = f0 int e^-(g+l)s ds + f1 int (e^-ls - e^-(g+l)s) ds, F(1) = f1 int e^-ls ds."""
    g, dt, f0, f1 = 0.8, 0.37, 2.0, -0.5
    G = np.array([[-g, g], [0.0, 0.0]])
    for gamma in (1.0, 0.7):
        l = -math.log(gamma)

        def integral(rate: float) -> float:
            return dt if rate == 0 else (1 - math.exp(-rate * dt)) / rate

        E, F = stage(G, np.array([f0, f1]), dt, gamma)
        np.testing.assert_allclose(E, np.array([[math.exp(-g * dt), 1 - math.exp(-g * dt)],
                                                [0.0, 1.0]]), rtol=0, atol=1e-14)
        np.testing.assert_allclose(F, [f0 * integral(g + l) + f1 * (integral(l) - integral(g + l)),
                                       f1 * integral(l)], rtol=1e-13, atol=1e-14)
        assert discounted_time(dt, gamma) == pytest.approx(integral(l), rel=1e-14)


@pytest.mark.parametrize("gamma", [1.0, 0.8])
def test_queueing_stage_matches_van_loan_and_a_fine_time_grid(gamma: float) -> None:
    """Queueing's closed-form stage against the generic block exponential, and both against
    a fine-grid integration of dE/ds = E G, dF/ds = gamma^s E f (midpoint rule, 20000 steps)."""
    q = Queueing().at(0.6, gamma)
    mu = np.array([[0.1, 0.5, 0.3, 0.1], [0.7, 0.0, 0.1, 0.2]])
    E, F = q.time_stage(mu)
    E2, F2 = stage(q.generator(mu), q.flow_reward(mu), q.dt, gamma)
    np.testing.assert_allclose(E, E2, rtol=0, atol=1e-13)
    np.testing.assert_allclose(F, F2, rtol=0, atol=1e-13)
    n = 20000
    h = q.dt / n
    for k in range(mu.shape[0]):
        G, f = q.generator(mu[k]), q.flow_reward(mu[k])
        step = scipy.linalg.expm(h * G)
        half = scipy.linalg.expm(h / 2 * G)
        acc, Es = np.zeros(4), np.eye(4)
        for i in range(n):
            acc += h * gamma ** ((i + 0.5) * h) * (Es @ half) @ f
            Es = Es @ step
        np.testing.assert_allclose(Es, E[k], rtol=0, atol=1e-10)
        np.testing.assert_allclose(acc, F[k], rtol=0, atol=1e-8)


@pytest.mark.parametrize("batch", [1, 10, 100])
def test_time_per_round_is_the_same_at_every_b(batch: int) -> None:
    """G and f independent of mu, a policy that never moves: after one round the distribution
    is mu0 expm(G) at every B (each round holds N / B stages of B / N rounds)."""
    s = setting_of({"module": "tests.test_timed", "factory": "clockwork"},
                   horizon={"rounds": 1}, population={"agents": 100, "batch": batch})
    pi = np.zeros((s.T, 3, 2))
    pi[..., 0] = 1.0  # always stay
    mu = evaluate(s, pi).flow.mu
    np.testing.assert_allclose(mu[-1], Clockwork().mu0 @ scipy.linalg.expm(RATES),
                               rtol=0, atol=1e-12)
    # and the return of one round is int_0^1 mu0 expm(sG) f ds, whatever B is
    flow = evaluate(s, pi)
    J = float(flow.flow.mu[0] @ backward(flow.flow, s.gamma, pi).V[0])
    _, F = stage(RATES, np.array([1.0, -0.5, 0.25]), 1.0, 1.0)
    assert J == pytest.approx(float(Clockwork().mu0 @ F), abs=1e-12)


def test_time_stages_of_the_n_agent_chain_agree_with_the_mean_field() -> None:
    """The exact chain of clockwork (nobody ever moves by decision): its mean after one round
    is mu0 expm(G) within 4.5 standard errors (2000 replicas, 100 agents)."""
    s = setting_of({"module": "tests.test_timed", "factory": "clockwork"},
                   horizon={"rounds": 1}, population={"agents": 100, "batch": 10})
    pi = np.zeros((s.T, 3, 2))
    pi[..., 0] = 1.0
    run_ = simulate(s, TabularPolicy(pi), 2000, seed=5)
    last = run_.mu_hat[:, -1]
    expected = Clockwork().mu0 @ scipy.linalg.expm(RATES)
    se = last.std(axis=0, ddof=1) / math.sqrt(last.shape[0])
    assert np.all(np.abs(last.mean(axis=0) - expected) <= 4.5 * se)


# --------------------------------------------------------------------------------------------
# the paper games as timed games
# --------------------------------------------------------------------------------------------
def queue_setting(batch: Any, agents: int = 100, rounds: int = 10) -> Any:
    return setting_of({"name": "queueing"}, horizon={"rounds": rounds},
                      population={"agents": agents, "batch": batch})


@pytest.mark.parametrize("batch", [1, 10, "all"])
def test_queueing_equilibrium_keeps_mass_in_the_queues(batch: Any) -> None:
    s = queue_setting(batch, agents=50)
    result = run(s, ALGORITHMS["mirror-descent"](), 3000, 1e-6)
    assert result.converged, result.stop_reason
    mu = result.evaluation.flow.mu
    decisions = mu[0::2]
    # queues are used at equilibrium: at least 10% of the mass waits in mid-horizon
    assert decisions[len(decisions) // 2, 1:].sum() > 0.1
    # joiners of an empty queue are not all served within a round: queue 1 holds mass a
    # whole round after its first joiners arrived
    steps_per_round = (s.T // 2) // 10  # 10 rounds
    first = int(np.argmax(decisions[:, 1] > 1e-6))
    assert decisions[first + steps_per_round, 1] > 1e-3


def test_always_join_queue_one_is_not_an_equilibrium() -> None:
    s = queue_setting(10)
    pi = np.zeros((s.T, s.game.n_obs, s.game.n_act))
    pi[:, :, 1] = 1.0
    ev = evaluate(s, pi)
    assert ev.flow.mu[s.T // 2:, 1].min() > 0.5  # the crowd waits in queue 1 ...
    assert ev.exploitability > 0.1        # ... and another queue pays more


def test_queueing_equilibrium_value_barely_depends_on_b() -> None:
    """The game no longer changes with B: J per agent over 10 rounds at B = 1 and B = N agree
    within 5% (the per-step game differed about fourfold)."""
    values = [run(queue_setting(b, agents=50), ALGORITHMS["mirror-descent"](), 3000,
                  1e-6).evaluation.J for b in (1, "all")]
    assert values[0] == pytest.approx(values[1], rel=0.05), values


def test_queueing_n_agent_gap_is_positive_and_shrinks_with_n() -> None:
    e = []
    for N in (50, 800):
        s = queue_setting(max(1, N // 10), agents=N, rounds=3)
        pi = np.full((s.T, s.game.n_obs, s.game.n_act), 1.0 / s.game.n_act)
        mu_bar = evaluate(s, pi).flow.mu
        e_max, _ = gaps(simulate(s, TabularPolicy(pi), 200, seed=1), mu_bar)
        e.append(float(e_max.mean()))
    assert e[0] > 0.02 and e[1] > 0
    # O(1/sqrt N): 16 times the agents, about a quarter of the gap (allow 0.15 .. 0.45)
    assert 0.15 < e[1] / e[0] < 0.45, e


def test_resource_selection_potential_solve_is_the_wardrop_split() -> None:
    """lam = 0: the split equalises c_o - kappa mu(o): 1 - m0 = 0.8 - m1 = 0.6 - m2, so
    m = (8, 5, 2) / 15, reached within the first round and held mid-horizon."""
    s = setting_of({"name": "resource_selection", "params": {"lam": 0.0}},
                   horizon={"rounds": 10}, population={"agents": 1000, "batch": 100})
    result = run(s, ALGORITHMS["potential"](), 200, 1e-9)
    assert result.converged, result.stop_reason
    mid = result.evaluation.flow.mu[s.T // 2]
    np.testing.assert_allclose(mid, np.array([8, 5, 2]) / 15, atol=1e-3)


def test_per_round_is_refused_with_the_reason(tmp_path: Any) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ngame: {name: resource_selection}\nhorizon: {rounds: 2}\n"
                    "population: {agents: 10, batch: 1}\ntrain: {per_round: true}\n")
    result = CliRunner().invoke(app, ["train", str(spec)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {spec}:train.per_round: ")
    assert "timed" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------
# timed games as data
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.3])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_yaml_timed_queueing_is_the_shipped_one(alpha: float, gamma: float) -> None:
    """experiments/games/queueing.yaml (rates, block exponential) against the shipped timed
    queueing (closed-form stage): flows, values and exploitability to 1e-12."""
    common = {"horizon": {"steps": 8}, "population": {"alpha": alpha}, "discount": gamma}
    a = setting_of({"file": "experiments/games/queueing.yaml"}, **common)
    b = setting_of({"name": "queueing"}, **common)
    pi = np.random.default_rng(1).dirichlet(np.ones(4), size=(a.T, 4))
    ea, eb = evaluate(a, pi), evaluate(b, pi)
    np.testing.assert_allclose(ea.flow.mu, eb.flow.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ea.own.V, eb.own.V, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ea.best.V, eb.best.V, rtol=0, atol=1e-12)
    assert ea.exploitability == pytest.approx(eb.exploitability, abs=1e-12)


TINY = {"name": "tiny", "observations": ["a", "b"], "actions": ["stay", "go"], "mu0": "a",
        "decision": {"D": {"a": {"stay": "a", "go": "b"}, "b": {"stay": "b", "go": "a"}},
                     "c": {"*": 0}},
        "time": {"G": {"b": {"a": 1.0}}, "f": {"a": 0, "b": 1}}}


def tiny(**changes: Any) -> dict[str, Any]:
    game = {**TINY, **changes}
    return {"name": "t", "game": {"define": game}, "horizon": {"steps": 3}}


@pytest.mark.parametrize(("change", "message"), [
    ({"time": {"G": {"b": {"a": "0.5 - mu[o]"}}}},
     "game.define.time.G.b.a: is a negative rate -0.5 at mu = (b: 1) — keep every rate off "
     "the diagonal >= 0"),
    ({"time": {"G": {"b": {"b": 1.0}}}},
     "game.define.time.G.b.b: a rate from an observation to itself — leave the diagonal out"),
    ({"time": {"G": {"b": {"a": "t"}}}}, "game.define.time.G.b.a: 't' uses t — the time block "
     "cannot depend on t"),
    ({"P": {"*": "a"}}, "game.define.P: a timed game (decision:, time:) has no per-step tables"),
    ({"time": {"G": {"b": {"a": "1 / (mu[o] - 0.5)"}}}}, "game.define.time.G.b.a: "),
])
def test_a_bad_timed_game_file_is_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        specs.from_dict(tiny(**change))
    assert message in caught.value.message(), caught.value.message()


def test_a_timed_yaml_game_validates_and_solves(tmp_path: Any) -> None:
    import yaml

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny()))
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    s = resolve.setting(specs.from_dict(tiny()))
    assert s.T == 6 and s.game.idle_stays is False
    E, F = s.game.time_stage(np.array([[0.5, 0.5]]))  # type: ignore[attr-defined]  # timed
    np.testing.assert_allclose(E[0], np.array([[1.0, 0.0], [1 - math.exp(-1), math.exp(-1)]]),
                               atol=1e-14)
    np.testing.assert_allclose(F[0], [0, 1 - math.exp(-1)], atol=1e-14)


def test_retiming_reads_decisions_from_decision_rows() -> None:
    """A synchronous policy of H = 3 decision steps (6 per-step rows) read in a setting of 12
    decision steps (24 rows): decision step d uses decision row 2 floor(d / 4), time stages the
    time row beside it."""
    from tmfcli.commands.policy_choice import policy_steps

    steps = policy_steps(24, 6, stages=2)
    assert steps[0::2].tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4]
    assert steps[1::2].tolist() == [1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5]
    assert policy_steps(6, 4).tolist() == [0, 0, 1, 2, 2, 3]  # one stage: as before


# --------------------------------------------------------------------------------------------
# defects the probes miss are caught where the engine meets them
# --------------------------------------------------------------------------------------------
HIDDEN = {"name": "hidden", "observations": ["a", "b"], "actions": ["stay", "go"], "mu0": "a",
          # the row of (a, go) sums to 1.4 only where mu(b) is within 0.01 of 0.05: the quick
          # check every command runs has no probe there, the flow of "go w.p. 0.05" lands there
          "P": {"a": {"stay": "a", "go": {"b": "1 + where(abs(mu[b] - 0.05) < 0.01, 0.4, 0)"}},
                "b": "b"},
          "r": {"*": 0}}


def test_a_kernel_defect_between_the_probes_stops_the_flow_with_the_entry() -> None:
    s = resolve.setting(specs.from_dict({"name": "h", "game": {"define": HIDDEN},
                                       "horizon": {"steps": 3}}))
    pi = np.zeros((3, 2, 2))
    pi[:, :, 0], pi[:, :, 1] = 0.95, 0.05  # mu(b) = 0.05 after one step
    with pytest.raises(SpecError) as caught:
        evaluate(s, pi)
    message = caught.value.message()
    assert message.startswith("game.define.P.a.go: row sums to 1.4, not 1, at step 1, "
                              "mu = (a: 0.95, b: 0.05)"), message


def test_a_reward_defect_between_the_probes_is_named_not_a_warning() -> None:
    game = {**HIDDEN, "P": {"a": {"stay": "a", "go": "b"}, "b": "b"},
            "r": {"*": "log(abs(mu[b] - 0.05))"}}  # -inf exactly at mu(b) = 0.05
    s = resolve.setting(specs.from_dict({"name": "h", "game": {"define": game},
                                       "horizon": {"steps": 3}}))
    pi = np.zeros((3, 2, 2))
    pi[:, :, 0], pi[:, :, 1] = 0.95, 0.05
    with pytest.raises(SpecError) as caught:
        evaluate(s, pi)
    assert "is not finite at step 1, mu = (a: 0.95, b: 0.05)" in caught.value.message()


def test_the_n_agent_chain_stops_at_a_hidden_defect_with_the_entry() -> None:
    """The simulator (no mean-field flow computed) meets the defect itself: 20 agents who each
    go w.p. 0.05; in about 38% of the replicas exactly one goes, so mu_hat(b) = 0.05 at step 1."""
    from tmfcli.simulation.counts import simulate

    s = resolve.setting(specs.from_dict({"name": "h", "game": {"define": HIDDEN},
                                       "horizon": {"steps": 2},
                                       "population": {"agents": 20, "batch": 20}}))
    pi = np.zeros((2, 2, 2))
    pi[:, :, 0], pi[:, :, 1] = 0.95, 0.05
    with pytest.raises(SpecError) as caught:
        simulate(s, TabularPolicy(pi), 50, seed=0, method="general")
    assert caught.value.message().startswith(
        "game.define.P.a.go: row sums to 1.4, not 1, at step 1, mu = (a: 0.95, b: 0.05)")


@pytest.mark.parametrize(("data", "message"), [
    ({"game": {"name": "sis"}, "horizon": {"steps": 5}, "clock": {"dt": 0.25}},
     "clock.dt: sis is not a timed game: its steps have no duration — remove clock.dt"),
    ({"game": {"name": "queueing"}, "horizon": {"rounds": 5}, "clock": {"dt": 0.25}},
     "clock.dt: a horizon in rounds sets the duration of a step (B / N rounds) — remove "
     "clock.dt, or give the horizon in steps"),
    ({"game": {"name": "queueing"}, "horizon": {"steps": 5}, "clock": {"dt": -1}},
     "clock.dt: -1 is out of range — use a number > 0"),
])
def test_clock_dt_is_refused_where_it_means_nothing(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        specs.from_dict({"name": "c", **data})
    assert message in caught.value.message(), caught.value.message()


def test_clock_dt_sets_the_stage_of_a_timed_game_in_steps() -> None:
    """A step of dt = 0.25 rounds: an agent in queue 1 alone (mu(q1) = 0) is served at rate
    s_1 / s_1 = 1 per round, so it is still queued after the stage w.p. exp(-0.25)."""
    s = setting_of({"name": "queueing"}, horizon={"steps": 3}, clock={"dt": 0.25})
    E = s.game.idle_transition(np.array([[1.0, 0.0, 0.0, 0.0]]), 1)[0]
    assert E[1, 1] == pytest.approx(math.exp(-0.25), abs=1e-15)
