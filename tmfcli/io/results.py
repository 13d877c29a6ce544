"""Result directories: tidy CSV tables and a manifest, replaced all or nothing.

**Write semantics.** A run never writes into its result directory. ``new_result`` gives it a
fresh *stage* directory beside the target (``.<name>.tmf-new-<pid>-<random>``); every table is
written there (each file atomically, under its final name only once complete) with the manifest
last, and on success the stage is swapped in whole: the old directory is renamed aside, the
stage renamed onto the target, the old one removed. A run that is killed, interrupted or fails
(a full disk, a read-only file system) leaves the target exactly as it was, so a directory with
a ``manifest.yaml`` always holds the tables of that manifest's run, and a rerun never calls a
mixture up to date. Stages of dead processes and stale ``.part`` files are removed by the next
run into the same target.

**Only tmf's own output is ever replaced or removed.** A target is replaced only when it is
empty or holds a tmf manifest (``is_tmf_manifest``: a mapping naming the command and tmf's
version); a target that holds a result of another spec or command is refused unless ``--force``.
Any other non-empty directory (files without a manifest, a ``manifest.yaml`` tmf did not
write) is refused even with ``--force``: ``--force`` means "recompute this result", never
"delete this folder". Stale stages are removed only when their names are exactly those tmf
gives them (``STAGE_NAME``).

Files get the user's normal permissions (0666 and directories 0777, minus the umask). Write
errors (ENOSPC, EROFS, EACCES, ...) become a ``ResultsError`` naming the file.

The manifest records the resolved spec and its hash; a rerun of the same spec finds the hash and
reuses the results instead of recomputing them.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import secrets
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml

from tmfcli.errors import ResultsError, SpecError
from tmfcli.files import FILE_MODE, UMASK
from tmfcli.io import runs
from tmfcli.io.spec_text import parse_yaml
from tmfcli.io.spec_types import Spec
from tmfcli.model.games.base import Array
from tmfcli.version import __version__

MANIFEST = "manifest.yaml"
NEW, OLD, SWEEP = "tmf-new", "tmf-old", "tmf-sweep"


_shown: dict[Path, Path] = {}  # stage directory -> the target it will become (for messages)


def display(path: Path) -> Path:
    """``path`` as the user will know it: inside a stage, the path in the target."""
    for stage, target in _shown.items():
        if path == stage or stage in path.parents:
            return target / path.relative_to(stage)
    return path


def write_error(error: OSError, path: Path, verb: str = "write") -> ResultsError:
    """An OSError while writing ``path`` as a one-line error saying what to do."""
    fixes = {errno.ENOSPC: "free disk space or write elsewhere with --out",
             errno.EDQUOT: "free disk space or write elsewhere with --out",
             errno.EROFS: "the file system is read-only: choose another --out",
             errno.EACCES: "check the permissions, or choose another --out",
             errno.EPERM: "check the permissions, or choose another --out",
             errno.ENAMETOOLONG: "use shorter names (see --out)"}
    fix = fixes.get(error.errno or 0, "check the path, or choose another --out")
    reason = error.strerror or str(error)
    return ResultsError(f"cannot {verb} {display(path)}: {reason}", fix)


@contextmanager
def atomic(path: Path) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success.

    The file gets the user's normal permissions; an OSError becomes a ``ResultsError`` naming
    the file, and no partial file is left under any name.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as error:
        raise write_error(error, path) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table atomically; floats in full precision so reruns give identical bytes."""
    with atomic(path) as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")


def write_yaml(data: dict[str, Any], path: Path) -> None:
    with atomic(path) as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


def spec_hash(spec: Spec, command: str) -> str:
    """Hash of the spec blocks ``command`` reads and the command (``runs.run_hash``)."""
    return spec.run_hash(command)


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


