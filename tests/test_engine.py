"""Engine: vectorised flow and backward pass against plain loops; closed forms; identities."""

from __future__ import annotations

import numpy as np
import pytest

from tmfcli.model.exploitability import evaluate
from tmfcli.model.flow import Flow, frozen_model, mean_field_flow, step
from tmfcli.model.games import GAMES
from tmfcli.model.values import backward, softmax

from .conftest import make_setting, random_policy
from .reference import flow_loop, values_loop


@pytest.mark.parametrize("name", sorted(GAMES))
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_vectorised_engine_matches_plain_loops(name: str, alpha: float,
                                               rng: np.random.Generator) -> None:
    s = make_setting(name, alpha, steps=6, discount=0.9)
    pi = random_policy(rng, s)
    flow = mean_field_flow(s, pi)
    np.testing.assert_allclose(flow.mu, flow_loop(s, pi), atol=1e-12)
    np.testing.assert_allclose(backward(flow, s.gamma, pi).V, values_loop(s, flow.mu, pi),
                               atol=1e-10)
    np.testing.assert_allclose(backward(flow, s.gamma).V, values_loop(s, flow.mu, None),
                               atol=1e-10)


def test_left_right_closed_forms() -> None:
    s = make_setting("left_right")
    left = np.zeros((2, 3, 2))
    left[..., 0] = 1
    right = left[..., ::-1].copy()
    assert evaluate(s, left).exploitability == pytest.approx(1.0, abs=1e-12)
    assert evaluate(s, right).exploitability == pytest.approx(2.0, abs=1e-12)
    mixed = np.broadcast_to([2 / 3, 1 / 3], (2, 3, 2)).copy()
    assert evaluate(s, mixed).exploitability == pytest.approx(0.0, abs=1e-12)


def test_left_right_closed_forms_hold_for_any_alpha() -> None:
    # a fraction alpha moves at step 0; under "always left" the left crowd is alpha. An agent
    # reaches the left w.p. alpha and is paid r = -alpha there only when active at step 1
    # (w.p. alpha; idle agents earn r0 = 0), so J = -alpha^3, while going right earns 0:
    # exploitability alpha^3. At equilibrium the split among movers is still 2/3.
    s = make_setting("left_right", alpha=0.25)
    left = np.zeros((2, 3, 2))
    left[..., 0] = 1
    assert evaluate(s, left).exploitability == pytest.approx(0.25**3, abs=1e-12)
    mixed = np.broadcast_to([2 / 3, 1 / 3], (2, 3, 2)).copy()
    assert evaluate(s, mixed).exploitability == pytest.approx(0.0, abs=1e-12)


def _representative_occupancy(flow: Flow, pi: np.ndarray) -> np.ndarray:
    """State distribution (T, O) of one agent following pi in the MDP frozen on ``flow``."""
    T = pi.shape[0]
    d = np.empty((T, pi.shape[1]))
    d[0] = flow.mu[0]
    for t in range(T - 1):
        d[t + 1] = step(d[t], pi[t], flow.P[t], flow.P0[t], float(flow.alpha[t]))
    return d


@pytest.mark.parametrize("name", ["queueing_per_step", "sis", "beach_bar"])
def test_value_of_a_mixture_is_the_mixture_of_values(name: str,
                                                     rng: np.random.Generator) -> None:
    """On a frozen flow, the occupancy-weighted mixture of two policies has value
    lam J(pi1) + (1 - lam) J(pi2): occupancy measures of an MDP mix linearly."""
    s = make_setting(name, alpha=0.6, steps=8, discount=0.95)
    flow = mean_field_flow(s, random_policy(rng, s))
    pi1, pi2, lam = random_policy(rng, s), random_policy(rng, s), 0.3
    d1, d2 = _representative_occupancy(flow, pi1), _representative_occupancy(flow, pi2)
    w1, w2 = lam * d1[..., None], (1 - lam) * d2[..., None]
    total = w1 + w2
    mix = np.where(total > 0, (w1 * pi1 + w2 * pi2) / np.where(total > 0, total, 1), pi1)
    J = {key: float(flow.mu[0] @ backward(flow, s.gamma, p).V[0])
         for key, p in (("1", pi1), ("2", pi2), ("mix", mix))}
    assert J["mix"] == pytest.approx(lam * J["1"] + (1 - lam) * J["2"], abs=1e-12)


@pytest.mark.parametrize("name", sorted(GAMES))
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_exploitability_is_never_negative(name: str, alpha: float,
                                          rng: np.random.Generator) -> None:
    s = make_setting(name, alpha, steps=10)
    for _ in range(5):
        ev = evaluate(s, random_policy(rng, s))
        assert ev.exploitability >= -1e-12
        assert ev.J_best >= ev.J - 1e-12


def test_best_response_is_optimal_among_deterministic_policies(rng: np.random.Generator) -> None:
    """Brute force on a 2-step SIS: no deterministic policy beats the backward-pass value."""
    s = make_setting("sis", alpha=0.7, steps=2)
    flow = mean_field_flow(s, random_policy(rng, s))
    best = float(flow.mu[0] @ backward(flow, s.gamma).V[0])
    values = []
    for code in range(2 ** 4):  # T * O = 4 binary decisions
        bits = [(code >> i) & 1 for i in range(4)]
        pi = np.zeros((2, 2, 2))
        for i, b in enumerate(bits):
            pi[i // 2, i % 2, b] = 1
        values.append(float(flow.mu[0] @ backward(flow, s.gamma, pi).V[0]))
    assert best == pytest.approx(max(values), abs=1e-12)


def test_entropy_regularised_values() -> None:
    """With tau > 0 the soft best response is softmax(Q/tau) and its value the soft maximum;
    the regularised exploitability of that policy on the same frozen flow is zero."""
    s = make_setting("beach_bar", alpha=0.5, steps=5, entropy=0.3)
    flow = frozen_model(s, mean_field_flow(s, np.full((5, 10, 3), 1 / 3)).mu)
    soft = backward(flow, s.gamma, None, tau=0.3)
    np.testing.assert_allclose(soft.policy, softmax(soft.Q / 0.3))
    own = backward(flow, s.gamma, soft.policy, tau=0.3)
    np.testing.assert_allclose(own.V, soft.V, atol=1e-10)
