"""The run store: where a run's results go by default, what a manifest says about where and
when it ran, and the listing of ``tmf runs``.

**Naming.** A run of ``command`` on a spec goes to

    results/<name>/<command>/<hash>/

where ``<hash>`` covers only the spec blocks the command reads (its ``reads`` in
``tmfcli.command_registry.COMMANDS``), plus what the
command adds to its identity (e.g. simulate's policy). So ``--set simulate.replicas=50`` on
``solve`` finds the same directory and reuses it, while a key that ``solve`` reads leads to a
new directory and never overwrites another run. ``results/<name>/<command>/latest`` points to
the newest run (a symbolic link, or a one-line file naming it where links are not possible).
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tmfcli.command_registry import COMMANDS

MANIFEST = "manifest.yaml"
FAILED = "failed.yaml"
LATEST = "latest"
LATEST_BYTES = 4096  # read of a latest file at most (tmf writes one run's name)
ROOT = Path("results")

def read_blocks(spec_dict: dict[str, Any], command: str) -> dict[str, Any]:
    """The part of a resolved spec (``Spec.to_dict()``) that ``command`` reads; an unknown
    command reads everything but the name."""
    described = COMMANDS.get(command)
    if described is None:
        return {k: v for k, v in spec_dict.items() if k != "name"}
    return {k: spec_dict[k] for k in described.reads if k in spec_dict}


def run_hash(spec_dict: dict[str, Any], key: str) -> str:
    """16 hex digits identifying a run: ``key`` is the command, possibly followed by what else
    defines the run ("simulate --policy <fingerprint>"), and only the blocks it reads count."""
    command = key.split()[0] if key.split() else key
    text = yaml.safe_dump({"command": key, "spec": read_blocks(spec_dict, command)},
                          sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_tmf_manifest(data: Any) -> bool:
    """True when ``data`` (a loaded ``manifest.yaml``) is a manifest tmf wrote: a mapping that
    names the command and carries tmf's version (``versions.tmf``)."""
    if not isinstance(data, dict) or not isinstance(data.get("command"), str):
        return False
    versions_ = data.get("versions")
    return isinstance(versions_, dict) and "tmf" in versions_


def command_root(name: str, command: str, root: Path = ROOT) -> Path:
    """``results/<name>/<command>``: the parent of every run of this spec name and command."""
    return root / name / command


# --------------------------------------------------------------------------------------------
# latest
# --------------------------------------------------------------------------------------------
def check_latest(parent: Path) -> None:
    """Refuse ``<parent>/latest`` when it is not tmf's to replace: tmf writes a symbolic link
    to a sibling's name, or a one-line file naming one; anything else (a directory, a file of
    the user's) is a ``ResultsError``, so that ``mark_latest`` never overwrites it."""
    from tmfcli.errors import ResultsError

    link = parent / LATEST
    try:
        if link.is_symlink():
            if "/" not in os.readlink(link):
                return
        elif not link.exists():
            return
        elif link.is_file() and link.stat().st_size <= 256:
            name = link.read_bytes().decode("utf-8", "replace")
            if name.endswith("\n") and name.count("\n") == 1 and "/" not in name and \
                    name.strip() and (parent / name.strip()).is_dir():
                return
    except OSError:
        pass
    raise ResultsError(f"{link}: is not the link tmf keeps to the newest run",
                       "move it away (tmf replaces only what it wrote), or give --out")


def mark_latest(directory: Path) -> None:
    """Point ``<parent>/latest`` at ``directory`` (relative link; a small file if links fail);
    ``check_latest`` first: a ``latest`` tmf did not write is never replaced."""
    check_latest(directory.parent)
    link = directory.parent / LATEST
    tmp = directory.parent / f".{LATEST}.{os.getpid()}.part"
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(directory.name, tmp)
    except OSError:
        tmp.write_text(directory.name + "\n")
    os.replace(tmp, link)


