"""Result directories: tidy CSV tables written atomically, and a manifest written last.

A directory is complete when its ``manifest.yaml`` exists: every table is written to a temporary
file and renamed into place, and the manifest goes last, so an interrupted run never leaves a
directory that looks complete. The manifest records the resolved spec and its hash; a rerun of
the same spec finds the hash and reuses the results instead of recomputing them.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml

from tmfcli import __version__
from tmfcli.io import runs
from tmfcli.io.spec import Spec
from tmfcli.model.games.base import Array

MANIFEST = "manifest.yaml"


@contextmanager
def atomic(path: Path) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table atomically; floats in full precision so reruns give identical bytes."""
    with atomic(path) as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")


def write_yaml(data: dict[str, Any], path: Path) -> None:
    with atomic(path) as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


def spec_hash(spec: Spec, command: str) -> str:
    """Hash of the spec blocks ``command`` reads and the command (``runs.run_hash``)."""
    return runs.run_hash(spec.to_dict(), command)


def versions() -> dict[str, str | None]:
    return {"tmf": __version__, "git_commit": runs.git_commit(),
            "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__}


def manifest(spec: Spec, command: str, **extra: Any) -> dict[str, Any]:
    """The manifest of a result directory: what ran, on what, where, when, with which outcome.

    ``status: complete`` is what makes a run done; ``versions`` holds tmf's version and git
    commit, Python's, numpy's and pandas'; ``runs.provenance`` adds start and end time (UTC)
    and the host.
    """
    return {
        "status": "complete",
        "command": command,
        "command_line": runs.command_line(),
        "spec_file": spec.source,
        "spec_hash": spec_hash(spec, command),
        "seed": spec.seed,
        "versions": versions(),
        **runs.provenance(),
        **extra,
        "spec": spec.to_dict(),
    }


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def is_up_to_date(directory: Path, spec: Spec, command: str) -> bool:
    """True when ``directory`` holds a complete result of this very spec and command."""
    data = read_manifest(directory)
    return data is not None and data.get("status", "complete") == "complete" and \
        data.get("spec_hash") == spec_hash(spec, command)


# --- tables of arrays ----------------------------------------------------------------------
def flow_table(mu: Array, obs_labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """mu (T+1, O) as rows t, obs, [obs_label,] mu (the label beside the code when known)."""
    T1, O = mu.shape
    t, o = np.meshgrid(np.arange(T1), np.arange(O), indexing="ij")
    labels = {"obs_label": np.asarray(obs_labels, dtype=object)[o.ravel()]} if obs_labels \
        else {}
    return pd.DataFrame({"t": t.ravel(), "obs": o.ravel(), **labels, "mu": mu.ravel()})
