"""Invariants over every registered game: shapes, stochastic kernels, mass conservation."""

from __future__ import annotations

import numpy as np
import pytest

from tmfcli.model.flow import mean_field_flow
from tmfcli.model.games import GAMES, make_game
from tmfcli.model.params import fields_of

from .conftest import make_setting, random_policy

ALL = sorted(GAMES)


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_stochastic_kernels_on_batched_mu(name: str, rng: np.random.Generator) -> None:
    game = make_game(name)
    O, A = game.n_obs, game.n_act
    mu = rng.dirichlet(np.ones(O), size=(4, 3))
    mu[0, 0] = np.eye(O)[0]  # a vertex of the simplex too
    P, P0 = game.transition(mu, 0), game.idle_transition(mu, 0)
    r, r0 = game.reward(mu, 0), game.idle_reward(mu, 0)
    assert P.shape == (4, 3, O, A, O) and P0.shape == (4, 3, O, O)
    assert r.shape == (4, 3, O, A) and r0.shape == (4, 3, O)
    assert P.min() >= 0 and P0.min() >= 0
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(P0.sum(-1), 1.0, atol=1e-12)
    assert np.all(np.isfinite(r)) and np.all(np.isfinite(r0))
    # batching is elementwise: the batched result equals the per-mu result
    np.testing.assert_allclose(P[2, 1], game.transition(mu[2, 1], 0))
    np.testing.assert_allclose(r[2, 1], game.reward(mu[2, 1], 0))
    np.testing.assert_allclose(r0[3, 2], game.idle_reward(mu[3, 2], 0))
    assert game.mu0.shape == (O,) and abs(game.mu0.sum() - 1) < 1e-12
    assert len(game.obs_labels) == O and len(game.act_labels) == A


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_flow_conserves_mass(name: str, alpha: float, rng: np.random.Generator) -> None:
    s = make_setting(name, alpha, steps=12)
    mu = mean_field_flow(s, random_policy(rng, s)).mu
    np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
    assert mu.min() >= 0


@pytest.mark.parametrize("name", ALL)
def test_declared_static_dynamics_and_idle_identity_hold(name: str,
                                                         rng: np.random.Generator) -> None:
    game = make_game(name)
    mu = rng.dirichlet(np.ones(game.n_obs), size=8)
    P, P0 = game.transition(mu, 0), game.idle_transition(mu, 0)
    if game.static_dynamics:
        assert np.ptp(P, axis=0).max() == 0 and np.ptp(P0, axis=0).max() == 0
    if game.idle_stays:
        np.testing.assert_array_equal(P0, np.broadcast_to(np.eye(game.n_obs), P0.shape))


@pytest.mark.parametrize("name", ALL)
def test_analytic_lipschitz_constants_bound_sampled_ratios(name: str,
                                                           rng: np.random.Generator) -> None:
    game = make_game(name)
    lip = game.lipschitz()
    assert lip is not None, "every shipped game declares analytic constants"
    mu = rng.dirichlet(np.ones(game.n_obs) * 0.5, size=400)
    nu = rng.dirichlet(np.ones(game.n_obs) * 0.5, size=400)
    dist = np.abs(mu - nu).sum(-1)
    dP = np.abs(game.transition(mu, 0) - game.transition(nu, 0)).sum(-1).max(axis=(-1, -2))
    dP0 = np.abs(game.idle_transition(mu, 0) - game.idle_transition(nu, 0)).sum(-1).max(-1)
    assert np.all(dP <= lip.L_P * dist + 1e-12)
    assert np.all(dP0 <= lip.L_0 * dist + 1e-12)


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_is_documented(name: str) -> None:
    for f in fields_of(GAMES[name]):
        assert f.metadata["doc"], f"{name}.{f.name} has no doc"


def test_left_right_and_queueing_kernels_by_hand() -> None:
    lr = make_game("left_right")
    P = lr.transition(lr.mu0, 0)
    assert P[0, 0, 1] == 1 and P[2, 0, 1] == 1 and P[1, 1, 2] == 1
    q = make_game("queueing_per_step", {"K": 2, "s": [0.5, 0.25]})
    mu = np.array([0.5, 0.25, 0.25])
    P, P0 = q.transition(mu, 0), q.idle_transition(mu, 0)
    # at 0, join queue 2: moves there and is not served in this step (MODEL.md section 7)
    np.testing.assert_allclose(P[0, 2], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(P[0, 0], [1.0, 0.0, 0.0])   # stay out
    # in queue 1, stay (a = 0 or a = 1): served w.p. 0.5 / (0.5 + 0.25) = 2/3
    np.testing.assert_allclose(P[1, 0], [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(P[1, 1], [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(P[1, 2], [0.0, 0.0, 1.0])   # switch: not served
    np.testing.assert_allclose(P0[2], [0.5, 0.0, 0.5])     # idle in queue 2: 0.25 / 0.5
    np.testing.assert_allclose(P0[0], [1.0, 0.0, 0.0])     # idle agents at 0 stay
    r, r0 = q.reward(mu, 0), q.idle_reward(mu, 0)
    assert abs(r[1, 0] - (1.0 * 2 / 3 - 0.1)) < 1e-12      # wait in queue 1: R p_1 - h
    assert abs(r[1, 2] - (-0.1 - 0.05)) < 1e-12             # switch: -h - lam
    assert r[0, 0] == 0.0 and r[0, 1] == 0.0                 # stay out, join: 0
    np.testing.assert_allclose(r0, [0.0, 2 / 3 - 0.1, 0.5 - 0.1])
    # an empty queue serves a waiting agent for sure, but a joiner waits one step first
    empty = q.transition(np.array([1.0, 0.0, 0.0]), 0)
    np.testing.assert_allclose(empty[0, 1], [0.0, 1.0, 0.0])
