"""Equilibrium solvers: algorithms (an initial state and a step each), the one loop that runs
them, and the uniqueness evidence."""

from tmfcli.solvers.algorithms import ALGORITHMS
from tmfcli.solvers.loop import SolveResult, run

__all__ = ["ALGORITHMS", "SolveResult", "run"]
