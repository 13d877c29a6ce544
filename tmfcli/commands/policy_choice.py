"""The ``--policy`` option of simulate and bound-check: which policy a command runs, and how a
policy of T_policy steps is read in a setting of another number of steps.

Choices: the spec's own equilibrium (default), ``synchronous`` (the equilibrium of the spec with
B = N, same horizon), ``uniform``, or a policy directory. An equilibrium is solved in-process
(``tmf solve`` without restarts) unless ``results/<name>/solve`` holds a complete solve of the
same inputs (``commands.solve.same_equilibrium``), whose ``policy.csv`` is then read instead.

**Retiming.** A policy with T_policy steps, used in a setting with T steps, is read at step

    s(t) = floor(t T_policy / T),   t = 0..T-1,

the step reached after the same fraction of the horizon. In rounds (T = ceil(H N / B)) with a
synchronous policy (T_policy = H) that is round floor(t B / N): round k's policy in round k
(exactly when B divides H N). This is how bound-check reads one policy in all its regimes, and
how ``simulate --policy synchronous`` reads the synchronous equilibrium.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tmfcli.commands.solve import label, same_equilibrium, solve
from tmfcli.errors import ResultsError
from tmfcli.io import results, runs
from tmfcli.io.policy_files import fingerprint, load_policy
from tmfcli.io.resolve import setting as setting_of
from tmfcli.io.spec_types import Spec
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, TabularPolicy, uniform_policy
from tmfcli.model.setting import ALL

SYNCHRONOUS = "synchronous"


# --------------------------------------------------------------------------------------------
# retiming
# --------------------------------------------------------------------------------------------
def policy_steps(T_cell: int, T_policy: int, stages: int = 1) -> np.ndarray:
    """s(t) = floor(t T_policy / T_cell) for t = 0..T_cell-1: the policy step used at step t.

    A timed game has ``stages`` = 2 per-step indices per decision step (decision, time): the
    decision steps are retimed as above and each stage keeps its own, so a decision is always
    read from a decision row."""
    t = np.arange(T_cell, dtype=np.int64)
    decision = ((t // stages) * (T_policy // stages)) // (T_cell // stages)
    return stages * decision + t % stages


class Retimed:
    """A population-aware policy read at remapped steps: probs(mu, t) = base(mu, s(t))."""

    def __init__(self, base: Any, steps: np.ndarray) -> None:
        self.base = base
        self.steps = steps

    def probs(self, mu_hat: Array, t: int) -> Array:
        return np.asarray(self.base.probs(mu_hat, int(self.steps[t])))


def cell_policy(policy: Any, steps: np.ndarray) -> Any:
    """The policy seen in a setting with its own number of steps (``steps`` = s(t))."""
    if isinstance(policy, TabularPolicy):
        return TabularPolicy(policy.pi[steps])
    return Retimed(policy, steps)


# --------------------------------------------------------------------------------------------
# the choice
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chosen:
    """A policy as computed or read: ``steps`` (T_policy) is its own number of steps;
    ``converged`` is None unless it was solved (in-process or reused from a solve directory)."""

    policy: Policy
    steps: int
    description: str
    converged: bool | None = None
    stop_reason: str = ""
    reused_from: Path | None = None

    def on_steps(self, T: int, stages: int = 1) -> Policy:
        """The policy read in a setting of T steps, ``stages`` per decision step (itself when
        T = T_policy)."""
        return self.policy if T == self.steps else cell_policy(
            self.policy, policy_steps(T, self.steps, stages))


@dataclass(frozen=True)
class PolicyChoice:
    """The policy a command runs, as chosen with ``--policy``, before it is computed.

    ``key`` identifies it in the hash of a result ("equilibrium", "synchronous", "uniform", or
    the fingerprint of a policy read from a directory), so a result is reused only for the same
    policy; ``loaded`` is None for an equilibrium, which ``get`` solves (or reuses) on demand.
    """

    key: str
    description: str
    loaded: Policy | None = None
    steps: int = 0
    solved: Path | None = None

    def get(self, spec: Spec,
            on_progress: Callable[[str, int, int], None] | None = None) -> Chosen:
        """The policy with its description (for an equilibrium, with its exploitability)."""
        if self.loaded is not None:
            return Chosen(self.loaded, self.steps, self.description)
        sync = self.key == SYNCHRONOUS
        target = synchronous_spec(spec) if sync else spec
        saved = saved_equilibrium(target, self.solved) if self.solved is not None else None
        if saved is not None:
            pi, converged, exploitability, reason = saved
        else:
            run = solve(target, on_progress=on_progress, restarts=0).result
            ev = run.evaluation
            pi, converged, exploitability, reason = \
                ev.policy, run.converged, ev.exploitability, run.stop_reason
        text = label(converged, exploitability)
        if sync:
            text = f"synchronous {text}" if converged else f"synchronous, {text}"
        return Chosen(TabularPolicy(pi), setting_of(target).T, text, converged, reason,
                      reused_from=self.solved if saved is not None else None)


def synchronous_spec(spec: Spec) -> Spec:
    """The spec with every agent acting at every step (batch ``all``, alpha 1), same horizon:
    the same number of rounds, or the same number of steps."""
    pop = spec.population
    return replace(spec, population=replace(pop, batch=None if pop.agents is None else ALL,
                                            alpha=None))


def choose_policy(spec: Spec, choice: str | None, solved: Path | None = None) -> PolicyChoice:
    """``--policy``: None (the spec's equilibrium), "synchronous", "uniform", or a policy
    directory, read now for the spec's own setting (errors are ``ResultsError``).

    ``solved`` is a ``tmf solve`` result directory to reuse when it holds the same equilibrium.
    """
    own = setting_of(spec)
    game = own.game
    if choice is None:
        return PolicyChoice("equilibrium", "equilibrium of the spec", solved=solved)
    if choice == SYNCHRONOUS:
        return PolicyChoice(SYNCHRONOUS, "equilibrium of the synchronous spec (B = N)",
                            solved=solved)
    if choice == "uniform":
        return PolicyChoice("uniform", "uniform", uniform_policy(game.n_obs, game.n_act, own.T),
                            own.T)
    # a command directory (results/<name>/solve) stands for its latest run
    directory = runs.resolve(Path(choice))
    policy = load_policy(directory, game.n_obs, game.n_act, own.T, game=spec.game.name,
                         obs_labels=game.obs_labels, act_labels=game.act_labels,
                         alpha=own.alpha)
    return PolicyChoice(fingerprint(policy), str(directory), policy, own.T)


def saved_equilibrium(spec: Spec,
                      directory: Path) -> tuple[Array, bool, float, str] | None:
    """pi (T, O, A), converged, exploitability and stop reason of a complete ``tmf solve``
    directory of the same equilibrium as ``spec`` (``commands.solve.same_equilibrium``), or
    None when there is none (or it cannot be read: then the spec is solved instead)."""
    try:
        data = results.read_manifest(directory)
    except ResultsError:  # read strictly; an unreadable manifest is no saved equilibrium
        return None
    if data is None or data.get("command") != "solve" or not isinstance(data.get("spec"), dict) \
            or not same_equilibrium(data["spec"], spec.to_dict()):
        return None
    converged, exploitability = data.get("converged"), data.get("exploitability")
    if not isinstance(converged, bool) or not isinstance(exploitability, int | float):
        return None
    own = setting_of(spec)
    try:
        policy = load_policy(directory, own.game.n_obs, own.game.n_act, own.T,
                             obs_labels=own.game.obs_labels, act_labels=own.game.act_labels)
    except ResultsError:
        return None
    if not isinstance(policy, TabularPolicy):
        return None
    return policy.pi, converged, float(exploitability), str(data.get("stop_reason", ""))


def solved_run(spec: Spec) -> Path | None:
    """The ``tmf solve`` run of the store that may hold the spec's equilibrium: the run of this
    very spec (``results/<name>/solve/<hash>``, or that cell of a solve sweep), else the latest
    solve of the spec's name (``saved_equilibrium`` then checks that its inputs are the same);
    None when there is none."""
    root = runs.command_root(spec.name, "solve")
    name = results.spec_hash(spec, "solve")
    for own in (root / name, *sorted(root.glob(f"sweep-*/{name}"))):
        if (own / runs.MANIFEST).is_file():
            return own
    latest = runs.resolve(root)
    data = results.read_manifest(latest) or {}
    return latest if data.get("kind") != "sweep" else None  # a sweep's tables are stacked
