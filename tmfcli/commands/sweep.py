"""Sweeps: a spec's ``sweep:`` block (and ``--sweep``) expanded into cells, each cell run as its
own job with its own result directory and manifest, and the results gathered on top.

**Cells.** ``sweep: {key: [v1, v2], other: [...], cases: [{...}, ...]}``: the cross product of
the listed values of every dotted key and of the explicit cases (the first key varies slowest).
A cell is the spec with its values set, validated as a spec, so a bad value is reported at
once, before any run, under ``sweep.<key>``. ``--set`` applies before the sweep expands;
``--sweep key=v1,v2`` adds an axis (or replaces the spec's axis of the same key).

**Directories.** A sweep's top directory (``--out DIR``, by default
``results/<name>/<command>/sweep-<hash>``) holds one directory per cell named by the cell's
run hash (``tmfcli.io.runs``), so cells that only differ in keys the command does not read share
one run. On top: ``sweep.csv`` (one row per cell: swept values, status, directory, elapsed_s,
error), rewritten after every cell; for each table of the command a stacked ``<table>`` with
the swept values as leading columns (named by their dotted key, ``sweep.<key>`` where the table
has a column of that name, e.g. ``seed``); ``manifest.yaml`` last.

**Never lose finished work.** A cell is done only when its manifest says so. A rerun reuses
done cells and runs the others (``--force`` reruns all); a failing cell is recorded
(``failed.yaml`` in its directory, its error in ``sweep.csv``) and the others go on.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import itertools
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tmfcli.command_registry import COMMANDS, Options, Progress
from tmfcli.commands import jobs
from tmfcli.commands.executors import (
    DaskCluster,
    Executor,
    Local,
    Outcome,
    Task,
    execute,
    interruptible,
    store,
)
from tmfcli.errors import SpecError
from tmfcli.io import results, runs, user_files
from tmfcli.io.spec import from_dict, sweep_key
from tmfcli.io.spec_text import parse_yaml, set_key
from tmfcli.io.spec_types import Spec

SWEEP_TABLE = "sweep.csv"
Values = tuple[tuple[str, Any], ...]


# --------------------------------------------------------------------------------------------
# expansion
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One cell: the swept values (dotted key, value) and the spec they give."""

    values: Values
    spec: Spec

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={show(v)}" for k, v in self.values) or "(the spec)"


