"""Equilibrium solvers: ``solve(spec_or_setting, ...)`` runs the chosen algorithm in one loop."""

from tmfcli.solvers.algorithms import ALGORITHMS
from tmfcli.solvers.loop import SolveResult, run

__all__ = ["ALGORITHMS", "SolveResult", "run"]
