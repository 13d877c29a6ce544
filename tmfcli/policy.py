"""Policies of the N-agent system: time-indexed tables and population-aware softmax policies.

A policy maps the empirical distribution to action probabilities, batched over leading axes:

    probs(mu_hat (..., O), t) -> pi (..., O, A)      conditional pi(a | o, mu_hat); rows sum to 1

* ``TabularPolicy``: pi_t(a|o), ignores mu_hat (what ``tmf solve`` writes: ``policy.csv``).
* ``PopulationPolicy`` (project choice, MODEL.md section 1):

      pi_theta(a | o, mu_hat) = softmax_a( theta[t, o, a] + sum_j W[o, a, j] mu_hat(j) )

  with theta (T, O, A) and W (O, A, O); written as ``logits.csv`` (t, obs, action, theta) and
  ``mu_weights.csv`` (obs, action, mu_obs, weight).

On the deterministic mean-field flow a population-aware policy is evaluated at mu_bar_t, which
gives a time-indexed policy (``on_flow``); every exact metric of the mean field applies to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tmfcli import results
from tmfcli.errors import NumericalError, ResultsError
from tmfcli.flow import step
from tmfcli.games.base import Array
from tmfcli.setting import Setting
from tmfcli.setting import setting as setting_of
from tmfcli.spec import Spec

__all__ = [
    "Policy",
    "PolicyChoice",
    "PopulationPolicy",
    "TabularPolicy",
    "check_shape",
    "choose_policy",
    "fingerprint",
    "load_policy",
    "on_flow",
    "policy_table",
    "shape_of",
    "uniform_policy",
    "write_policy",
]

LOGITS = "logits.csv"
WEIGHTS = "mu_weights.csv"
TABLE = "policy.csv"


@runtime_checkable
class Policy(Protocol):
    """Anything that gives pi(a | o, mu_hat) at step t for a batch of distributions."""

    def probs(self, mu_hat: Array, t: int) -> Array:
        """mu_hat (..., O) -> pi (..., O, A), a conditional over actions."""
        ...


@dataclass(frozen=True)
class TabularPolicy:
    """A time-indexed policy pi (T, O, A); it does not look at the population."""

    pi: Array

    def probs(self, mu_hat: Array, t: int) -> Array:
        row = self.pi[t]
        return np.broadcast_to(row, mu_hat.shape[:-1] + row.shape)


@dataclass(frozen=True)
class PopulationPolicy:
    """softmax_a(theta[t,o,a] + sum_j W[o,a,j] mu_hat(j)); theta (T, O, A), W (O, A, O)."""

    theta: Array
    W: Array

    def logits(self, mu_hat: Array, t: int) -> Array:
        """theta[t] + W mu_hat, shape (..., O, A)."""
        return self.theta[t] + np.einsum("oaj,...j->...oa", self.W, mu_hat)

    def probs(self, mu_hat: Array, t: int) -> Array:
        z = self.logits(mu_hat, t)
        z = np.exp(z - z.max(axis=-1, keepdims=True))  # shift: exp never overflows
        return z / z.sum(axis=-1, keepdims=True)


def shape_of(policy: Policy) -> tuple[int, int, int] | None:
    """(T, O, A) of a known policy type, None for other implementations of the protocol."""
    if isinstance(policy, TabularPolicy):
        T, O, A = policy.pi.shape
        return int(T), int(O), int(A)
    if isinstance(policy, PopulationPolicy):
        T, O, A = policy.theta.shape
        return int(T), int(O), int(A)
    return None


def uniform_policy(n_obs: int, n_act: int, T: int) -> TabularPolicy:
    """pi_t(a|o) = 1/A everywhere."""
    return TabularPolicy(np.full((T, n_obs, n_act), 1.0 / n_act))


def on_flow(setting: Setting, policy: Policy) -> Array:
    """The time-indexed policy pi_t = policy(. | ., mu_bar_t) (T, O, A) along its own flow.

    mu_bar_0 = mu0 and mu_bar_{t+1} = Phi_t(mu_bar_t) with pi_t evaluated at mu_bar_t; for a
    ``TabularPolicy`` this is the table itself. The flow of the returned pi is mu_bar.
    """
    check_shape(policy, setting)
    if isinstance(policy, TabularPolicy):
        return np.asarray(policy.pi, dtype=float)
    game, T = setting.game, setting.T
    pi = np.empty((T, game.n_obs, game.n_act))
    mu = np.asarray(game.mu0, dtype=float)
    for t in range(T):
        pi[t] = policy.probs(mu, t)
        mu = step(mu, pi[t], game.transition(mu, t), game.idle_transition(mu, t),
                  float(setting.alpha[t]))
    if not np.all(np.isfinite(pi)) or np.abs(pi.sum(axis=-1) - 1).max() > 1e-9:
        raise NumericalError("the policy gave probabilities that do not sum to 1 on the flow",
                             "check the policy's logits and weights for overflow")
    return pi


def check_shape(policy: Policy, setting: Setting) -> None:
    """A tabular policy must have the setting's (T, O, A); ``ResultsError`` otherwise."""
    shape = shape_of(policy)
    need = (setting.T, setting.game.n_obs, setting.game.n_act)
    if shape is not None and shape != need:
        raise ResultsError(f"the policy has shape (T={shape[0]}, O={shape[1]}, A={shape[2]}) "
                           f"but the spec needs (T={need[0]}, O={need[1]}, A={need[2]})",
                           "use a policy of the same game and horizon")


