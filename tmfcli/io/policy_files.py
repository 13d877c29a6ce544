"""Policy files: ``policy.csv`` (tabular) and ``logits.csv`` + ``mu_weights.csv``
(population-aware), written atomically and read back strictly (docs/simulate.md).

``logits.csv`` of a policy indexed by step has columns t, obs, action, theta (one row per step);
one indexed per round or not at all (``time_index`` round / none) has columns k, obs, action,
theta, time_index, with k the round (or 0). A file without a time_index column is step-indexed,
so files written before the time index existed read as before.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmfcli.errors import ResultsError
from tmfcli.io import results, user_files
from tmfcli.model.games.base import Array
from tmfcli.model.policy import Policy, PopulationPolicy, TabularPolicy, time_rows

LOGITS = "logits.csv"
WEIGHTS = "mu_weights.csv"
TABLE = "policy.csv"
LABELS = ("obs_label", "action_label", "mu_obs_label")


Labels = tuple[str, ...]


def _columns(codes: dict[str, np.ndarray], labels: dict[str, Labels]) -> dict[str, object]:
    """Integer code columns, each followed by its ``<name>_label`` column when labels are
    known (``obs`` -> ``obs_label``, ``action`` -> ``action_label``, ``mu_obs`` ->
    ``mu_obs_label``): the same convention in every table."""
    out: dict[str, object] = {}
    for name, code in codes.items():
        out[name] = code.ravel()
        names = labels.get(name, ())
        if names:
            out[f"{name}_label"] = np.asarray(names, dtype=object)[code.ravel()]
    return out


def policy_table(pi: Array, obs_labels: Labels = (), act_labels: Labels = ()) -> pd.DataFrame:
    """pi (T, O, A) as rows t, obs, [obs_label,] action, [action_label,] prob."""
    T, O, A = pi.shape
    t, o, a = np.meshgrid(np.arange(T), np.arange(O), np.arange(A), indexing="ij")
    return pd.DataFrame({"t": t.ravel(), **_columns({"obs": o, "action": a},
                                                    {"obs": obs_labels, "action": act_labels}),
                         "prob": pi.ravel()})


def write_policy(policy: Policy, directory: Path, obs_labels: Labels = (),
                 act_labels: Labels = ()) -> None:
    """Write ``policy.csv`` (tabular) or ``logits.csv`` + ``mu_weights.csv`` (population-aware),
    with label columns beside the codes when the game's labels are given.

    Each file is written atomically (``results.write_csv``).
    """
    labels = {"obs": obs_labels, "action": act_labels, "mu_obs": obs_labels}
    if isinstance(policy, TabularPolicy):
        results.write_csv(policy_table(policy.pi, obs_labels, act_labels), directory / TABLE)
        return
    if isinstance(policy, PopulationPolicy):
        T, O, A = policy.theta.shape
        t, o, a = np.meshgrid(np.arange(T), np.arange(O), np.arange(A), indexing="ij")
        index = {"t": t.ravel()} if policy.index is None else {"k": t.ravel()}
        extra = {} if policy.index is None else {"time_index": policy.time_index}
        results.write_csv(pd.DataFrame({**index,
                                        **_columns({"obs": o, "action": a}, labels),
                                        "theta": policy.theta.ravel(), **extra}),
                          directory / LOGITS)
        o, a, j = np.meshgrid(np.arange(O), np.arange(A), np.arange(O), indexing="ij")
        results.write_csv(pd.DataFrame({**_columns({"obs": o, "action": a, "mu_obs": j},
                                                   labels),
                                        "weight": policy.W.ravel()}), directory / WEIGHTS)
        return
    raise TypeError(f"cannot write a policy of type {type(policy).__name__}")


def load_policy(directory: Path, n_obs: int, n_act: int, T: int,
                game: str | None = None, obs_labels: Labels = (),
                act_labels: Labels = (), alpha: Array | None = None) -> Policy:
    """Read the policy in ``directory``: ``logits.csv`` + ``mu_weights.csv`` if present, else
    ``policy.csv``. With ``game``, a manifest beside the files must name the same game. With
    the game's labels, files that carry label columns are read by name, and names that are not
    the game's are refused (a policy of another game); files without labels are read by code.
    ``alpha`` (T,) gives the rounds of a policy indexed per round (``policy.time_rows``).

    Raises ``ResultsError`` for a missing directory or file, another game, or a wrong shape.
    """
    directory = Path(directory)
    hint = "point --policy at a directory written by 'tmf solve' or 'tmf train', or use " \
        "--policy uniform"
    if not directory.is_dir():
        raise ResultsError(f"policy directory {directory} not found", hint)
    if game is not None:
        data = results.read_manifest(directory) or {}
        spec = data.get("spec")
        if spec is not None and not (isinstance(spec, dict)
                                     and isinstance(spec.get("game", {}), dict)):
            raise ResultsError(f"{directory / results.MANIFEST}: 'spec' is not a spec mapping",
                               "point --policy at a directory written by tmf")
        other = spec.get("game", {}).get("name") if isinstance(spec, dict) else None
        if other is not None and other != game:
            raise ResultsError(f"the policy in {directory} is for game {other!r}, not {game!r}",
                               "solve the same game first, or use --policy uniform")
    # present, not necessarily regular: a FIFO, a device or a folder there is named as such by
    # the strict reader (user_files), never taken for a missing file
    if (directory / LOGITS).exists():
        return _read_population(directory, n_obs, n_act, T, obs_labels, act_labels, alpha)
    if not (directory / TABLE).exists():
        raise ResultsError(f"no {TABLE} or {LOGITS} in {directory}", hint)
    return TabularPolicy(_read_tabular(directory, n_obs, n_act, T, obs_labels, act_labels))


def read_table(path: Path, index: list[str], value: str) -> pd.DataFrame:
    """Read a policy table strictly: UTF-8 CSV with the columns ``index`` (whole numbers >= 0)
    and ``value`` (finite numbers), at least one row; label columns (``LABELS``) pass through.

    Returns a frame with int64 index columns and a float64 value column; every problem is a
    ``ResultsError`` naming the file, the column and the first bad row.
    """
    columns = [*index, value]
    fix = f"a policy table has columns {', '.join(columns)} (docs/simulate.md)"
    frame = user_files.result_table(path, fix, "policy table", dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path} lacks columns {missing}", fix)
    if frame.empty:
        raise ResultsError(f"{path} has a header but no rows", fix)
    out: dict[str, Any] = {}
    for column in columns:
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(float)
        finite = np.isfinite(numbers)
        whole = finite & (numbers >= 0) & (np.floor(numbers) == numbers) & (numbers < 2**53) \
            if column in index else finite
        if not whole.all():
            row = int(np.argmin(whole))
            kind = "a whole number >= 0" if column in index else "a finite number"
            shown = frame[column].iloc[row][:20]
            raise ResultsError(f"{path}: column {column!r} at row {row + 2} holds {shown!r}, "
                               f"not {kind}", fix)
        out[column] = numbers.astype(np.int64) if column in index else numbers
    for label in LABELS:  # names beside the codes are kept for ``_by_name``
        if label in frame.columns:
            out[label] = frame[label].to_numpy()
    return pd.DataFrame(out)  # repeats are checked after names are mapped (``no_repeats``)


def no_repeats(table: pd.DataFrame, index: list[str], path: Path) -> None:
    """Refuse a table in which a combination of the ``index`` columns appears twice."""
    repeated = table.duplicated(index).to_numpy()
    if repeated.any():
        row = int(np.argmax(repeated))
        raise ResultsError(f"{path}: row {row + 2} repeats ({', '.join(index)}) of an earlier "
                           "row", "give each combination once")


def _by_name(frame: pd.DataFrame, path: Path, labels: dict[str, Labels]) -> pd.DataFrame:
    """Replace code columns by the positions of their labels in the game, when the file has
    label columns and the game's labels are known; refuse names the game does not have."""
    frame = frame.copy()
    for column, names in labels.items():
        label = f"{column}_label"
        if not names or label not in frame.columns:
            continue
        position = {name: i for i, name in enumerate(names)}
        given = frame[label].astype(str)
        unknown = sorted(set(given) - set(position))
        if unknown:
            what = "actions" if column == "action" else "observations"
            raise ResultsError(f"{path} is a policy of another game: its {what} "
                               f"{', '.join(unknown[:5])} are not among this game's "
                               f"({', '.join(names)})",
                               "solve this game first, or use --policy uniform")
        frame[column] = given.map(position).to_numpy(dtype=np.int64)
    return frame


