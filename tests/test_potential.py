"""The ``potential`` solver: its linear algebra, the games' potentials, and the equilibria it
reaches against closed forms (Wardrop split, left_right's 2/3) and tight exploitability."""

from __future__ import annotations

import numpy as np
import pytest

from tmfcli.errors import SpecError
from tmfcli.model.games import make_game
from tmfcli.solvers import ALGORITHMS, run
from tmfcli.solvers.potential import block_tridiagonal_factor, block_tridiagonal_solve

from .conftest import make_setting
from .test_equilibria import wardrop


def _block_tridiagonal(rng: np.random.Generator, n: int, O: int):
    """A random symmetric positive definite block tridiagonal matrix, dense and as blocks."""
    B = rng.normal(size=(n * O, n * O))
    M = B @ B.T + n * O * np.eye(n * O)
    for i in range(n):
        for j in range(n):
            if abs(i - j) > 1:
                M[i * O:(i + 1) * O, j * O:(j + 1) * O] = 0.0
    block = lambda i, j: M[i * O:(i + 1) * O, j * O:(j + 1) * O]  # noqa: E731
    D = np.stack([block(i, i) for i in range(n)])
    L, U = np.zeros_like(D), np.zeros_like(D)
    for i in range(1, n):
        L[i] = block(i, i - 1)
        U[i - 1] = block(i - 1, i)
    return M, D, L, U


@pytest.mark.parametrize(("n", "O"), [(1, 2), (2, 3), (7, 2), (16, 3), (9, 20)])
def test_block_tridiagonal_solvers_agree_with_a_dense_solve(n: int, O: int) -> None:
    rng = np.random.default_rng(n * 100 + O)
    M, D, L, U = _block_tridiagonal(rng, n, O)
    r = rng.normal(size=(n, O))
    exact = np.linalg.solve(M, r.ravel())
    np.testing.assert_allclose(block_tridiagonal_solve(D, L, U, r).ravel(), exact, atol=1e-12)
    np.testing.assert_allclose(block_tridiagonal_factor(D, L, U)(r).ravel(), exact, atol=1e-12)


@pytest.mark.parametrize("name", ["beach_bar", "left_right", "resource_selection"])
def test_declared_potential_is_the_jacobian_of_the_rewards(name: str) -> None:
    """d r(o,a,mu) / d mu(o') = curvature(mu)(o) if o' = o else 0 (and the same for r0), by
    central differences at a random interior mu: the crowd terms are separable gradients."""
    game = make_game(name, {})
    potential = game.potential()
    assert potential is not None
    rng = np.random.default_rng(1)
    mu = rng.dirichlet(np.ones(game.n_obs))
    h = 1e-6
    for o2 in range(game.n_obs):
        e = np.zeros(game.n_obs)
        e[o2] = h
        dr = (game.reward(mu + e, 0) - game.reward(mu - e, 0)) / (2 * h)
        dr0 = (game.idle_reward(mu + e, 0) - game.idle_reward(mu - e, 0)) / (2 * h)
        expected = np.where(np.arange(game.n_obs) == o2, potential.curvature(mu), 0.0)
        expected0 = np.where(np.arange(game.n_obs) == o2, potential.idle_curvature(mu), 0.0)
        np.testing.assert_allclose(dr, np.repeat(expected[:, None], game.n_act, axis=1),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dr0, expected0, rtol=1e-5, atol=1e-6)
    assert (potential.curvature(mu) <= 0).all() and (potential.idle_curvature(mu) <= 0).all()


def test_games_without_a_potential_are_refused() -> None:
    with pytest.raises(SpecError, match="declares no potential"):
        run(make_setting("rock_paper_scissors"), ALGORITHMS["potential"](), 5, 1e-6)
    with pytest.raises(SpecError, match="unregularised"):
        run(make_setting("left_right", entropy=0.1), ALGORITHMS["potential"](), 5, 1e-6)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_potential_left_right_sends_two_thirds_left(alpha: float) -> None:
    s = make_setting("left_right", alpha)
    result = run(s, ALGORITHMS["potential"](), 40, 1e-9)
    assert result.evaluation.exploitability <= 1e-8, result.stop_reason
    mu1 = result.evaluation.flow.mu[1]
    assert mu1[1] / (mu1[1] + mu1[2]) == pytest.approx(2 / 3, abs=1e-6)


@pytest.mark.parametrize(("c", "kappa"), [((1.0, 0.8, 0.6), 1.0), ((1.0, 0.9, 0.0), 1.0)])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_potential_resource_selection_reaches_wardrop(c: tuple[float, ...], kappa: float,
                                                      alpha: float) -> None:
    T = 30
    s = make_setting("resource_selection", alpha, steps=T,
                     params={"c": list(c), "kappa": kappa, "lam": 0.0})
    result = run(s, ALGORITHMS["potential"](), 80, 1e-8)
    assert result.evaluation.exploitability <= 1e-6, result.stop_reason
    mu = result.evaluation.flow.mu
    assert np.abs(mu[T // 2: T] - wardrop(np.asarray(c), kappa)).max() < 1e-3


@pytest.mark.parametrize("game", ["beach_bar", "resource_selection"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_potential_reaches_tight_exploitability(game: str, alpha: float) -> None:
    """From the uniform policy to exploitability 1e-8 (the start is 1 to 55) in 80 Newton
    steps, with the default switching cost (resource_selection) and crowd aversion (beach_bar)."""
    s = make_setting(game, alpha, steps=30)
    result = run(s, ALGORITHMS["potential"](), 80, 1e-8)
    assert result.converged, result.stop_reason


@pytest.mark.parametrize("game", ["beach_bar", "resource_selection"])
def test_potential_history_never_rises_beyond_its_guard(game: str) -> None:
    """Asked for more than its precision allows (tolerance 0) and without the mirror-descent
    polish (the default), the solver stays at its best iterate: no iterate's exploitability
    exceeds GUARD times the best before it."""
    s = make_setting(game, 1.0, steps=30)
    solver = ALGORITHMS["potential"](polish=False)
    h = run(s, solver, 80, 0.0).history["exploitability"].to_numpy()
    assert h.min() <= 1e-8
    assert (h[1:] / np.minimum.accumulate(h)[:-1]).max() <= solver.GUARD


def test_potential_polish_goes_below_the_newton_floor() -> None:
    """Asked for 1e-12 on beach_bar (30 steps), below where the Newton steps stop (~4e-10),
    the mirror-descent polish from the best iterate goes on to it."""
    s = make_setting("beach_bar", 1.0, steps=30)
    result = run(s, ALGORITHMS["potential"](polish=True), 3000, 1e-12)
    assert result.converged, result.stop_reason