# --- files -----------------------------------------------------------------------------------
def policy_table(pi: Array) -> pd.DataFrame:
    """pi (T, O, A) as rows t, obs, action, prob."""
    T, O, A = pi.shape
    t, o, a = np.meshgrid(np.arange(T), np.arange(O), np.arange(A), indexing="ij")
    return pd.DataFrame({"t": t.ravel(), "obs": o.ravel(), "action": a.ravel(),
                         "prob": pi.ravel()})


def write_policy(policy: Policy, directory: Path) -> None:
    """Write ``policy.csv`` (tabular) or ``logits.csv`` + ``mu_weights.csv`` (population-aware).

    Each file is written atomically (``results.write_csv``).
    """
    if isinstance(policy, TabularPolicy):
        results.write_csv(policy_table(policy.pi), directory / TABLE)
        return
    if isinstance(policy, PopulationPolicy):
        T, O, A = policy.theta.shape
        t, o, a = np.meshgrid(np.arange(T), np.arange(O), np.arange(A), indexing="ij")
        results.write_csv(pd.DataFrame({"t": t.ravel(), "obs": o.ravel(), "action": a.ravel(),
                                        "theta": policy.theta.ravel()}), directory / LOGITS)
        o, a, j = np.meshgrid(np.arange(O), np.arange(A), np.arange(O), indexing="ij")
        results.write_csv(pd.DataFrame({"obs": o.ravel(), "action": a.ravel(),
                                        "mu_obs": j.ravel(), "weight": policy.W.ravel()}),
                          directory / WEIGHTS)
        return
    raise TypeError(f"cannot write a policy of type {type(policy).__name__}")


def load_policy(directory: Path, n_obs: int, n_act: int, T: int,
                game: str | None = None) -> Policy:
    """Read the policy in ``directory``: ``logits.csv`` + ``mu_weights.csv`` if present, else
    ``policy.csv``. With ``game``, a manifest beside the files must name the same game.

    Raises ``ResultsError`` for a missing directory or file, another game, or a wrong shape.
    """
    directory = Path(directory)
    hint = "point --policy at a directory written by 'tmf solve' or 'tmf train', or use " \
        "--policy uniform"
    if not directory.is_dir():
        raise ResultsError(f"policy directory {directory} not found", hint)
    if game is not None:
        data = results.read_manifest(directory) or {}
        other = data.get("spec", {}).get("game", {}).get("name") if isinstance(
            data.get("spec"), dict) else None
        if other is not None and other != game:
            raise ResultsError(f"the policy in {directory} is for game {other!r}, not {game!r}",
                               "solve the same game first, or use --policy uniform")
    if (directory / LOGITS).is_file():
        return _read_population(directory, n_obs, n_act, T)
    if not (directory / TABLE).is_file():
        raise ResultsError(f"no {TABLE} or {LOGITS} in {directory}", hint)
    return TabularPolicy(_read_tabular(directory, n_obs, n_act, T))


