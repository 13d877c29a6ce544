"""The ``--policy`` option of simulate and bound-check: which policy a command runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tmfcli.io.policy_files import fingerprint, load_policy
from tmfcli.io.spec import Spec
from tmfcli.io.spec import setting as setting_of
from tmfcli.model.policy import Policy, TabularPolicy, uniform_policy


@dataclass(frozen=True)
class PolicyChoice:
    """The policy a command runs, as chosen with ``--policy``, before it is computed.

    ``key`` identifies it in the hash of a result ("equilibrium", "uniform", or the fingerprint
    of a policy read from a directory), so a result is reused only for the same policy;
    ``loaded`` is None for the spec's own equilibrium, which ``get`` solves on demand.
    """

    key: str
    description: str
    loaded: Policy | None = None

    def get(self, spec: Spec,
            on_progress: Callable[[str, int, int], None] | None = None) -> tuple[Policy, str]:
        """The policy and its description (for the equilibrium, with its exploitability)."""
        if self.loaded is not None:
            return self.loaded, self.description
        from tmfcli.commands.solve import solve

        ev = solve(spec, on_progress=on_progress, restarts=0).evaluation
        return TabularPolicy(ev.policy), f"equilibrium (exploitability {ev.exploitability:.2e})"


def choose_policy(spec: Spec, choice: str | None) -> PolicyChoice:
    """``--policy``: None (the spec's equilibrium), "uniform", or a policy directory, read now
    for the spec's own setting (errors are ``ResultsError``)."""
    own = setting_of(spec)
    game = own.game
    if choice is None:
        return PolicyChoice("equilibrium", "equilibrium of the spec")
    if choice == "uniform":
        return PolicyChoice("uniform", "uniform", uniform_policy(game.n_obs, game.n_act, own.T))
    policy = load_policy(Path(choice), game.n_obs, game.n_act, own.T, game=spec.game.name)
    return PolicyChoice(fingerprint(policy), choice, policy)
