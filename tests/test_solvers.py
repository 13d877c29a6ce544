"""Equilibrium solvers: the documented settings reach exploitability 1e-6 (docs/solvers.md),
every solver reports honest progress and stop reasons, and regularised mirror descent lands on
its fixed point pi = softmax(Q / tau)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tmfcli.errors import SpecError
from tmfcli.io import spec as specs
from tmfcli.io.resolve import setting
from tmfcli.model.setting import Setting
from tmfcli.model.values import softmax
from tmfcli.solvers import ALGORITHMS, run

# The recommended settings of docs/solvers.md: (game, steps or None for the game's default).
REQUIRED = [("resource_selection_per_step", 30), ("left_right", None), ("beach_bar", 30)]
RECOMMENDED: tuple[str, dict[str, Any], int] = ("mirror-descent", {}, 3000)


def make(game: str, alpha: float, steps: int | None, entropy: float = 0.0) -> Setting:
    data: dict[str, Any] = {"name": "t", "game": {"name": game}, "population": {"alpha": alpha},
                            "entropy": entropy}
    if steps is not None:
        data["horizon"] = {"steps": steps}
    return setting(specs.from_dict(data))


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.1])
@pytest.mark.parametrize(("game", "steps"), REQUIRED)
def test_recommended_settings_reach_1e_6(game: str, steps: int | None, alpha: float) -> None:
    name, params, iterations = RECOMMENDED
    result = run(make(game, alpha, steps), ALGORITHMS[name](**params), iterations, 1e-6)
    assert result.converged, result.stop_reason
    assert result.evaluation.exploitability <= 1e-6


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_solver_reports_progress_honestly(name: str) -> None:
    s = make("left_right", 1.0, None)
    result = run(s, ALGORITHMS[name](), 200, 1e-6)
    h = result.history["exploitability"].to_numpy()
    assert result.evaluation.exploitability >= -1e-12  # J* >= J up to rounding
    assert (h >= -1e-12).all()
    best = np.minimum.accumulate(h)
    assert (np.diff(best) <= 0).all() and best[-1] < h[0]  # progress from the uniform policy
    if result.converged:
        assert result.stop_reason.startswith("converged")
        assert h[-1] <= 1e-6
    else:
        assert result.stop_reason.startswith("max-iterations")
        assert f"best {best[-1]:.3g}" in result.stop_reason


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_a_solver_that_does_not_converge_says_max_iterations(name: str) -> None:
    result = run(make("left_right", 1.0, None), ALGORITHMS[name](), 3, 0.0)
    assert not result.converged
    assert result.stop_reason.startswith("max-iterations")
    assert result.iterations == 3


@pytest.mark.parametrize("algorithm", ["mirror-descent", "anderson"])
@pytest.mark.parametrize("tau", [0.1, 1.0])
@pytest.mark.parametrize(("game", "steps", "alpha"),
                         [("left_right", None, 1.0), ("resource_selection_per_step", 10, 0.5),
                          ("beach_bar", 10, 1.0)])
def test_regularised_mirror_descent_reaches_softmax_fixed_point(
        game: str, steps: int | None, alpha: float, tau: float, algorithm: str) -> None:
    s = make(game, alpha, steps, entropy=tau)
    result = run(s, ALGORITHMS[algorithm](), 400, 0.0)  # tolerance 0: up to 400 steps
    ev = result.evaluation
    np.testing.assert_allclose(ev.policy, softmax(ev.own.Q / tau), rtol=0, atol=1e-6)
    assert ev.exploitability_reg <= 1e-10
    assert ev.exploitability > 1e-4  # the regularised equilibrium is not the unregularised one


def test_a_run_that_stops_early_reports_its_best_iterate() -> None:
    """Stopped at max-iterations, the result is the best iterate, not the last one."""
    s = make("beach_bar", 1.0, 30)
    result = run(s, ALGORITHMS["mirror-descent"](), 40, 0.0)
    h = result.history["exploitability_reg"].to_numpy()
    assert not result.converged
    assert h[-1] > h.min()  # this run ends above its best: the case the rule is for
    assert result.evaluation.target == h.min()


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_remaining_rounds(gamma: float) -> None:
    """H_t = sum_{s>=t} gamma^(s-t) alpha_s: the geometric sum at alpha = 1, and alpha times it
    for a constant alpha."""
    from tmfcli.solvers.algorithms import remaining_horizon

    T = 7
    for alpha in (1.0, 0.25):
        data: dict[str, Any] = {"name": "t", "game": {"name": "sis"}, "discount": gamma,
                                "population": {"alpha": alpha}, "horizon": {"steps": T}}
        H = remaining_horizon(setting(specs.from_dict(data)))
        left = T - np.arange(T)
        geometric = left if gamma == 1.0 else (1 - gamma**left) / (1 - gamma)
        np.testing.assert_allclose(H, alpha * geometric, rtol=1e-12)


@pytest.mark.parametrize(("game", "entropy", "chosen"), [
    ("resource_selection_per_step", 0.0, "potential"), ("beach_bar", 0.0, "potential"),
    ("left_right", 0.0, "potential"), ("left_right", 0.1, "mirror-descent"),
    ("queueing_per_step", 0.0, "mirror-descent"), ("sis", 0.0, "mirror-descent"),
    ("rock_paper_scissors", 0.0, "anderson"), ("rock_paper_scissors", 1.0, "mirror-descent")])
def test_auto_names_the_solver_it_picks(game: str, entropy: float, chosen: str) -> None:
    """The default ``solver.algorithm: auto`` resolves, in the spec and so in the manifest, to
    potential for a game with a potential, static dynamics and no entropy, anderson for rewards
    the Lasry-Lions probe finds not monotone, else mirror-descent; the same spec with that
    name written out is the same spec."""
    data: dict[str, Any] = {"name": "t", "game": {"name": game}, "entropy": entropy}
    spec = specs.from_dict(data)
    assert spec.solver.algorithm == chosen
    assert spec.to_dict() == specs.from_dict({**data, "solver": {"algorithm": chosen}}).to_dict()


def test_auto_with_solver_params_asks_for_a_name() -> None:
    with pytest.raises(SpecError, match="belong to a named solver") as error:
        specs.from_dict({"name": "t", "game": {"name": "beach_bar"},
                         "solver": {"params": {"polish": True}}})
    assert "solver.algorithm: potential" in str(error.value.fix)


@pytest.mark.parametrize("game", ["queueing_per_step", "rock_paper_scissors", "sis"])
def test_monotonicity_probe_is_the_same_in_chunks(game: str, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    """The probe evaluates kernels a few pairs at a time (bounded memory: beach_bar with
    n = 1000 used 12 GB at once); one pair at a time gives the same probe. rock_paper_scissors
    violates monotonicity, queueing and sis have dynamics that vary with mu."""
    import numpy as np

    from tmfcli.model.games import make_game
    from tmfcli.solvers import uniqueness

    whole = uniqueness.monotonicity_probe(make_game(game, {}), 0.5, np.random.default_rng(4))
    monkeypatch.setattr(uniqueness, "CHUNK", 1)
    assert uniqueness.monotonicity_probe(make_game(game, {}), 0.5,
                                         np.random.default_rng(4)) == whole
    assert (whole.largest > 0) == (game == "rock_paper_scissors")  # sis: 0, weakly monotone
    assert (whole.dynamics_vary > 0) == (game != "rock_paper_scissors")
