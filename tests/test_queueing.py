"""The queueing game of MODEL.md section 7 is not degenerate: its queues fill at equilibrium."""

from __future__ import annotations

import numpy as np
import pytest

from tmfcli.io import resolve
from tmfcli.io import spec as specs
from tmfcli.model.exploitability import evaluate
from tmfcli.model.policy import TabularPolicy
from tmfcli.simulation.counts import gaps, simulate
from tmfcli.solvers import ALGORITHMS, run

from .conftest import make_setting


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_equilibrium_puts_mass_in_the_queues(alpha: float) -> None:
    s = make_setting("queueing_per_step", alpha=alpha, steps=30)
    result = run(s, ALGORITHMS["mirror-descent"](), 2000, 1e-8)
    assert result.converged, result.stop_reason
    mu = result.evaluation.flow.mu
    assert mu[:, 1:].sum(axis=1).max() >= 0.1  # at some step at least 10% wait in queues
    assert np.all(mu[5:25, 1:] > 0.05)          # and every queue is used in mid-horizon


def test_always_join_queue_one_is_not_an_equilibrium() -> None:
    s = make_setting("queueing_per_step", steps=30)
    pi = np.zeros((s.T, s.game.n_obs, s.game.n_act))
    pi[:, :, 1] = 1.0  # from anywhere: go to (or stay in) queue 1
    ev = evaluate(s, pi)
    assert ev.flow.mu[1:, 1].min() > 0.5       # the crowd sits in queue 1 ...
    assert ev.exploitability > 0.1              # ... and deviating to another queue pays


def test_the_n_agent_gap_is_positive_at_n_100() -> None:
    data = {"name": "t", "game": {"name": "queueing_per_step"}, "horizon": {"steps": 20},
            "population": {"agents": 100, "batch": 10}}
    s = resolve.setting(specs.from_dict(data))
    pi = np.full((s.T, s.game.n_obs, s.game.n_act), 1.0 / s.game.n_act)
    mu_bar = evaluate(s, pi).flow.mu
    rollouts = simulate(s, TabularPolicy(pi), 50, seed=3)
    e_max, e_mean = gaps(rollouts, mu_bar)
    # with 100 agents the empirical flow differs from the mean field by O(1/sqrt N) ~ 0.1
    assert e_max.mean() > 0.05 and e_mean.min() > 0
    assert e_max.mean() < 1.0
