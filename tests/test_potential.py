"""The ``potential`` solver: its linear algebra, the games' potentials, and the equilibria it
reaches against closed forms (Wardrop split, left_right's 2/3) and tight exploitability."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tmfcli.errors import SpecError
from tmfcli.model.exploitability import evaluate
from tmfcli.model.games import make_game
from tmfcli.solvers import ALGORITHMS, potential, run

from .conftest import make_setting
from .test_equilibria import wardrop


def _dense(st: Any, O: int, A: int, T: int, fn: Callable[..., Any]) -> np.ndarray:
    """The matrix of a linear map on (T, O, A) or (T, O) arrays, column by column."""
    shape = (T, O, A) if fn is not potential.constraints_transpose else (T, O)
    size = int(np.prod(shape))
    cols = []
    for k in range(size):
        e = np.zeros(size)
        e[k] = 1.0
        out = fn(st, e.reshape(shape)) if fn is potential.constraints \
            else fn(st, e.reshape(shape), A)
        cols.append(out.ravel())
    return np.stack(cols, axis=1)


@pytest.mark.parametrize(("game", "alpha", "params"), [
    ("beach_bar", 1.0, {"n": 7}), ("beach_bar", 0.5, {"n": 7}), ("left_right", 0.5, {}),
    ("resource_selection_per_step", 0.1, {}), ("resource_selection_per_step", 1.0, {})])
def test_newton_matrix_equals_the_dense_product(game: str, alpha: float, params: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """M = A N A^T assembled in band storage, and as summed terms, equals the product of the
    explicit matrices, with N = (diag(1/n) + w 1 1^T)^-1 per (t, o) block; A^T is A's
    transpose; the band and the sparse solves equal a dense one. Random weights, with some
    variables absent (n = 0)."""
    s = make_setting(game, alpha, steps=5, params=params)
    st = potential.structure(s)
    T, O, A = s.T, s.game.n_obs, s.game.n_act
    rng = np.random.default_rng(7)
    n = rng.random((T, O, A)) * (rng.random((T, O, A)) > 0.2)
    w = rng.random((T, O))
    Amat = _dense(st, O, A, T, potential.constraints)
    np.testing.assert_allclose(_dense(st, O, A, T, potential.constraints_transpose), Amat.T,
                               atol=1e-15)
    blocks = []
    for t in range(T):
        for o in range(O):
            live = n[t, o] > 0
            block = np.zeros((A, A))
            if live.any():
                inner = np.diag(1.0 / n[t, o, live]) + w[t, o]
                block[np.ix_(live, live)] = np.linalg.inv(inner)
            blocks.append(block)
    N = np.zeros((T * O * A, T * O * A))
    for k, block in enumerate(blocks):
        N[k * A:(k + 1) * A, k * A:(k + 1) * A] = block
    M = Amat @ N @ Amat.T
    empty = n.sum(axis=-1).ravel() == 0
    M[empty, empty] = 1.0  # a row with no variables: y = 0
    band = potential.newton_band(st, n, w)
    dense = np.zeros_like(M)
    for d in range(band.shape[0]):
        idx = np.arange(T * O - d)
        dense[idx + d, idx] = band[d, :T * O - d]
    np.testing.assert_allclose(np.tril(M), dense, atol=1e-13)
    assert np.abs(np.triu(M, st.bandwidth + 1)).max(initial=0.0) == 0.0  # the band holds M
    rows, cols, vals = potential.newton_terms(st, n, w)
    assert (rows >= cols).all()
    summed = np.zeros_like(M)
    np.add.at(summed, (rows, cols), vals)
    np.testing.assert_allclose(summed, dense, atol=1e-13)
    r = rng.normal(size=(T, O))
    exact = np.linalg.solve(M, r.ravel())
    for limit in (potential.BAND_LIMIT, -1):  # as a band, and as a sparse matrix
        monkeypatch.setattr(potential, "BAND_LIMIT", limit)
        np.testing.assert_allclose(potential.newton_solver(st, n, w)(r).ravel(), exact,
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("game", "alpha"), [("beach_bar", 1.0),
                                            ("resource_selection_per_step", 0.5)])
def test_best_response_is_a_dual_point_whose_gap_is_the_exploitability(game: str,
                                                                      alpha: float) -> None:
    """y = gamma^t V*, s = gamma^t alpha_t (max Q* - Q*) solve grad Phi - A^T y + s = 0 exactly,
    with s >= 0, and z . s is the exploitability (the solver's dual start)."""
    s = make_setting(game, alpha, steps=6, discount=0.9)
    st = potential.structure(s)
    T, O, A = s.T, s.game.n_obs, s.game.n_act
    pi = np.random.default_rng(3).dirichlet(np.ones(A), size=(T, O))
    ev = evaluate(s, pi)
    d = st.discount
    grad = d[:, None, None] * (s.alpha[:, None, None] * ev.flow.r
                               + ((1 - s.alpha)[:, None] * ev.flow.r0)[..., None])
    y = d[:, None] * ev.best.V[:T]
    Q = ev.best.Q
    slack = (d * s.alpha)[:, None, None] * (Q.max(axis=-1, keepdims=True) - Q)
    np.testing.assert_allclose(grad - potential.constraints_transpose(st, y, A) + slack, 0.0,
                               atol=1e-12)
    z = ev.flow.mu[:T, :, None] * pi
    assert (z * slack).sum() == pytest.approx(ev.exploitability, rel=1e-10)


@pytest.mark.parametrize("name", ["beach_bar", "left_right", "resource_selection_per_step"])
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


@pytest.mark.parametrize(("c", "kappa"), [((1.0, 0.8, 0.6), 1.0), ((1.0, 0.9, 0.0), 1.0)])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_potential_resource_selection_reaches_wardrop(c: tuple[float, ...], kappa: float,
                                                      alpha: float) -> None:
    T = 30
    s = make_setting("resource_selection_per_step", alpha, steps=T,
                     params={"c": list(c), "kappa": kappa, "lam": 0.0})
    result = run(s, ALGORITHMS["potential"](), 80, 1e-8)
    assert result.evaluation.exploitability <= 1e-6, result.stop_reason
    mu = result.evaluation.flow.mu
    assert np.abs(mu[T // 2: T] - wardrop(np.asarray(c), kappa)).max() < 1e-3


@pytest.mark.parametrize("game", ["beach_bar", "resource_selection_per_step"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_potential_reaches_tight_exploitability(game: str, alpha: float) -> None:
    """From the uniform policy to exploitability 1e-8 (the start is 1 to 55) in 80 Newton
    steps, with the default switching cost (resource_selection) and crowd aversion (beach_bar)."""
    s = make_setting(game, alpha, steps=30)
    result = run(s, ALGORITHMS["potential"](), 80, 1e-8)
    assert result.converged, result.stop_reason


@pytest.mark.parametrize("game", ["beach_bar", "resource_selection_per_step"])
def test_potential_history_never_rises_beyond_its_guard(game: str) -> None:
    """Asked for more than its precision allows (tolerance 0) and without the mirror-descent
    polish (the default), the solver stops at its best iterate: no iterate's exploitability
    exceeds GUARD times the best before it."""
    s = make_setting(game, 1.0, steps=30)
    solver = ALGORITHMS["potential"](polish=False)
    result = run(s, solver, 80, 0.0)
    h = result.history["exploitability"].to_numpy()
    assert h.min() <= 1e-8
    assert (h[1:] / np.minimum.accumulate(h)[:-1]).max() <= solver.GUARD
    # at its floor the solver says so and the loop stops, with the best iterate
    assert result.stop_reason.startswith("stalled: no further progress") and len(h) < 80
    assert not result.converged and result.evaluation.exploitability == h.min()


def test_potential_polish_goes_below_the_newton_floor() -> None:
    """Asked for 1e-12 on beach_bar (30 steps), below where the Newton steps stop (~4e-10),
    the mirror-descent polish from the best iterate goes on to it."""
    s = make_setting("beach_bar", 1.0, steps=30)
    result = run(s, ALGORITHMS["potential"](polish=True), 3000, 1e-12)
    assert result.converged, result.stop_reason


def test_validate_checks_a_declared_potential() -> None:
    """``tmf validate``'s full check compares a declared potential with central differences of
    the rewards: the shipped ones pass, one with the wrong slope or sign is refused; one that
    raises is refused on one line by the check every command runs."""
    from dataclasses import dataclass

    from tmfcli.model.games.base import Potential
    from tmfcli.model.games.checks import check_game, quick_check
    from tmfcli.model.games.classic import LeftRight

    for name in ("beach_bar", "left_right", "resource_selection_per_step"):
        check_game(make_game(name, {}), np.random.default_rng(0))

    @dataclass(frozen=True)
    class Wrong(LeftRight):
        scale: float = 1.0

        def potential(self) -> Potential:
            slope = self.scale * np.array([0.0, -1.0, -2.0])
            return Potential(curvature=lambda mu: np.broadcast_to(slope, mu.shape),
                             idle_curvature=lambda mu: np.zeros(mu.shape))

    with pytest.raises(SpecError, match="does not match d r / d mu"):
        check_game(Wrong(scale=2.0), np.random.default_rng(0))
    with pytest.raises(SpecError, match="not finite and <= 0"):
        check_game(Wrong(scale=-1.0), np.random.default_rng(0))

    @dataclass(frozen=True)
    class Raising(LeftRight):
        def potential(self) -> Potential:
            raise ValueError("no potential here")

    with pytest.raises(SpecError) as info:  # checked when any spec is read, not a traceback
        quick_check(Raising())
    assert info.value.message().startswith(
        "game left_right:potential: raised ValueError: no potential here — make potential() "
        "return d r(o, a, mu) / d mu(o)")