def _read_tabular(directory: Path, n_obs: int, n_act: int, horizon: int,
                  obs_labels: Labels = (), act_labels: Labels = ()) -> Array:
    """Read a tabular policy (``policy.csv``: t, obs, action, prob, and optionally obs_label,
    action_label) of shape (T, O, A).

    The file must match the game's observations and actions, cover ``horizon`` steps, and hold
    probabilities (non-negative, summing to 1 at every (t, obs)).
    """
    path = directory / TABLE
    frame = read_table(path, ["t", "obs", "action"], "prob")
    frame = _by_name(frame, path, {"obs": obs_labels, "action": act_labels})
    no_repeats(frame, ["t", "obs", "action"], path)
    T = int(frame["t"].max()) + 1
    O, A = int(frame["obs"].max()) + 1, int(frame["action"].max()) + 1
    if (O, A) != (n_obs, n_act) or T != horizon or len(frame) != T * O * A:
        raise ResultsError(f"{path} holds a policy of shape (T={T}, O={O}, A={A}) but the "
                           f"spec needs (T={horizon}, O={n_obs}, A={n_act})",
                           "solve the same game and horizon first, or use --policy uniform")
    prob = frame["prob"].to_numpy()
    if (prob < 0).any() or (prob > 1).any():
        row = int(np.argmax((prob < 0) | (prob > 1)))
        raise ResultsError(f"{path}: row {row + 2} has probability {prob[row]:g}, outside "
                           "[0, 1]", "write a policy of probabilities")
    pi = np.zeros((T, O, A))
    pi[frame["t"].to_numpy(), frame["obs"].to_numpy(), frame["action"].to_numpy()] = prob
    if np.abs(pi.sum(axis=-1) - 1).max() > 1e-6:
        raise ResultsError(f"{path}: probabilities do not sum to 1 at every (t, obs)",
                           "write a normalised policy")
    return pi


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise ResultsError(f"{path} not found",
                           f"a population-aware policy needs both {LOGITS} and {WEIGHTS}")
    return read_table(path, columns[:-1], columns[-1])