def resolve(path: Path) -> Path:
    """``path``, or the run its ``latest`` names when ``path`` is a command directory
    (``results/<name>/solve``) or the ``latest`` file itself."""
    from tmfcli.errors import ResultsError

    path = Path(path)
    marker = path / LATEST if path.is_dir() and not (path / MANIFEST).exists() else path
    fix = "move it away, or give the run's own directory"
    if marker.name == LATEST and marker.is_file() and not marker.is_symlink():
        try:  # a few bytes at most: tmf writes one short line
            with open(marker, "rb") as handle:
                name = handle.read(LATEST_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            problem = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ResultsError(f"{marker}: is not the one-line file tmf writes naming the "
                               f"newest run ({problem})", fix) from None
        if name and "/" not in name:
            return marker.parent / name
    if marker.name == LATEST and marker.is_symlink():
        target = Path(os.readlink(marker))
        found = target if target.is_absolute() else marker.parent / target
        try:
            os.stat(found)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise ResultsError(f"{marker}: is a symbolic link that loops", fix) from None
        return found
    return path


# --------------------------------------------------------------------------------------------
# provenance: when, where, with what
# --------------------------------------------------------------------------------------------
_started: list[dt.datetime] = []
_command_line: list[str] = []


def now_utc() -> str:
    """The current UTC time as ISO 8601 with seconds, e.g. ``2026-11-26T02:15:07Z``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def this_command_line() -> str:
    """``tmf ...`` as typed (this process's arguments)."""
    return " ".join(["tmf", *sys.argv[1:]])


def begin(command_line: str | None = None) -> None:
    """Stamp the start of a run in this process (read by the next manifest), and the command
    line that asked for it (a worker process was not started by it)."""
    _started[:] = [dt.datetime.now(dt.UTC)]
    _command_line[:] = [command_line or this_command_line()]


def command_line() -> str:
    """The command line of the current run (``begin``), else this process's."""
    return _command_line[0] if _command_line else this_command_line()


def started() -> str:
    """The start of the current run (``begin``), or now when none was stamped."""
    when = _started[0] if _started else dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def git_commit() -> str | None:
    """The commit of the tmf source tree (``+dirty`` with local changes), when it is a git
    checkout and git is installed; None otherwise."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty=+dirty", "--abbrev=40",
                               "--exclude", "*"], cwd=here, capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else None


def provenance() -> dict[str, Any]:
    """Start and end time (UTC) and host for a manifest (versions: ``results.versions``)."""
    return {"started": started(), "finished": now_utc(), "host": socket.gethostname()}


# --------------------------------------------------------------------------------------------
# listing
# --------------------------------------------------------------------------------------------
COLUMNS = ["name", "command", "algorithm", "game", "agents", "batch", "horizon", "seed",
           "status", "metric", "value", "when", "directory"]
SWEEP_TABLE = "sweep.csv"  # at the top of a sweep: the sweep, not a run (its cells are runs)
REPORT = "REPORT.md"       # in a folder written by tmf report: not a run


def _at(data: Any, path: tuple[str, ...]) -> Any:
    """``data[path[0]][path[1]]...``, None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _headline(kind: str, data: dict[str, Any]) -> tuple[str, Any]:
    """The one number that says how a run went (the command's ``listing``); for a command
    this version does not describe, exploitability or passed, whichever it has."""
    described = COMMANDS.get(kind)
    if described is not None and (described.listing.always
                                  or _at(data, described.listing.value) is not None):
        return described.listing.metric, _at(data, described.listing.value)
    for key in ("exploitability", "passed"):
        if key in data:
            return key, data[key]
    return "", None


def _algorithm(kind: str, data: dict[str, Any]) -> str:
    """The algorithm column: the first of the command's ``listing.algorithm`` paths that
    holds something."""
    described = COMMANDS.get(kind)
    for path in described.listing.algorithm if described is not None else ():
        value = _at(data, path)
        if value:
            return str(value)
    return ""


def _batch(pop: dict[str, Any]) -> Any:
    """B as a number: agents acting per step (a schedule keeps its label, ``sched(1,5)``);
    alpha for a spec without agents."""
    from tmfcli.model.setting import Batch  # imported here: numpy (start-up of tmf runs)

    agents, batch = pop.get("agents"), pop.get("batch")
    if batch is None:
        return pop.get("alpha") if agents is None else agents  # no batch: all agents act
    if agents is None:
        return batch  # a fraction of a mean field
    try:
        form = Batch.of(batch)
        sizes = form.sizes(int(agents))
    except (TypeError, ValueError):
        return batch
    return form.label if form.kind == "schedule" else sizes[0]


def _settings(spec: dict[str, Any]) -> dict[str, Any]:
    pop = spec.get("population") or {}
    horizon = spec.get("horizon") or {}
    steps, rounds = horizon.get("steps"), horizon.get("rounds")
    return {
        "game": (spec.get("game") or {}).get("name"),
        "agents": pop.get("agents"),
        "batch": _batch(pop),
        "horizon": f"{rounds} rounds" if rounds is not None else
        (f"{steps} steps" if steps is not None else "default"),
        "seed": spec.get("seed"),
    }


def _when(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(directory: Path) -> dict[str, Any] | None:
    """The listing of one run; None for a directory that is no run (nothing of tmf's, a
    sweep's top or a folder of ``tmf report``)."""
    if (directory / SWEEP_TABLE).is_file() or (directory / REPORT).is_file():
        return None
    manifest, failed = directory / MANIFEST, directory / FAILED
    data: dict[str, Any] = {}
    if manifest.is_file():
        try:
            loaded = yaml.safe_load(manifest.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            loaded = None
        if not isinstance(loaded, dict):
            return {"status": "unreadable", "directory": str(directory),
                    "when": _when(manifest)}
        data = loaded
        if data.get("kind") == "report" or not is_tmf_manifest(data):  # not a run of tmf
            return None
        status = str(data.get("status", "complete"))
        when = str(data.get("finished") or _when(manifest))
    elif failed.is_file():
        try:
            loaded = yaml.safe_load(failed.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            loaded = None
        data = loaded if isinstance(loaded, dict) else {}
        status, when = "failed", _when(failed)
    elif any(directory.glob("*.csv")):
        status, when = "partial", _when(directory)
    else:
        return None
    spec: dict[str, Any] = data["spec"] if isinstance(data.get("spec"), dict) else {}
    command = str(data.get("command", ""))
    kind = command.split()[0] if command else ""
    metric, value = _headline(kind, data)
    algorithm = _algorithm(kind, {**data, "spec": spec})
    settings = _settings(spec)
    if isinstance(data.get("seed"), int):  # the run's own seed (train.seed when it is given)
        settings["seed"] = data["seed"]
    return {"name": spec.get("name", data.get("name")), "command": kind,
            "algorithm": algorithm, **settings,
            "status": status, "metric": metric, "value": value, "when": when,
            "directory": str(directory)}


def list_runs(path: Path) -> list[dict[str, Any]]:
    """Every run below ``path`` (a directory holding a manifest, a failure record or partial
    tables; the cells of a sweep, not its top; no folder of ``tmf report``), oldest first;
    ``latest`` links are not followed, so no run is listed twice."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    if not path.is_dir():
        return rows
    for here, dirs, _files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != LATEST)
        row = _row(Path(here))
        if row is not None:
            rows.append({c: row.get(c) for c in COLUMNS})
    rows.sort(key=lambda r: (str(r["when"]), str(r["directory"])))
    return rows


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=1, default=str)