def show(value: Any) -> str:
    """A swept value as text: YAML flow style for lists and mappings, '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return str(value)


def parse_cli(items: list[str] | None) -> list[tuple[str, tuple[Any, ...]]]:
    """``--sweep key=v1,v2``: values parsed as YAML (``key=[1,2],[3,4]`` gives two lists)."""
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(item, "a sweep has no '='", "write --sweep key.path=v1,v2",
                            "--sweep")
        sweep_key(key, "", "--sweep")
        if any(key == seen for seen, _ in axes):
            raise SpecError(key, "is swept twice", f"give all its values in one --sweep "
                            f"{key}=v1,v2,...", "--sweep")
        try:  # strict and within limits, as a spec file
            values = parse_yaml(f"[{text}]", "", "--sweep")
        except SpecError:
            raise SpecError(key, f"values {text!r} are not valid YAML",
                            "write --sweep key=v1,v2 (lists as [a, b])", "--sweep") from None
        if not values:
            raise SpecError(key, "empty list of values", "give at least one value, e.g. "
                            f"--sweep {key}=1,2", "--sweep")
        axes.append((key, tuple(values)))
    return axes


def expand(spec: Spec, cli_axes: list[tuple[str, tuple[Any, ...]]] | None = None) -> list[Cell]:
    """The cells of the spec's sweep with the command line's axes; one cell without a sweep."""
    axes = dict(spec.sweep.axes)
    for key, values in cli_axes or []:
        axes[key] = values
    case_keys = {k for case in spec.sweep.cases for k, _ in case}
    for key in sorted(case_keys & set(axes)):
        raise SpecError(f"sweep.{key}", "is swept both as a list and in cases",
                        "sweep each key in one place", spec.source)
    from tmfcli.io import budget

    budget.check_cells([(k, len(v)) for k, v in axes.items()], max(1, len(spec.sweep.cases)),
                       "--sweep" if cli_axes else spec.source)
    dims: list[list[Values]] = [[((k, v),) for v in vals] for k, vals in axes.items()]
    if spec.sweep.cases:
        dims.append(list(spec.sweep.cases))
    if not dims:
        return [Cell((), spec)]
    cells = []
    for combo in itertools.product(*dims):
        chosen: Values = tuple(itertools.chain.from_iterable(combo))
        cells.append(Cell(chosen, _cell_spec(spec, chosen, [k for k, _ in cli_axes or []])))
    return cells


def _cell_spec(spec: Spec, values: Values, cli_keys: list[str] | None = None) -> Spec:
    """The spec of one cell; an error names ``sweep.<key>`` of the spec, or ``--sweep`` when
    the failing key was swept on the command line."""
    raw = copy.deepcopy(spec.raw)
    label = ", ".join(f"{k}={show(v)}" for k, v in values)
    try:
        for key, value in values:
            set_key(raw, key, value, spec.source)
        return from_dict(raw, spec.source)
    except SpecError as error:
        mine = [k for k in cli_keys or [] if error.key and (
            k == error.key or k.startswith(error.key + ".") or error.key.startswith(k + "."))]
        if mine:
            raise SpecError(error.key, f"{error.problem} (in the cell {label})", error.fix,
                            "--sweep") from None
        raise SpecError(f"sweep.{error.key}", f"{error.problem} (in the cell {label})",
                        error.fix, spec.source) from None


def columns(cells: list[Cell]) -> list[str]:
    """The swept keys, in the order they first appear."""
    return list(dict.fromkeys(k for c in cells for k, _ in c.values))


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
@dataclass
class Row:
    """The state of one cell in a sweep: pending, done, reused or failed."""

    cell: Cell
    directory: Path
    task: int
    status: str = "pending"
    elapsed_s: float = float("nan")
    error: str = ""


@dataclass
class Report:
    """What a sweep (or a single run) did."""

    command: str
    top: Path
    rows: list[Row]
    sweep: bool
    interrupted: bool = False
    signum: int = int(signal.SIGINT)  # what interrupted it: SIGINT (Ctrl-C) or SIGTERM
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    where: str = ""  # where the cells ran: a local pool of N processes, or a Dask scheduler

    def count(self, *status: str) -> int:
        return sum(r.status in status for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]


def sweep_dir(spec: Spec, command: str, hashes: list[str], root: Path = runs.ROOT) -> Path:
    """The default top directory of a sweep, named by the set of its cells' runs."""
    digest = hashlib.sha256(" ".join([command, *sorted(set(hashes))]).encode()).hexdigest()
    return runs.command_root(spec.name, command, root) / f"sweep-{digest[:16]}"


def plan(command: str, cells: list[Cell], options: Options, out: Path | None,
         command_line: str | None = None) -> tuple[Path, list[Row], list[Task], bool]:
    """Directories of the cells and the tasks to run (one per distinct directory).

    Without a sweep the single run goes to ``out`` or to the run store; a sweep's cells go
    below its top directory. ``command_line`` is what the manifests record as having asked
    for the runs (default: this process's ``tmf ...``).
    """
    keys = [jobs.key(COMMANDS[command], c.spec, options) for c in cells]
    hashes = [results.spec_hash(c.spec, k) for c, k in zip(cells, keys, strict=True)]
    is_sweep = bool(cells[0].values)
    if not is_sweep:
        top = out if out is not None else \
            runs.command_root(cells[0].spec.name, command) / hashes[0]
        dirs = [top]
    else:
        top = out if out is not None else sweep_dir(cells[0].spec, command, hashes)
        dirs = [top / h for h in hashes]
    tasks: dict[Path, Task] = {}
    rows: list[Row] = []
    for cell, directory, key in zip(cells, dirs, keys, strict=True):
        if directory not in tasks:
            tasks[directory] = Task(len(tasks), command, cell.spec, directory, options, key,
                                    command_line or runs.this_command_line())
        rows.append(Row(cell, directory, tasks[directory].index))
    return top, rows, list(tasks.values()), is_sweep