def _time_index(directory: Path, T: int, alpha: Array | None) -> tuple[str, np.ndarray | None]:
    """The time index of ``logits.csv`` and k(t) (T,) (None for a step index)."""
    header = user_files.result_table(directory / LOGITS, "", "policy table", dtype=str,
                                     keep_default_na=False, nrows=1)
    if "time_index" not in header.columns:
        return "step", None
    rule = str(header["time_index"].iloc[0]) if len(header) else "none"
    if rule not in ("round", "none"):
        raise ResultsError(f"{directory / LOGITS}: unknown time_index {rule!r}",
                           "write round or none (or a file with a t column for steps)")
    if rule == "round" and alpha is None:
        raise ResultsError(f"{directory / LOGITS} is indexed per round but the setting has no "
                           "active fractions", "give the spec's population")
    return rule, time_rows(rule, alpha if alpha is not None else np.ones(T))


def _read_population(directory: Path, n_obs: int, n_act: int, T: int,
                     obs_labels: Labels = (), act_labels: Labels = (),
                     alpha: Array | None = None) -> PopulationPolicy:
    labels = {"obs": obs_labels, "action": act_labels, "mu_obs": obs_labels}
    rule, index = _time_index(directory, T, alpha) if (directory / LOGITS).exists() else \
        ("step", None)
    key = "t" if index is None else "k"
    logits = _by_name(_read_table(directory / LOGITS, [key, "obs", "action", "theta"]),
                      directory / LOGITS, labels)
    weights = _by_name(_read_table(directory / WEIGHTS, ["obs", "action", "mu_obs", "weight"]),
                       directory / WEIGHTS, labels)
    no_repeats(logits, [key, "obs", "action"], directory / LOGITS)
    no_repeats(weights, ["obs", "action", "mu_obs"], directory / WEIGHTS)
    shape = (int(logits[key].max()) + 1, int(logits["obs"].max()) + 1,
             int(logits["action"].max()) + 1)
    wshape = (int(weights["obs"].max()) + 1, int(weights["action"].max()) + 1,
              int(weights["mu_obs"].max()) + 1)
    K = T if index is None else int(index.max()) + 1
    need = (K, n_obs, n_act)
    if shape != need or len(logits) != K * n_obs * n_act or \
            wshape != (n_obs, n_act, n_obs) or len(weights) != n_obs * n_act * n_obs:
        unit = "T" if index is None else "rounds" if rule == "round" else "K"
        raise ResultsError(f"{directory} holds a policy of shape ({unit}={shape[0]}, "
                           f"O={shape[1]}, A={shape[2]}) with weights {wshape} but the spec "
                           f"needs ({unit}={K}, O={n_obs}, A={n_act}) with weights "
                           f"{(n_obs, n_act, n_obs)}",
                           "train the same game and horizon first, or use --policy uniform")
    theta = np.zeros(need)
    theta[logits[key].to_numpy(), logits["obs"].to_numpy(), logits["action"].to_numpy()] = \
        logits["theta"].to_numpy(dtype=float)
    W = np.zeros((n_obs, n_act, n_obs))
    W[weights["obs"].to_numpy(), weights["action"].to_numpy(), weights["mu_obs"].to_numpy()] = \
        weights["weight"].to_numpy(dtype=float)
    return PopulationPolicy(theta=theta, W=W, index=index, time_index=rule)


def fingerprint(policy: Policy) -> str:
    """A short hash of the policy's numbers (decides whether a result is up to date)."""
    digest = hashlib.sha256()
    arrays = [policy.pi] if isinstance(policy, TabularPolicy) else \
        [policy.theta, policy.W] + ([] if policy.index is None else [policy.index]) \
        if isinstance(policy, PopulationPolicy) else []
    if not arrays:
        digest.update(repr(policy).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


