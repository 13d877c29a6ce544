"""What every command of the ``tmf`` CLI shares: the typer app, options, error translation,
progress bars and summary tables.

No numerics here. Core errors (``TmfError``) are turned into ``Error: ...`` and exit code 1 at
one place, ``command``; bad flags are usage errors (exit 2, from typer).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
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
    "--out", help="result directory [default: results/<name>/<command>/]", metavar="DIR",
    show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="recompute even if DIR is up to date")]
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


@contextmanager
def progress(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr (shown on terminals only); yields update(phase, done, total)."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"
                   "/{task.total}"), TimeElapsedColumn(), console=err, transient=True,
                   disable=not err.is_terminal)
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"{label} {phase}", total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield update


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
    return given if given is not None else Path("results") / spec.name / command