def run(command: str, cells: list[Cell], options: Options, executor: Executor,
        out: Path | None = None, force: bool = False,
        on_progress: Progress | None = None, command_line: str | None = None) -> Report:
    """Run every cell not yet done (all with ``force``), recording each as it finishes.

    A single run (no sweep) in this process lets its error propagate, as a plain command
    does; in a sweep each failure is recorded and the others go on. On an interrupt the
    report comes back with ``interrupted`` set, every finished cell kept.
    """
    start, started = time.perf_counter(), runs.now_utc()
    parallel = not (isinstance(executor, Local) and executor.jobs <= 1)
    if bool(cells[0].values) and parallel:  # the cells are the parallelism
        options = replace(options, scheduler=None,
                          workers=1 if options.workers is None else options.workers)
    options = replace(options, force=options.force or force)
    top, rows, tasks, is_sweep = plan(command, cells, options, out, command_line)
    report = Report(command, top, rows, is_sweep, where=
                    f"Dask scheduler {executor.address}" if isinstance(executor, DaskCluster)
                    else f"local, {getattr(executor, 'jobs', 1)} process(es)")
    reused_ids = set()
    task_of = {t.index: t for t in tasks}
    if is_sweep:  # the top holds sweep.csv, the stacked tables and the sweep's manifest
        results.claim_top(top, command, force)
    if out is None:  # the run store's latest is replaced at the end: refuse a foreign one now
        runs.check_latest(top.parent)
    for task in tasks:
        if not force and results.is_up_to_date(task.directory, task.spec, task.key):
            reused_ids.add(task.index)
        else:  # refuse a directory holding what this run must not replace, before any work
            results.claim(task.directory, task.key, results.spec_hash(task.spec, task.key),
                          force)
    for row in rows:
        if row.task in reused_ids:
            data = results.read_manifest(row.directory) or {}
            row.status = "reused"
            row.elapsed_s = float((data.get("timings") or {}).get("total_s", float("nan")))
    todo = [t for t in tasks if t.index not in reused_ids]
    if is_sweep:  # a manifest from the start (status: running) marks the top as tmf's
        results.write_yaml(sweep_manifest(report, cells[0].spec, options, started, "running"),
                           top / runs.MANIFEST)
        write_sweep_table(report)
    done = len(tasks) - len(todo)
    if on_progress is not None and is_sweep:
        on_progress("cells", done, len(tasks))

    def finish(outcome: Outcome) -> None:
        nonlocal done
        task = task_of[outcome.index]
        if outcome.ok and outcome.files is not None:
            store(outcome.files, task)
        failed = task.directory / runs.FAILED
        if outcome.ok:
            failed.unlink(missing_ok=True)
        else:
            record_failure(task, outcome)
        for row in rows:
            if row.task == outcome.index:
                row.status = "done" if outcome.ok else "failed"
                row.elapsed_s = round(outcome.elapsed_s, 3)
                row.error = outcome.error
        done += 1
        if is_sweep:
            write_sweep_table(report)
            if on_progress is not None:
                on_progress("cells", done, len(tasks))

    try:
        with interruptible():
            if not is_sweep and todo and isinstance(executor, Local):
                finish(execute(todo[0], on_progress, catch=False))
            elif todo:
                executor.run(todo, finish)
    except KeyboardInterrupt as stop:
        report.interrupted = True
        report.signum = int(getattr(stop, "signum", signal.SIGINT))
    report.elapsed_s = time.perf_counter() - start
    if is_sweep:
        write_sweep_table(report)
        if not report.interrupted:
            finish_sweep(report, cells[0].spec, options, started)
        else:
            results.write_yaml(sweep_manifest(report, cells[0].spec, options, started,
                                              "interrupted"), top / runs.MANIFEST)
    if not report.interrupted and out is None and report.count("done", "reused") == len(rows):
        runs.mark_latest(top)
    return report


def record_failure(task: Task, outcome: Outcome) -> None:
    """``failed.yaml`` in the cell's directory: the error, its traceback and the cell's spec
    (never a manifest, so the cell does not look done)."""
    task.directory.mkdir(parents=True, exist_ok=True)
    results.write_yaml({"status": "failed", "command": task.command, "error": outcome.error,
                        "traceback": outcome.trace, "failed": runs.now_utc(),
                        "spec": task.spec.to_dict()}, task.directory / runs.FAILED)


# --------------------------------------------------------------------------------------------
# tables on top
# --------------------------------------------------------------------------------------------
def _relative(directory: Path, top: Path) -> str:
    try:
        return str(directory.relative_to(top))
    except ValueError:
        return str(directory)


