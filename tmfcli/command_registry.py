"""Every command that writes a run, described once: what it reads, what it writes, what
identifies it, how it is budgeted, how ``tmf report`` reads it, how ``tmf runs`` shows it and
how a sweep runs its cells.

The run store (``tmfcli.io.runs``), the size checks (``tmfcli.io.budget``), the listing of
``tmf runs``, ``tmf report`` (``tmfcli.analysis.report``, ``tmfcli.io.report_inputs``), the
sweeps and executors (``tmfcli.commands``) and the CLI read this table; none keeps a list of
commands of its own. Adding a command is one entry in ``COMMANDS`` plus its module (docs:
CONTRIBUTING.md, "Add a command").

This module sits below every layer that reads it (it imports only the standard library), so
the functions of higher layers are named, not imported: ``"module:function"`` strings that
``load`` imports when first called. A worker process or a Dask worker on another machine thus
needs only a command's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only
    from tmfcli.io.spec_types import Spec

Progress = Callable[[str, int, int], None]  # (phase, done, total)
Run = Callable[["Spec", Path, "Options", Progress | None], None]


@dataclass(frozen=True)
class Options:
    """Command-line choices that are not spec keys."""

    policy: str | None = None  # simulate, bound-check: --policy (part of the run's identity)
    workers: int | None = None  # bound-check: processes inside one run (None: its default)
    force: bool = False  # replace a result of another spec; bound-check: start afresh
    scheduler: str | None = None  # a run with a grid of its own: send the grid to this cluster


@dataclass(frozen=True)
class Budget:
    """The memory, time and work estimate of one run, checked before any work.

    ``estimate`` ("module:function") is called as ``estimate(spec, game, **kw)`` and returns a
    ``tmfcli.io.budget.Estimate``; ``takes`` names the keywords it takes, out of ``restarts``
    (solver restarts), ``solve`` (the policy is the spec's equilibrium, solved first) and
    ``workers`` (cells of one run's own grid at once).
    """

    estimate: str
    takes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reading:
    """How ``tmf report`` reads a run of this command: the tables it ``needs`` (an error names
    a missing one), those it reads when present (``optional``: written by newer versions), and
    ``section`` ("module:function" ``(runs, out, formats) -> Section``) building its tables and
    figures."""

    needs: tuple[str, ...]
    section: str
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listing:
    """How ``tmf runs`` shows a run: its headline ``metric`` (the column's label) found at the
    manifest path ``value``, and the ``algorithm`` column from the first manifest path that
    holds something (none: empty). ``always``: the metric is named even when the manifest
    lacks it (a failed run's record); otherwise only when it is there."""

    metric: str
    value: tuple[str, ...]
    algorithm: tuple[tuple[str, ...], ...] = ()
    always: bool = True


@dataclass(frozen=True)
class Command:
    """One command that writes runs.

    Attributes
    ----------
    name
        As typed: ``tmf <name>``; the first word of its manifests' ``command``; the
        ``<command>`` of ``results/<name>/<command>/<hash>/``.
    reads
        The spec blocks the run depends on: only they enter its hash (the key of its run
        store), so a key it does not read finds the same run.
    tables
        The CSV tables every run writes (a sweep stacks them into its top directory).
    some_tables
        Tables only some runs write (train: ``policy.csv`` for a tabular policy, or
        ``logits.csv`` and ``mu_weights.csv`` for a population-aware one); stacked when
        present.
    run
        "module:function" ``(spec, directory, options, on_progress) -> None`` writing the
        tables and the manifest last (``results.manifest(spec, key, ...)``, so that reruns
        find it).
    budget, report, listing
        Its size check (``Budget``), how ``tmf report`` reads it (``Reading``), how ``tmf
        runs`` shows it (``Listing``).
    policy
        The run depends on ``--policy``: the policy's fingerprint is part of its identity.
    check
        "module:function" taking the spec, validating it before any work (simulate needs a
        finite population).
    grid
        One run spreads cells of its own (bound-check's N x B) on ``workers`` processes
        (``default_workers``: "module:function" ``() -> int``); a single run on a cluster
        stays here and sends them (``Options.scheduler``).
    stages
        The run stages, locks and swaps in its own result directory, and keeps its finished
        cells when interrupted (else the executor hands it a stage, ``results.new_result``).
    """

    name: str
    reads: tuple[str, ...]
    tables: tuple[str, ...]
    run: str
    budget: Budget
    report: Reading
    listing: Listing
    some_tables: tuple[str, ...] = ()
    policy: bool = False
    check: str | None = None
    grid: bool = False
    default_workers: str | None = None
    stages: bool = False

    @property
    def written(self) -> tuple[str, ...]:
        """Every table a run may write: ``tables``, then ``some_tables``."""
        return (*self.tables, *self.some_tables)


def load(target: str) -> Callable[..., Any]:
    """The function named by "module:function", imported when first needed."""
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


# What the equilibrium's run reads; every other command reads it too (its policy by default).
SOLVE_READS = ("game", "horizon", "clock", "population", "discount", "entropy", "solver",
               "seed")

COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command(
        "solve", reads=SOLVE_READS,
        tables=("iterations.csv", "policy.csv", "flow.csv"),
        run="tmfcli.commands.solve:solve_into",
        budget=Budget("tmfcli.io.budget:solve_bytes", ("restarts",)),
        report=Reading(("iterations.csv", "flow.csv"), "tmfcli.analysis.report:solve_section"),
        listing=Listing("exploitability", ("exploitability",),
                        (("spec", "solver", "algorithm"),))),
    Command(
        "simulate", reads=(*SOLVE_READS, "simulate"),
        tables=("trajectory.csv", "replicas.csv", "summary.csv", "bands.csv"),
        run="tmfcli.commands.simulate:simulate_into",
        budget=Budget("tmfcli.io.budget:simulate_bytes", ("solve",)),
        report=Reading(("summary.csv", "trajectory.csv"),
                       "tmfcli.analysis.report:simulate_section", optional=("bands.csv",)),
        listing=Listing("gap_max", ("means", "gap_max")),
        policy=True, check="tmfcli.commands.simulate:needs_agents"),
    Command(
        "bound-check", reads=(*SOLVE_READS, "bound_check"),
        tables=("replicas.csv", "cells.csv", "fits.csv"),
        run="tmfcli.commands.bound_check:bound_check_into",
        budget=Budget("tmfcli.io.budget:bound_check_bytes", ("solve", "workers")),
        report=Reading(("cells.csv", "fits.csv"), "tmfcli.analysis.report:bound_section"),
        listing=Listing("passed", ("passed",)),
        policy=True, grid=True, default_workers="tmfcli.commands.bound_check:default_workers",
        stages=True),
    Command(
        "train", reads=(*SOLVE_READS, "train", "simulate"),  # simulate.replicas: eps_N
        tables=("iterations.csv", "summary.csv"),
        some_tables=("logits.csv", "mu_weights.csv", "policy.csv"),  # the learned policy
        run="tmfcli.commands.train:train_into",
        budget=Budget("tmfcli.io.budget:train_bytes"),
        report=Reading(("iterations.csv", "summary.csv"),
                       "tmfcli.analysis.report:train_section"),
        listing=Listing("exploitability", ("exploitability",),
                        (("algorithm",), ("spec", "train", "algorithm")), always=False)),
)}
