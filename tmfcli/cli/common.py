"""What every command of the ``tmf`` CLI shares: the typer app, options, error translation,
progress bars and summary tables.

No numerics here. Core errors (``TmfError``) are turned into ``Error: ...`` and exit code 1 at
one place, ``command``; bad flags are usage errors (exit 2, from typer).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tmfcli.errors import TmfError
from tmfcli.io import spec as specs

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Temporal mean-field games: equilibria, N-agent simulation, finite-population bounds.\n\n"
    "Example:  tmf solve experiments/resource-demo.yaml --set population.batch=1",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML), see docs/spec.md",
                                         metavar="SPEC", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override a spec key, e.g. --set population.batch=1 (repeatable)",
    metavar="KEY=VALUE", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="result directory [default: results/<name>/<command>/<hash>/, a sweep "
    "results/<name>/<command>/sweep-<hash>/]", metavar="DIR", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="recompute even if DIR is up to date")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", help="cells run at once on this machine [default: the number of cores]", min=1,
    metavar="N", show_default=False)]
SweepOpt = Annotated[list[str] | None, typer.Option(
    "--sweep", help="sweep a spec key over values, e.g. --sweep population.batch=1,10,100 "
    "(repeatable; cross product with the spec's sweep:)", metavar="KEY=V1,V2",
    show_default=False)]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="run the cells on a Dask cluster, e.g. tcp://10.0.0.5:8786 "
    "[default: executor.scheduler, else local]", metavar="ADDRESS", show_default=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress on stderr")]
PolicyOpt = Annotated[str | None, typer.Option(
    "--policy", help="a result directory of 'tmf solve' (policy.csv) or a population-aware "
    "policy directory, 'uniform', or 'synchronous' (the equilibrium of the spec with B = N) "
    "[default: the spec's equilibrium]", metavar="DIR|uniform|synchronous", show_default=False)]


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Register a command whose core errors become ``Error: ...`` on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except TmfError as error:
            err.print(f"Error: {error.message()}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None

    app.command()(wrapper)
    return wrapper


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


Update = Callable[[str, int, int], None]


@contextmanager
def progress(label: str, quiet: bool = False) -> Iterator[Update]:
    """Progress on stderr; yields update(phase, done, total).

    On a terminal, rich bars with elapsed and remaining time; elsewhere (CI, nohup, make) one
    plain line at most every TMF_LOG_EVERY seconds (default 5): ``label phase: done/total,
    elapsed``, and a last line when the run took that long; nothing with ``quiet``.
    """
    if quiet:
        yield lambda phase, done, total: None
        return
    if not err.is_terminal:
        with _plain_log(label) as update:
            yield update
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"
                   "/{task.total}"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                   transient=True)
    tasks: dict[str, Any] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(_name(label, phase), total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield advance


def _name(label: str, phase: str) -> str:
    """'tmf solve' and phase 'solve' -> 'tmf solve'; phase 'cells' -> 'tmf solve cells'."""
    return label if label.split()[-1] == phase else f"{label} {phase}"


@contextmanager
def _plain_log(label: str) -> Iterator[Update]:
    every = float(os.environ.get("TMF_LOG_EVERY", "5") or 5)
    start = time.monotonic()
    state: dict[str, Any] = {"last": start, "line": None, "printed": False}

    def line() -> str:
        phase, done, total = state["line"]
        return f"{_name(label, phase)}: {done}/{total}, elapsed {time.monotonic() - start:.0f} s"

    def update(phase: str, done: int, total: int) -> None:
        state["line"] = (phase, done, total)
        now = time.monotonic()
        if now - state["last"] >= every:
            state["last"], state["printed"] = now, True
            err.print(line(), markup=False, highlight=False)

    yield update
    if state["printed"] and state["line"] is not None:
        err.print(line(), markup=False, highlight=False)


def summary(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, fmt(value))
    out.print(table)


def load(spec_path: Path, overrides: list[str] | None) -> specs.Spec:
    return specs.load(spec_path, overrides or [])


def out_dir(spec: specs.Spec, given: Path | None, command: str) -> Path:
    """``--out`` as given (``cli.batch.run_command`` passes it here first); without it
    ``results/<name>/<command>``, the parent of the run store's directories (``io.runs``)."""
    return given if given is not None else Path("results") / spec.name / command