def write_sweep_table(report: Report) -> None:
    """``sweep.csv``: one row per cell (swept values, status, directory, elapsed_s, error)."""
    keys = columns([r.cell for r in report.rows])
    frame = pd.DataFrame(
        [[show(dict(r.cell.values).get(k)) for k in keys]
         + [r.status, _relative(r.directory, report.top), r.elapsed_s, r.error]
         for r in report.rows],
        columns=[*keys, "status", "directory", "elapsed_s", "error"])
    results.write_csv(frame, report.top / SWEEP_TABLE)


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def stack(report: Report, table: str) -> str | None:
    """The cells' ``table`` one under the other, behind leading columns: each swept key as
    ``sweep.<key>`` (one name in every table, never a table's own column such as ``seed``),
    then ``directory``, the cell's directory as in ``sweep.csv`` (to join the two).

    Each cell's rows are copied as they are (the bytes of its own file), so the stacked table
    holds exactly the numbers of the cells. A swept ``population.batch`` is written as B, the
    number of agents acting per step (``sweep.csv`` keeps the form as given: ``all``, ``sqrt``).
    None when no finished cell has the table, or when the cells' tables have different
    columns (a note on the report says so).
    """
    keys = columns([r.cell for r in report.rows])
    header: str | None = None
    lines: list[str] = []
    for row in report.rows:
        path = row.directory / table
        if row.status not in ("done", "reused") or not path.is_file():
            continue
        first, *rest = user_files.result_text(
            path, f"delete {row.directory} (or fix its {table}) and run the sweep again, "
            "which recomputes the cell").splitlines()
        if header is None:
            header = first
            lines.append(_csv_line([*(f"sweep.{k}" for k in keys), "directory"]) + "," + first)
        elif first != header:
            report.notes.append(f"{table} is not stacked: its columns differ between cells "
                                f"(see each cell's own {table})")
            return None
        prefix = _csv_line([*(show(_stacked_value(row.cell, k)) for k in keys),
                            _relative(row.directory, report.top)])
        lines.extend(f"{prefix},{line}" for line in rest)
    return None if header is None else "\n".join(lines) + "\n"


def _stacked_value(cell: Cell, key: str) -> Any:
    """A swept value as stacked tables write it: B as a number for ``population.batch``."""
    value = dict(cell.values).get(key)
    population = cell.spec.population
    if key == "population.batch" and population.agents is not None and \
            population.batch is not None:
        if population.batch.kind != "schedule":
            return population.batch.sizes(population.agents)[0]
    return value


def finish_sweep(report: Report, spec: Spec, options: Options, started: str) -> None:
    """Stack the tables of the finished cells, then write the sweep's manifest last; its
    ``spec`` is a cell's resolved spec with the sweep's cells as ``sweep.cases``."""
    for table in COMMANDS[report.command].written:
        text = stack(report, table)
        if text is not None:
            with results.atomic(report.top / table) as handle:
                handle.write(text)
    failed = report.count("failed")
    status = "complete" if failed == 0 else "failed"
    results.write_yaml(sweep_manifest(report, spec, options, started, status),
                       report.top / runs.MANIFEST)


def sweep_manifest(report: Report, spec: Spec, options: Options, started: str,
                   status: str) -> dict[str, Any]:
    """The manifest of a sweep's top directory: ``status: running`` while its cells run
    (so that the directory is known as tmf's when a run is interrupted), then complete or
    failed."""
    failed = report.count("failed")
    axes = {k: [show(v) for v in vals] for k, vals in spec.sweep.axes}
    return {
        "status": status,
        "kind": "sweep",
        "command": report.command,
        "name": spec.name,
        "cells": len(report.rows),
        "done": report.count("done"),
        "reused": report.count("reused"),
        "failed": failed,
        "failed_cells": [r.cell.label for r in report.failed],
        "swept": columns([r.cell for r in report.rows]),
        "axes": axes,
        "policy": options.policy,
        "executor": report.where,
        "command_line": runs.command_line(),
        "elapsed_s": round(report.elapsed_s, 3),
        "versions": results.versions(),
        **runs.provenance(),
        "started": started,
        # the cells as explicit cases: given back to the command, this spec runs this sweep
        "spec": {**spec.to_dict(),
                 "sweep": {"cases": [dict(r.cell.values) for r in report.rows]}},
    }

