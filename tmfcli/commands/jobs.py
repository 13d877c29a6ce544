"""The commands a sweep can run, as one table: what identifies a run, what it writes, and the
function that writes it.

A job runs one command on one (cell's) spec into one directory, with the manifest last. Jobs
are looked up by name, so a worker process or a Dask worker on another machine needs only the
name, the spec and the options. Adding a command to sweeps is one line in ``COMMANDS``: its
name, the CSV tables it writes, and ``"module:function"`` of a function
``(spec, directory, options, on_progress) -> None`` that writes them and the manifest (with
``results.manifest(spec, job.key(spec, options), ...)``, so that reruns find it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tmfcli.io.spec_types import Spec

Progress = Callable[[str, int, int], None]  # (phase, done, total)
Run = Callable[[Spec, Path, "Options", Progress | None], None]


@dataclass(frozen=True)
class Options:
    """Command-line choices that are not spec keys."""

    policy: str | None = None  # simulate, bound-check: --policy (part of the run's identity)
    workers: int | None = None  # bound-check: processes inside one run (None: its default)
    force: bool = False  # replace a result of another spec; bound-check: start afresh
    scheduler: str | None = None  # a run with a grid of its own: send the grid to this cluster


@dataclass(frozen=True)
class Job:
    """A command as sweeps see it.

    ``target`` ("module:function") writes one run's tables and manifest; ``tables`` are the
    CSV files a sweep stacks; ``policy``: the run depends on ``--policy`` (its fingerprint is
    part of the run's identity); ``check`` ("module:function" taking the spec) validates a
    spec before any work, e.g. simulate needs a finite population; ``grid``: one run spreads
    cells of its own (bound-check's N x B), so a single run on a cluster stays here and sends
    them (``Options.scheduler``); ``stages``: the run stages, locks and swaps in its own
    result directory (else ``executors.execute`` hands it a stage, ``results.new_result``).
    """

    name: str
    tables: tuple[str, ...]
    target: str
    policy: bool = False
    check: str | None = None
    grid: bool = False
    stages: bool = False

    def key(self, spec: Spec, options: Options) -> str:
        """The run's identity beyond the spec blocks it reads (``runs.READS``): the command,
        and the policy's fingerprint for commands that run a policy. Loads and checks the
        policy, so a bad one fails here, before any run."""
        if self.check is not None:
            _load(self.check)(spec)
        if not self.policy:
            return self.name
        from tmfcli.commands.policy_choice import choose_policy

        return f"{self.name} --policy {choose_policy(spec, options.policy).key}"

    def run(self, spec: Spec, directory: Path, options: Options,
            on_progress: Progress | None) -> None:
        _load(self.target)(spec, directory, options, on_progress)


def _load(target: str) -> Callable[..., None]:
    """The function named by "module:function", imported when first needed."""
    module, _, name = target.partition(":")
    function: Callable[..., None] = getattr(importlib.import_module(module), name)
    return function


COMMANDS: dict[str, Job] = {job.name: job for job in (
    Job("solve", ("iterations.csv", "policy.csv", "flow.csv"),
        "tmfcli.commands.solve:solve_into"),
    Job("simulate", ("trajectory.csv", "replicas.csv", "summary.csv", "bands.csv"),
        "tmfcli.commands.simulate:simulate_into", policy=True,
        check="tmfcli.commands.simulate:needs_agents"),
    Job("bound-check", ("replicas.csv", "cells.csv", "fits.csv"),
        "tmfcli.commands.bound_check:bound_check_into", policy=True, grid=True, stages=True),
    # the learned policy: logits.csv and mu_weights.csv (tmf-pg and the other gradients), or
    # policy.csv (mf-q); a sweep stacks those its cells have
    Job("train", ("iterations.csv", "summary.csv", "logits.csv", "mu_weights.csv",
                  "policy.csv"), "tmfcli.commands.train:train_into"),
)}
