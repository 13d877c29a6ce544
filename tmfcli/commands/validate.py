"""What ``tmf validate`` runs: the full check of a spec's game before anything is computed.

Loading a spec already runs the quick check (``tmfcli.model.games.checks.quick_check``); this
adds many probes (every vertex, flat and sparse Dirichlet points, several steps), the sampled
Lasry-Lions monotonicity probe of the rewards (``tmfcli.solvers.uniqueness``) and the Lipschitz
constants of the kernels in mu (``tmfcli.analysis.bound``): analytic when the game declares
them, and then checked against sampled ratios (a declared constant below a measured ratio is an
error), else the sampled estimate, labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from tmfcli import seeds
from tmfcli.analysis.bound import sampled_lipschitz
from tmfcli.errors import SpecError
from tmfcli.io.resolve import setting
from tmfcli.io.spec_types import Spec
from tmfcli.model.games.base import Game, Lipschitz
from tmfcli.model.games.checks import Checked, check_game
from tmfcli.solvers.uniqueness import Probe, monotonicity_probe

PAIR_BUDGET = 4_000_000  # kernel numbers evaluated for the sampled Lipschitz ratios


@dataclass(frozen=True)
class Validation:
    """The outcome of ``validate``: the game, what was checked, the probe and the constants."""

    game: Game
    steps: int
    checked: Checked
    probe: Probe
    lipschitz: Lipschitz
    lipschitz_source: str
    sampled: Lipschitz | None  # None: too large to sample, and analytic constants declared


def _lipschitz_key(game: Game, name: str) -> str:
    definition = getattr(game, "definition", None)
    if definition is not None:
        where = definition.key(f"lipschitz.{name}")
        return ":".join(p for p in (definition.source, where) if p)
    return f"game {game.name}:lipschitz().{name}"


def validate(spec: Spec) -> Validation:
    """Check the spec's game at many probes; raise ``SpecError`` at the first problem."""
    problem = setting(spec)
    game = problem.game
    times = tuple(sorted({0, min(1, problem.T - 1), problem.T - 1}))
    checked = check_game(game, seeds.generator(spec.seed, seeds.VALIDATE_CHECKS), times=times)
    size = game.n_obs * game.n_act * game.n_obs
    probe = monotonicity_probe(game, float(problem.alpha.mean()),
                               seeds.generator(spec.seed, seeds.VALIDATE_PROBE),
                               samples=int(min(256, max(8, PAIR_BUDGET // size))))
    room = PAIR_BUDGET // max(1, 2 * size * len(times))
    declared = game.lipschitz()
    sampled = None if declared is not None and room < 30 else sampled_lipschitz(
        game, seeds.generator(spec.seed, seeds.VALIDATE_LIPSCHITZ), int(min(600, max(30, room))),
        times)
    if declared is not None and sampled is not None:
        for name in ("L_P", "L_0"):
            bound, seen = getattr(declared, name), getattr(sampled, name)
            if seen > bound * (1 + 1e-9) + 1e-12:
                raise SpecError(_lipschitz_key(game, name), f"declares {name} = {bound:.6g} "
                                f"but a sampled ratio reaches {seen:.6g}",
                                "give a constant at least as large, or leave it out to have "
                                "it sampled")
    constants = declared if declared is not None else sampled
    assert constants is not None  # sampled whenever the game declares nothing
    return Validation(game=game, steps=problem.T, checked=checked, probe=probe,
                      lipschitz=constants,
                      lipschitz_source="analytic" if declared is not None else "sampled",
                      sampled=sampled)
