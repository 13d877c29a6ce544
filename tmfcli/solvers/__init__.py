"""Equilibrium solvers: algorithms (an initial state and a step each), the one loop that runs
them, and the uniqueness evidence."""

from tmfcli.solvers.loop import SolveResult, run
from tmfcli.solvers.registry import ALGORITHMS

__all__ = ["ALGORITHMS", "SolveResult", "run"]
