"""The solvers by name: ``ALGORITHMS`` (what ``solver.algorithm`` accepts) and ``choose``,
the solver ``auto`` stands for.

The registry sits apart from the algorithms so that the modules it lists import one another in
one direction only (``potential.py`` polishes with ``algorithms.MirrorDescent``; neither knows
the registry). Adding a solver: its module, and one entry here (CONTRIBUTING.md).
"""

from __future__ import annotations

from tmfcli import seeds
from tmfcli.model.games.base import Game
from tmfcli.solvers.algorithms import Anderson, FictitiousPlay, FixedPoint, MirrorDescent, TmfPG
from tmfcli.solvers.potential import PotentialNewton
from tmfcli.solvers.uniqueness import monotonicity_probe

__all__ = ["ALGORITHMS", "AUTO", "choose"]

AUTO = "auto"  # solver.algorithm's default: the spec resolves it with ``choose``


def choose(game: Game, tau: float) -> str:
    """The solver ``auto`` stands for (docs/solvers.md, "Which one to use"):

    * ``potential`` for a game that declares a potential, with mu-independent dynamics and
      tau = 0: tens of Newton steps, and a history that never rises by more than its guard;
    * ``anderson`` for mu-independent dynamics, tau = 0 and rewards that the sampled
      Lasry-Lions probe (fixed seed) finds not monotone (rock_paper_scissors), where mirror
      descent circles the equilibrium;
    * ``mirror-descent`` otherwise (it converges on the shipped games with mu-dependent
      dynamics, monotone or not, where anderson was not shown to).
    """
    if tau > 0 or not game.static_dynamics:
        return "mirror-descent"
    if game.potential() is not None:
        return "potential"
    if monotonicity_probe(game, 1.0, seeds.fixed(seeds.AUTO_PROBE)).largest > 0:
        return "anderson"
    return "mirror-descent"


ALGORITHMS: dict[str, type] = {
    "fixed-point": FixedPoint,
    "fictitious-play": FictitiousPlay,
    "mirror-descent": MirrorDescent,
    "tmf-pg": TmfPG,
    "anderson": Anderson,
    "potential": PotentialNewton,
}
