"""Equilibria against closed forms: Wardrop split of resource selection, left_right's 2/3."""

from __future__ import annotations

import numpy as np
import pytest

from tmfcli.solvers import ALGORITHMS, run

from .conftest import make_setting


def wardrop(c: np.ndarray, kappa: float) -> np.ndarray:
    """Split equalising c_o - kappa mu(o) on used resources (water-filling, closed form).

    With the k best resources used, sum_o (c_o - L) / kappa = 1 gives L = (sum c - kappa) / k;
    k is the largest for which the k-th best value still exceeds L.
    """
    order = np.argsort(-c)
    for k in range(len(c), 0, -1):
        used = order[:k]
        level = (c[used].sum() - kappa) / k
        if c[order[k - 1]] > level:
            mu = np.zeros_like(c)
            mu[used] = (c[used] - level) / kappa
            return mu
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("c", "kappa"), [((1.0, 0.8, 0.6), 1.0), ((1.0, 0.9, 0.0), 1.0)])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_resource_selection_without_switching_cost_reaches_wardrop(
        c: tuple[float, ...], kappa: float, alpha: float) -> None:
    T = 30
    s = make_setting("resource_selection_per_step", alpha, steps=T,
                     params={"c": list(c), "kappa": kappa, "lam": 0.0})
    result = run(s, ALGORITHMS["mirror-descent"](), 3000, 1e-9)
    assert result.converged, result.stop_reason
    target = wardrop(np.asarray(c), kappa)
    mu = result.evaluation.flow.mu
    # exploitability 1e-9 bounds kappa * ||mu_t - W||^2 summed over steps, so the flow is
    # within ~1e-4 of the split; 1e-3 leaves room without hiding a wrong split (gaps ~0.1)
    assert np.abs(mu[T // 2: T] - target).max() < 1e-3


def test_wardrop_closed_form_by_hand() -> None:
    np.testing.assert_allclose(wardrop(np.array([1.0, 0.8, 0.6]), 1.0),
                               [0.8 / 1.5, 1 / 3, 0.2 / 1.5])
    np.testing.assert_allclose(wardrop(np.array([1.0, 0.9, 0.0]), 1.0), [0.55, 0.45, 0.0])


@pytest.mark.parametrize(("algorithm", "iterations", "reached", "split"),
                         [("mirror-descent", 500, 1e-6, 1e-4), ("potential", 40, 1e-8, 1e-6)])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_left_right_equilibrium_sends_two_thirds_left(alpha: float, algorithm: str,
                                                      iterations: int, reached: float,
                                                      split: float) -> None:
    """Indifference -mu(left) = -2 mu(right) among the movers: a fraction 2/3 goes left."""
    s = make_setting("left_right", alpha)
    result = run(s, ALGORITHMS[algorithm](), iterations, 1e-9)
    assert result.evaluation.exploitability <= reached, result.stop_reason
    mu1 = result.evaluation.flow.mu[1]
    assert mu1[1] / (mu1[1] + mu1[2]) == pytest.approx(2 / 3, abs=split)
    assert mu1[0] == pytest.approx(1 - alpha, abs=1e-12)  # idle agents stayed at the start


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
def test_rock_paper_scissors_equilibrium_equalises_the_three_hands(alpha: float) -> None:
    """Anderson-accelerated mirror descent reaches 1e-6 on the non-monotone game, and the hands
    chosen at step 0 make the three payoffs of step 1 equal: with (r, p, s) the hand mass
    alpha pi_0(.|start), 2s - p = 4r - 2s = 6p - 3r (homogeneous, so the split is the same for
    every alpha)."""
    s = make_setting("rock_paper_scissors", alpha)
    result = run(s, ALGORITHMS["anderson"](), 200, 1e-9)
    assert result.evaluation.exploitability <= 1e-6, result.stop_reason
    # rows: payoff(rock) - payoff(paper), payoff(paper) - payoff(scissors), r + p + s = 1
    system = np.array([[-4.0, -1.0, 4.0], [7.0, -6.0, -2.0], [1.0, 1.0, 1.0]])
    split = np.linalg.solve(system, [0.0, 0.0, 1.0])
    assert (split > 0).all()
    np.testing.assert_allclose(result.evaluation.policy[0, 0], split, atol=1e-3)