def read_manifest_file(path: Path) -> dict[str, Any]:
    """A YAML mapping written by tmf (manifest, progress file), read strictly: unreadable, not
    UTF-8, not YAML or not a mapping is a ``ResultsError``."""
    fix = "remove the directory or rerun the command that wrote it with --force"
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ResultsError(f"cannot read {path}: {reason}", fix) from None
    try:
        data = parse_yaml(text, "", str(path))
    except SpecError as error:
        raise ResultsError(f"{path}: {error.problem}", fix) from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is not a manifest (expected a mapping, got "
                           f"{type(data).__name__})", fix)
    return data


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of ``directory`` (None when there is none), read strictly."""
    path = directory / MANIFEST
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    return read_manifest_file(path)


is_tmf_manifest = runs.is_tmf_manifest


def is_failure_record(path: Path) -> bool:
    """True when ``path`` is a ``failed.yaml`` tmf wrote for a failed cell."""
    try:
        data = yaml.safe_load(path.read_bytes()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("status") == "failed" and "command" in data


NOT_OURS = "tmf replaces only directories it wrote: choose a new or empty directory with " \
    "--out, or move the files away yourself"


def foreign(target: Path) -> str | None:
    """Why ``target`` (an existing, non-empty directory) is not tmf's to replace, or None when
    it holds a tmf manifest (or only tmf's failure record)."""
    try:
        entries = sorted(target.iterdir())
    except OSError as error:
        raise write_error(error, target, "use") from None
    entries = [p for p in entries if not (p.name == runs.FAILED and is_failure_record(p))]
    if not entries:
        return None
    path = target / MANIFEST
    if not (path.is_file() and not path.is_symlink()):
        what = "files" if all(p.is_file() for p in entries) else "files or directories"
        return f"holds {what} but no tmf manifest.yaml ({entries[0].name}, ...)" \
            if len(entries) > 1 else f"holds {entries[0].name} but no tmf manifest.yaml"
    try:
        data = read_manifest_file(path)
    except ResultsError as error:
        return f"its manifest.yaml cannot be read as a tmf manifest ({error.problem})"
    if not is_tmf_manifest(data):
        return "its manifest.yaml was not written by tmf (no command and tmf version)"
    return None


def is_up_to_date(directory: Path, spec: Spec, command: str) -> bool:
    """True when ``directory`` holds a complete result (``status: complete``) of this very
    spec and command (a damaged manifest is not; ``claim`` then refuses the directory unless
    ``--force``)."""
    try:
        data = read_manifest(directory)
    except ResultsError:
        return False
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


# --- result directories, all or nothing ------------------------------------------------------
def check_out(text: str, option: str = "--out") -> Path:
    """Validate a user's output path before any work: not empty, no over-long component, not a
    file, not below a file. Returns it as a Path."""
    if text == "" or text.strip() == "":
        raise ResultsError(f"{option} is empty", f"give a directory, e.g. {option} results/run1")
    path = Path(text)
    limit = 255
    for part in path.parts:
        if len(part.encode()) > limit:
            raise ResultsError(f"{option} {text}: the name {part[:40]}... has {len(part)} "
                               f"characters, more than the file system allows ({limit})",
                               "use shorter directory names")
    probe = path
    while True:
        try:
            if probe.exists() or probe.is_symlink():
                if not probe.is_dir():
                    where = "is a file" if probe == path else f"lies below the file {probe}"
                    raise ResultsError(f"{option} {text} {where}, not a directory",
                                       "give a directory path")
                break
        except OSError as error:
            raise write_error(error, probe, "use") from None
        if probe.parent == probe:
            break
        probe = probe.parent
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The names tmf gives what it keeps beside a target: stages (``tempfile.mkdtemp``: 8 characters
# of [a-z0-9_]), old directories being removed (8 hex digits) and probe files. Only entries
# named exactly so are ever removed by ``clean_stale``.
STAGE_NAME = re.compile(r"\.(?P<target>.+)\.(?:(?P<new>tmf-new-(?P<pid>\d+)-[a-z0-9_]{8})|"
                        r"(?P<old>tmf-old-(?P<opid>\d+)-[0-9a-f]{8})|"
                        r"(?P<probe>tmf-new-probe-[a-z0-9_]{8}))")


def _siblings(target: Path) -> list[tuple[Path, re.Match[str]]]:
    parent = target.parent
    if not parent.is_dir():
        return []
    prefix = f".{target.name}.tmf-"
    found = []
    for path in parent.iterdir():
        match = STAGE_NAME.fullmatch(path.name) if path.name.startswith(prefix) else None
        if match is not None and match["target"] == target.name:
            found.append((path, match))
    return found


def clean_stale(target: Path) -> None:
    """Remove what killed runs left beside ``target``: stages of dead processes and old
    directories whose removal was interrupted (partial sweeps are kept: they resume). Only
    entries named exactly as tmf names them (``STAGE_NAME``) are touched."""
    for path, match in _siblings(target):
        pid = match["pid"] or match["opid"]
        if pid is not None and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        if match["probe"] is not None:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _present_and_ours(target: Path) -> bool:
    """False when ``target`` does not exist; a ``ResultsError`` when it is a symbolic link or
    holds what tmf did not write (``foreign``); True otherwise (its manifest decides)."""
    try:
        if not (target.exists() or target.is_symlink()):
            return False
        if target.is_symlink():
            raise ResultsError(f"{target}: is a symbolic link",
                               "give the directory it points to with --out")
    except OSError as error:
        raise write_error(error, target, "use") from None
    why = foreign(target)
    if why is not None:
        raise ResultsError(f"{target}: {why}", NOT_OURS)
    return True


def claim(target: Path, command: str, key: str, force: bool) -> None:
    """Refuse ``target`` when it holds something this run must not replace.

    ``command`` is the manifest's command (e.g. "solve"), ``key`` the run's spec hash. Allowed:
    a missing or empty directory, a result of the same command and hash (a recomputation), and
    with ``force`` any tmf result. Anything else (files without a manifest, a manifest tmf did
    not write) is refused, with or without ``force``.
    """
    try:  # the parent must take a new directory: find out now, not after the work
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.{NEW}-probe-", dir=target.parent)
        os.close(fd)
        Path(probe).unlink(missing_ok=True)
    except OSError as error:
        raise write_error(error, target, "create") from None
    if not _present_and_ours(target):
        return
    data = read_manifest(target)
    if data is None:  # empty, or only a failure record
        return
    if data.get("kind") == "report":  # may hold the runs it reports on: never replaced
        raise ResultsError(f"{target}: holds a report of tmf",
                           "choose another --out (a report's folder is never replaced)")
    theirs = str(data.get("command", "")).split(" ")[0]
    if force or (theirs == command.split(" ")[0] and data.get("spec_hash") == key):
        return
    what = f"a result of 'tmf {theirs}'" if theirs != command.split(" ")[0] else \
        f"a result of another spec or policy (hash {data.get('spec_hash')})"
    raise ResultsError(f"{target} holds {what}",
                       "choose another --out, or --force to replace it")


def claim_top(top: Path, command: str, force: bool) -> None:
    """Refuse the top directory of a sweep (which a sweep writes into: ``sweep.csv``, the
    stacked tables, its manifest) unless it is missing, empty, or holds a tmf manifest: of a
    sweep of ``command``, or with ``force`` of any tmf run."""
    if not _present_and_ours(top):
        return
    data = read_manifest(top)
    if data is None or force:
        return
    theirs = str(data.get("command", "")).split(" ")[0]
    if data.get("kind") != "sweep" or theirs != command:
        what = "a sweep" if data.get("kind") == "sweep" else "a result"
        raise ResultsError(f"{top}: holds {what} of 'tmf {theirs}', not a sweep of "
                           f"'tmf {command}'", "choose another --out, or --force to reuse it")


def sweep_stage(target: Path, key: str) -> Path:
    """The stage of a resumable sweep of hash ``key`` into ``target`` (kept across runs)."""
    return target.parent / f".{target.name}.{SWEEP}-{key}"


def check_stage(stage: Path, own: Collection[str]) -> None:
    """Refuse a kept stage (``sweep_stage``) that holds anything but the files named in
    ``own`` and tmf's ``.part`` files: it is swapped in as the result, so it must be tmf's."""
    try:
        if stage.is_symlink() or (stage.exists() and not stage.is_dir()):
            raise ResultsError(f"{stage}: is not a directory tmf wrote", NOT_OURS)
        entries = list(stage.iterdir()) if stage.exists() else []
    except OSError as error:
        raise write_error(error, stage, "use") from None
    tables = sorted(p.name for p in entries if not (p.name.startswith(".") and (
        ".part" in p.name or p.name == ".lock")))
    others = [name for name in tables if name not in own]
    if others:
        raise ResultsError(f"{stage}: holds {others[0]}, which tmf did not write there",
                           NOT_OURS.replace("with --out", "with --out (or rerun elsewhere)"))
    if tables and not _marked(stage, tables):  # the right names, but not written by tmf
        raise ResultsError(f"{stage}: holds {tables[0]} but no progress file or manifest of "
                           "tmf", NOT_OURS.replace("with --out", "with --out (or rerun "
                                                   "elsewhere)"))


def _marked(stage: Path, names: list[str]) -> bool:
    """True when the YAML files among ``names`` in ``stage`` are tmf's (each a mapping with the
    sweep's ``spec_hash``, a manifest a tmf manifest) and there is at least one."""
    marks = [n for n in names if n.endswith(".yaml")]
    for name in marks:
        try:
            data = read_manifest_file(stage / name)
        except ResultsError:
            return False
        if "spec_hash" not in data or (name == MANIFEST and not is_tmf_manifest(data)):
            return False
    return bool(marks)


@contextmanager
def new_result(target: Path, command: str, key: str, force: bool = False,
               stage: Path | None = None, own: Collection[str] = ()) -> Iterator[Path]:
    """Write a result into a stage beside ``target`` and swap it in whole on success.

    Yields the stage directory: write every file there, the manifest last. Refuses ``target``
    as ``claim`` says. A fresh stage is removed when the body fails; a given ``stage`` (a
    resumable sweep, ``sweep_stage``) is kept for the next run, and may hold only the files
    named in ``own`` (``check_stage``).
    """
    claim(target, command, key, force)
    if stage is not None:
        check_stage(stage, own)
    try:
        clean_stale(target)
        if stage is None:
            fresh = True
            stage = Path(tempfile.mkdtemp(
                prefix=f".{target.name}.{NEW}-{os.getpid()}-", dir=target.parent))
        else:
            fresh = False
            stage.mkdir(exist_ok=True)
        os.chmod(stage, 0o777 & ~UMASK)
    except OSError as error:
        raise write_error(error, target, "create") from None
    _shown[stage] = target
    try:
        yield stage
        swap(stage, target)
    except BaseException:
        if fresh:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        _shown.pop(stage, None)


def swap(stage: Path, target: Path) -> None:
    """Replace ``target`` by the complete directory ``stage``: two renames, so that ``target``
    is at every moment either the old result, absent, or the new result, never a mixture."""
    old = None
    if target.is_dir() and not target.is_symlink():  # filled by someone while the run ran?
        why = foreign(target)
        if why is not None:
            raise ResultsError(f"{target}: {why}", NOT_OURS)
    try:
        if target.exists() or target.is_symlink():
            old = target.parent / f".{target.name}.{OLD}-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(target, old)
        os.rename(stage, target)
    except OSError as error:
        raise write_error(error, target, "replace") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