def _read_tabular(directory: Path, n_obs: int, n_act: int, horizon: int) -> Array:
    """Read a tabular policy (``policy.csv``: t, obs, action, prob) of shape (T, O, A).

    The file must match the game's observations and actions and cover ``horizon`` steps.
    """
    path = directory / TABLE
    frame = pd.read_csv(path)
    missing = {"t", "obs", "action", "prob"} - set(frame.columns)
    if missing:
        raise ResultsError(f"{path} lacks columns {sorted(missing)}",
                           "a policy file has columns t, obs, action, prob")
    T = int(frame["t"].max()) + 1
    O, A = int(frame["obs"].max()) + 1, int(frame["action"].max()) + 1
    if (O, A) != (n_obs, n_act) or T != horizon or len(frame) != T * O * A:
        raise ResultsError(f"{path} holds a policy of shape (T={T}, O={O}, A={A}) but the "
                           f"spec needs (T={horizon}, O={n_obs}, A={n_act})",
                           "solve the same game and horizon first, or use --policy uniform")
    pi = np.zeros((T, O, A))
    pi[frame["t"].to_numpy(), frame["obs"].to_numpy(), frame["action"].to_numpy()] = \
        frame["prob"].to_numpy()
    if np.abs(pi.sum(axis=-1) - 1).max() > 1e-6 or pi.min() < 0:
        raise ResultsError(f"{path}: probabilities do not sum to 1 at every (t, obs)",
                           "write a normalised policy")
    return pi


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise ResultsError(f"{path} not found",
                           f"a population-aware policy needs both {LOGITS} and {WEIGHTS}")
    frame = pd.read_csv(path)
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ResultsError(f"{path} lacks columns {sorted(missing)}",
                           f"the file has columns {', '.join(columns)} (docs/simulate.md)")
    if not np.all(np.isfinite(frame[columns[-1]].to_numpy(dtype=float))):
        raise ResultsError(f"{path} holds non-finite values", "write finite numbers")
    return frame


def _read_population(directory: Path, n_obs: int, n_act: int, T: int) -> PopulationPolicy:
    logits = _read_table(directory / LOGITS, ["t", "obs", "action", "theta"])
    weights = _read_table(directory / WEIGHTS, ["obs", "action", "mu_obs", "weight"])
    shape = (int(logits["t"].max()) + 1, int(logits["obs"].max()) + 1,
             int(logits["action"].max()) + 1)
    wshape = (int(weights["obs"].max()) + 1, int(weights["action"].max()) + 1,
              int(weights["mu_obs"].max()) + 1)
    need = (T, n_obs, n_act)
    if shape != need or len(logits) != T * n_obs * n_act or \
            wshape != (n_obs, n_act, n_obs) or len(weights) != n_obs * n_act * n_obs:
        raise ResultsError(f"{directory} holds a policy of shape (T={shape[0]}, O={shape[1]}, "
                           f"A={shape[2]}) with weights {wshape} but the spec needs "
                           f"(T={T}, O={n_obs}, A={n_act}) with weights "
                           f"{(n_obs, n_act, n_obs)}",
                           "train the same game and horizon first, or use --policy uniform")
    theta = np.zeros(need)
    theta[logits["t"].to_numpy(), logits["obs"].to_numpy(), logits["action"].to_numpy()] = \
        logits["theta"].to_numpy(dtype=float)
    W = np.zeros((n_obs, n_act, n_obs))
    W[weights["obs"].to_numpy(), weights["action"].to_numpy(), weights["mu_obs"].to_numpy()] = \
        weights["weight"].to_numpy(dtype=float)
    return PopulationPolicy(theta=theta, W=W)


def fingerprint(policy: Policy) -> str:
    """A short hash of the policy's numbers (decides whether a result is up to date)."""
    digest = hashlib.sha256()
    arrays = [policy.pi] if isinstance(policy, TabularPolicy) else \
        [policy.theta, policy.W] if isinstance(policy, PopulationPolicy) else []
    if not arrays:
        digest.update(repr(policy).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


# --- the --policy option -----------------------------------------------------------------------
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
        from tmfcli.equilibrium import solve

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
