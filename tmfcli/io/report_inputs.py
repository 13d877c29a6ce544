"""Read result directories for ``tmf report``: recognise each from its manifest, load its tables.

A result directory is recognised by the first word of its manifest's ``command`` (``solve``,
``simulate``, ``bound-check``, ``train``: the commands of ``tmfcli.command_registry``); the
tables its kind needs (the command's ``report.needs``) must all be there, else the error names
the missing file.

A *sweep directory* (``sweep.csv`` at its top, one row per cell with a ``directory`` column;
its own manifest says ``kind: sweep``, and its stacked tables are not read) is read as its
cells: each cell directory that holds a manifest is a run; a cell without one (not
finished, or failed) is skipped and named in the notes. Cell directories are looked up relative
to the sweep directory, then as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tmfcli.analysis.report import Run
from tmfcli.command_registry import COMMANDS
from tmfcli.errors import ResultsError
from tmfcli.io import user_files
from tmfcli.io.results import MANIFEST, read_manifest
from tmfcli.io.runs import resolve

SWEEP = "sweep.csv"
KNOWN = ", ".join(COMMANDS)


def read_table(path: Path) -> pd.DataFrame:
    """A tidy CSV; "n/a" stays a string (verdicts), regimes stay strings ("1", "sqrt")."""
    return user_files.result_table(path, "rerun the tmf command that wrote it (--force)",
                                   keep_default_na=False, na_values=[""],
                                   dtype={"regime": str, "verdict": str})


def read_run(path: Path) -> Run:
    """One result directory as a ``Run``; ResultsError naming the path and the missing file."""
    if not path.is_dir():
        raise ResultsError(f"{path}: no such result directory",
                           "give directories written by tmf " + KNOWN.replace(", ", ", tmf "))
    manifest = read_manifest(path)
    if manifest is None:
        raise ResultsError(f"{path}: no {MANIFEST}, so not a complete result directory",
                           "give a directory written by a tmf command, or rerun that command")
    command = str(manifest.get("command") or "").split()
    kind = command[0] if command else ""
    if kind not in COMMANDS:
        raise ResultsError(f"{path / MANIFEST}: unknown kind of result 'command: "
                           f"{manifest.get('command')}'",
                           f"tmf report reads results of: {KNOWN}")
    reading = COMMANDS[kind].report
    tables = {}
    for name in reading.needs:
        file = path / name
        if not file.is_file():
            raise ResultsError(f"{path}: {name} is missing (a {kind} result holds "
                               f"{', '.join(reading.needs)})",
                               f"rerun tmf {kind} for this directory (--force)")
        tables[name] = read_table(file)
    for name in reading.optional:  # written by newer versions only
        if (path / name).is_file():
            tables[name] = read_table(path / name)
    return Run(path=path, kind=kind, manifest=manifest, tables=tables)


def sweep_cells(path: Path) -> tuple[list[Path], list[str]]:
    """The finished cell directories of a sweep directory, and notes on the cells skipped."""
    sweep = user_files.result_table(path / SWEEP, "rerun the sweep that wrote it",
                                    keep_default_na=False)
    if "directory" not in sweep:
        raise ResultsError(f"{path / SWEEP}: no 'directory' column",
                           "give the sweep directory written by a tmf sweep")
    cells, notes = [], []
    for row in sweep.to_dict("records"):
        given = Path(str(row["directory"]))
        cell = path / given if (path / given).is_dir() else given
        if (cell / MANIFEST).is_file():
            cells.append(cell)
        else:
            notes.append(f"{path}: cell {given} skipped (status {row.get('status', '?')}, "
                         "no manifest)")
    return cells, notes


def read_runs(paths: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """Every run under ``paths`` (sweeps expanded), in the order given, each once; notes on
    skipped cells.

    A path is read as ``--policy`` reads it (``io.runs.resolve``): a command directory
    (``results/<name>/train``) or its ``latest`` stands for the run ``latest`` names; a run
    reached twice (``latest`` beside the run it names) is read once.
    """
    runs: list[Run] = []
    notes: list[str] = []
    seen: set[Path] = set()

    def add(run_dir: Path) -> None:
        real = run_dir.resolve()
        if real not in seen:
            seen.add(real)
            runs.append(read_run(run_dir))

    for given in paths:
        path = resolve(given)
        # a sweep's own manifest (kind: sweep) sits beside stacked tables: read its cells
        if (path / SWEEP).is_file():
            cells, skipped = sweep_cells(path)
            notes += skipped
            for cell in cells:
                add(cell)
        else:
            add(path)
    if not runs:
        raise ResultsError("no finished result directory among " +
                           ", ".join(map(str, paths)), "finish the runs first")
    return runs, notes
