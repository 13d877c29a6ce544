"""What every command of the ``tmf`` CLI shares: the typer app, options, error translation,
progress bars and summary tables.

No numerics here, and nothing heavy at import: ``tmf --help`` and ``tmf games`` load only
typer and rich; the spec, the run store and what they pull (numpy, pandas, numba, scipy) are
imported inside the functions that need them (start-up time, measured in ``make bench``).
Core errors (``TmfError``) are turned into ``Error: ...`` and exit code 1 at
one place, ``command``; bad flags are usage errors (exit 2, from typer).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tmfcli.errors import Interrupted, TmfError, interrupted_at_start

if TYPE_CHECKING:
    from tmfcli.io import spec_types

app = typer.Typer(
    add_completion=True,  # --install-completion, --show-completion (README)
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Asynchronous mean-field learning: learn policies from N-agent samples, solve "
    "mean-field equilibria, simulate N agents, check finite-population bounds.\n\n"
    "Example:  tmf train experiments/train-resource.yaml --set population.batch=1",
)
# user text (keys, values, paths) is printed literally: no markup, no :emoji: codes
# Off a terminal (a pipe, a file, make) nothing is cut or folded at 80 columns: a table is as
# wide as its longest row, so a result path can be copied whole (rich's default there is 80).
OFF_TERMINAL_WIDTH = 100_000
out = Console(highlight=False, markup=False, emoji=False,
              width=None if sys.stdout.isatty() else OFF_TERMINAL_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
MAX_ERROR = 500  # characters of an error line

SpecArg = Annotated[str, typer.Argument(help="experiment spec (YAML), see docs/spec.md",
                                         metavar="SPEC", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override a spec key, e.g. --set population.batch=1 (repeatable)",
    metavar="KEY=VALUE", show_default=False)]
OutOpt = Annotated[str | None, typer.Option(
    "--out", help="result directory [default: results/<name>/<command>/<hash>/, a sweep "
    "results/<name>/<command>/sweep-<hash>/]", metavar="DIR", show_default=False)]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="recompute even if DIR is up to date; replace a result of another spec")]
MemoryOpt = Annotated[str | None, typer.Option(
    "--max-memory", help="refuse a run estimated to need more memory, e.g. 8G or 500M "
    "[default: half of the machine's RAM]", metavar="SIZE", show_default=False)]
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


def one_line(text: str, limit: int = MAX_ERROR) -> str:
    """``text`` as one printable line: control characters escaped, cut to ``limit``."""
    text = text[: 4 * limit]
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(message: str) -> None:
    """Print ``Error: message`` as one literal line on stderr."""
    err.print(one_line(f"Error: {message}"), markup=False, emoji=False, highlight=False,
              soft_wrap=True)


def light_exit() -> None:
    """Make the coming interpreter exit cheap after an interrupt: move every object to the
    permanent generation (``gc.freeze``), so that the collections of Python's shutdown do not
    walk the millions of objects of numpy, numba, pandas and matplotlib. That walk costs about
    0.7 s of CPU, 6-9 s on a loaded machine, between the ``Error: interrupted`` line and the
    exit (measured with strace: no system call in between). Only in a process of its own (a
    real stderr): inside a test runner's in-process CLI nothing is frozen."""
    import gc

    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # CliRunner's stream: not our process
        return
    gc.freeze()


RETRY_S = 0.05  # a signal that arrived inside a finalizer is sent again after this


def _in_finalizer(frame: Any) -> bool:
    """Whether ``frame`` runs inside a ``__del__`` (called from wherever an object died)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _interrupt(signum: int, frame: Any) -> None:
    """SIGINT: ``KeyboardInterrupt``, SIGTERM: ``Interrupted``. Raised inside a finalizer
    (e.g. llvmlite's ``ObjectRef.__del__`` while numba compiles) Python would print it as
    'Exception ignored in ...' with a traceback and drop it, and the command would run on:
    there the signal is sent again a moment later, once the finalizer has returned."""
    if _in_finalizer(frame):
        threading.Timer(RETRY_S, os.kill, (os.getpid(), signum)).start()
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextmanager
def terminate_interrupts() -> Iterator[None]:
    """SIGTERM raises ``Interrupted`` in the main thread while a command runs, so that its
    clean-up (temporary directories, bound-check workers) runs as for Ctrl-C; SIGINT raises
    ``KeyboardInterrupt`` again (``tmf`` exits at once on it while starting, ``__main__``);
    neither is lost in a finalizer (``_interrupt``). Once the command has finished in
    ``tmf``'s own process, SIGINT is ignored: its results are written and only the exit is
    left (the start-up handler would say that nothing ran)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.SIG_IGN if previous_int is interrupted_at_start
                      else previous_int)


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Register a command whose core errors become ``Error: ...`` on stderr and exit code 1.

    This is the one boundary where user input enters: every ``TmfError`` (spec, ``--set``,
    policy files, manifests, output paths, sizes) is printed as one literal line; numpy
    warnings raised on the way to such an error are dropped (the error says what went wrong);
    an interrupt ends with one line and exit code 130 (Ctrl-C) or 143 (SIGTERM). Anything else
    is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings(record=True) as caught, terminate_interrupts():
            try:
                fn(*args, **kwargs)
            except TmfError as error:
                fail(error.message())
                raise typer.Exit(1) from None
            except KeyboardInterrupt as stop:
                fail("interrupted — rerun the same command to start again (bound-check "
                     "resumes from its finished cells)")
                code = 128 + stop.signum if isinstance(stop, Interrupted) else 130
                light_exit()
                raise typer.Exit(code) from None
            finally:
                pending = list(caught)
        for w in pending:  # a successful run shows its warnings
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)

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
    from rich.progress import (  # imported here: only a run on a terminal draws bars (start-up)
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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


def load(spec_path: str | Path, overrides: list[str] | None,
         max_memory: str | None = None) -> spec_types.Spec:
    """Read and validate the spec; ``max_memory`` (``--max-memory``) sets the size limit the
    spec's games and runs are checked against."""
    from tmfcli.io import budget  # imported here: the spec pulls numpy, numba (start-up)
    from tmfcli.io import spec as specs

    try:
        budget.set_limit(budget.parse_size(max_memory) if max_memory is not None else None)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--max-memory") from None
    return specs.load(spec_path, overrides or [])


def out_dir(spec: spec_types.Spec, given: str | None, command: str) -> Path:
    """``--out`` validated (``results.check_out``: not empty, not a file, no over-long name;
    ``cli.batch.run_command`` passes it here first); without it ``results/<name>/<command>``,
    the parent of the run store's directories (``io.runs``)."""
    from tmfcli.io import results as result_dirs  # imported here: pandas (start-up)

    if given is None:
        default = Path("results") / spec.name / command
        return result_dirs.check_out(str(default), "the default result directory")
    return result_dirs.check_out(given)
