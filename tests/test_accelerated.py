"""The accelerated evaluation (compiled time loops, sparse kernels, batched rewards) against the
pure-numpy reference path, and its fall-back for games without compiled kernels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tmfcli.model.exploitability import Evaluation, evaluate
from tmfcli.model.flow import accelerated, mean_field_flow
from tmfcli.model.games import GAMES
from tmfcli.model.games.classic import SIS, BeachBar
from tmfcli.model.games.project import QueueingPerStep as Queueing
from tmfcli.model.setting import Setting
from tmfcli.model.values import backward

from .conftest import make_setting, random_policy

TOL = 1e-12


def assert_same(fast: Evaluation, ref: Evaluation) -> None:
    """Every array of the two evaluations agrees to TOL (relative to the values' scale)."""
    assert fast.flow.sparse is not None and ref.flow.sparse is None
    pairs: dict[str, tuple[Any, Any]] = {
        "mu": (fast.flow.mu, ref.flow.mu), "P": (fast.flow.P, ref.flow.P),
        "P0": (fast.flow.P0, ref.flow.P0), "r": (fast.flow.r, ref.flow.r),
        "r0": (fast.flow.r0, ref.flow.r0), "own.Q": (fast.own.Q, ref.own.Q),
        "own.V": (fast.own.V, ref.own.V), "best.Q": (fast.best.Q, ref.best.Q),
        "best.V": (fast.best.V, ref.best.V), "best.policy": (fast.best.policy, ref.best.policy),
    }
    for key, (a, b) in pairs.items():
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL * scale, err_msg=key)
    for key in ("J", "J_best", "exploitability", "exploitability_reg"):
        a, b = getattr(fast, key), getattr(ref, key)
        assert abs(a - b) <= TOL * max(1.0, abs(fast.J), abs(fast.J_best)), key


def _settings(name: str, alpha: float, unit: str) -> Setting:
    if unit == "steps":
        return make_setting(name, alpha, steps=12, discount=0.9)
    return make_setting(name, alpha, horizon={"rounds": 3}, discount=0.9)


@pytest.mark.parametrize("unit", ["steps", "rounds"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("name", sorted(GAMES))
def test_accelerated_evaluation_equals_the_reference(name: str, alpha: float, unit: str,
                                                     rng: np.random.Generator) -> None:
    s = _settings(name, alpha, unit)
    assert accelerated(s.game)  # every shipped game has a fast path
    for _ in range(2):
        pi = random_policy(rng, s)
        assert_same(evaluate(s, pi), evaluate(s, pi, fast=False))


@pytest.mark.parametrize("name", sorted(GAMES))
def test_accelerated_evaluation_with_entropy(name: str, rng: np.random.Generator) -> None:
    s = make_setting(name, 0.5, steps=8, entropy=0.3)
    pi = random_policy(rng, s)
    assert_same(evaluate(s, pi), evaluate(s, pi, fast=False))


def test_accelerated_evaluation_on_a_long_horizon_with_mu_dependent_dynamics(
        rng: np.random.Generator) -> None:
    s = make_setting("queueing_per_step", 0.3, steps=2000)
    pi = random_policy(rng, s)
    assert_same(evaluate(s, pi), evaluate(s, pi, fast=False))


def test_sparse_static_kernel_at_a_larger_size(rng: np.random.Generator) -> None:
    s = make_setting("beach_bar", 0.7, steps=15, params={"n": 60, "bar": 7})
    pi = random_policy(rng, s)
    fast = evaluate(s, pi)
    assert fast.flow.sparse is not None
    assert fast.flow.sparse.nnz[0] <= 9 * 60  # 3 moves x 3 noise outcomes per position
    assert_same(fast, evaluate(s, pi, fast=False))


@dataclass(frozen=True)
class PlainSIS(SIS):
    """SIS without its compiled kernel, as a user-defined game with mu-dependent dynamics."""

    def compiled_dynamics(self) -> None:  # type: ignore[override]  # on purpose: none
        return None


@dataclass(frozen=True)
class PlainQueueing(Queueing):
    def compiled_dynamics(self) -> None:  # type: ignore[override]  # on purpose: none
        return None


@dataclass(frozen=True)
class TimedBeachBar(BeachBar):
    """Beach bar whose rewards may depend on t: the engine must call it once per step."""

    time_homogeneous = False

    def reward(self, mu: np.ndarray, t: int) -> np.ndarray:
        return super().reward(mu, t) - 0.01 * t


@pytest.mark.parametrize("game", [PlainSIS(), PlainQueueing()])
def test_games_without_compiled_kernels_fall_back_to_the_reference(
        game: SIS | Queueing, rng: np.random.Generator) -> None:
    plain = make_setting("sis", 0.5, steps=10)
    s = Setting(game=game, alpha=plain.alpha, gamma=plain.gamma)
    compiled = Setting(game=type(game).__mro__[1](), alpha=plain.alpha, gamma=plain.gamma)
    assert not accelerated(game) and accelerated(compiled.game)
    pi = random_policy(rng, s)
    ev = evaluate(s, pi)
    assert ev.flow.sparse is None  # the reference path ran
    assert_same(evaluate(compiled, pi), ev)


def test_time_dependent_rewards_are_evaluated_per_step(rng: np.random.Generator) -> None:
    plain = make_setting("beach_bar", 0.5, steps=6)
    s = Setting(game=TimedBeachBar(), alpha=plain.alpha, gamma=plain.gamma)
    pi = random_policy(rng, s)
    fast, ref = evaluate(s, pi), evaluate(s, pi, fast=False)
    assert_same(fast, ref)
    # the time term really enters: 0.01 t more cost than the plain game at every step
    np.testing.assert_allclose(fast.flow.r - evaluate(plain, pi).flow.r,
                               -0.01 * np.arange(6)[:, None, None] * np.ones((1, 10, 3)))


def test_backward_on_an_accelerated_flow_evaluates_any_policy(rng: np.random.Generator) -> None:
    """Solvers re-evaluate other policies on a frozen flow (tmf-pg): same as the reference."""
    s = make_setting("queueing_per_step", 0.5, steps=10)
    pi, other = random_policy(rng, s), random_policy(rng, s)
    fast, ref = mean_field_flow(s, pi), mean_field_flow(s, pi, fast=False)
    for tau in (0.0, 0.2):
        np.testing.assert_allclose(backward(fast, s.gamma, other, tau).V,
                                   backward(ref, s.gamma, other, tau).V, rtol=0, atol=TOL)
