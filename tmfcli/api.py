"""The Python API of tmf: what the command line does, as functions (docs/api.md).

    import tmfcli as tmf

    spec = tmf.load_spec("experiments/resource-demo.yaml", {"population.batch": 10})
    eq = tmf.solve(spec)                   # as `tmf solve`: into the run store, or reused
    eq.manifest["exploitability"]          # the manifest, as a dict
    eq.tables["policy"]                    # policy.csv, as a pandas DataFrame
    again = tmf.read(eq.directory)         # any result directory read back

The CLI runs through the same functions: ``tmf solve SPEC`` is ``load_spec`` then ``execute``
(``cli/batch.py``), so a run started here writes the same directory, tables and manifest as
the command, finds and reuses the same earlier runs, and refuses the same bad input with the
same ``TmfError`` (``str(error)`` is the problem, ``error.message()`` the CLI's line).

Runs always go to a directory: by default the run store, ``results/<name>/<command>/<hash>/``
below the current directory (``out=`` chooses another), as the command line does; a
``Result`` reads its tables from there.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from tmfcli import command_registry
from tmfcli.command_registry import Options
from tmfcli.errors import ResultsError, SpecError, TmfError
from tmfcli.io import spec as specs
from tmfcli.io import spec_text, spec_types

if TYPE_CHECKING:
    from tmfcli.commands.sweep import Cell, Report

__all__ = ["COMMANDS", "Result", "Spec", "TmfError", "bound_check", "execute", "load_spec",
           "read", "run", "simulate", "solve", "train"]

Spec = spec_types.Spec
COMMANDS = tuple(command_registry.COMMANDS)  # the commands that write runs
Overrides = Mapping[str, Any] | Iterable[str] | None
Progress = Callable[[str, int, int], None]  # (phase, done, total)


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------
def load_spec(spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None) -> Spec:
    """Read and validate a spec from a YAML file or a mapping, with overrides.

    Parameters
    ----------
    spec
        The path of a YAML spec (docs/spec.md), the same content as a mapping (relative game
        files are then found from the current directory), or a ``Spec`` (returned as it is).
    overrides
        ``{"population.batch": 1, "game.params.K": 5}`` (dotted keys, Python values), or
        ``["population.batch=1"]`` as ``--set`` takes them (values read as YAML).

    Raises
    ------
    TmfError
        (a ``SpecError``) naming the file or override and the key, as the CLI prints it.
    """
    items = _override_items(overrides)
    if isinstance(spec, Spec):
        if items:
            raise TypeError("load_spec: give the path or the mapping to override, not a Spec")
        return spec
    if isinstance(spec, Mapping):
        data = spec_text.apply_overrides(copy.deepcopy(dict(spec)), items, "overrides")
        return specs.from_dict(data, "")
    return specs.load(spec, items)


def _override_items(overrides: Overrides) -> list[str]:
    """Overrides as ``--set`` takes them; a mapping's values are written as YAML."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        return [f"{key}={yaml.safe_dump(value, default_flow_style=True, width=10**6)}"
                .removesuffix("\n").removesuffix("\n...") for key, value in overrides.items()]
    return list(overrides)


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
def execute(command: str, spec: Spec, options: Options, out: Path | None = None,
            force: bool = False, sweep: Sequence[tuple[str, Sequence[Any]]] = (),
            jobs: int | None = None, scheduler: str | None = None,
            on_progress: Progress | None = None,
            announce: Callable[[str], None] | None = None,
            command_line: str | None = None) -> Report:
    """Run ``command`` on every cell of the spec's sweep (with the ``sweep`` axes added) that
    is not done yet; the machinery of ``run`` and of the CLI.

    Checks every cell (its size against the memory limit, its policy) before any work,
    connects to ``scheduler`` (or ``executor.scheduler``) when given, then runs the cells
    (``commands.sweep.run``). ``announce`` receives the notice of a long run. Returns the
    report: interrupted runs and failed cells are in it, not raised.
    """
    from dataclasses import replace

    from tmfcli.commands import sweep as sweeps
    from tmfcli.commands.executors import DaskCluster, Local, default_jobs, executor
    if command not in command_registry.COMMANDS:
        raise ValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")
    cells = sweeps.expand(spec, [(k, tuple(v)) for k, v in sweep])
    address = scheduler or spec.executor.scheduler
    at_once = 1 if address or len(cells) == 1 else \
        min(jobs if jobs is not None else default_jobs(), len(cells))
    check_sizes(command, cells, options, at_once, announce)
    runner = executor(jobs, address)  # connects to a scheduler now: fails fast
    if isinstance(runner, DaskCluster) and not cells[0].values and \
            command_registry.COMMANDS[command].grid:
        runner.client.close()
        # one run with a grid of its own (bound-check): it runs here, its cells on the cluster
        runner, options = Local(1), replace(options, scheduler=address)
    return sweeps.run(command, cells, options, runner, out, force, on_progress,
                      command_line=command_line)


def check_sizes(command: str, cells: list[Cell], options: Options, at_once: int = 1,
                announce: Callable[[str], None] | None = None) -> None:
    """Refuse a run whose cell is estimated over the memory limit (``--max-memory``), or
    whose ``at_once`` largest cells together are (a local pool), before any work; announce
    the longest cell when it is long."""
    from tmfcli.io import budget

    described = command_registry.COMMANDS.get(command)
    if described is None:
        return
    workers = 1
    if described.grid and options.workers is not None:
        workers = options.workers
    elif described.grid and described.default_workers is not None and at_once <= 1:
        workers = command_registry.load(described.default_workers)()
    # at_once > 1: sweep.run gives each cell one process when cells run in parallel
    longest = None
    sizes = []
    for cell in cells:
        estimate = budget.check(cell.spec, command, solve=options.policy is None,
                                workers=workers)
        sizes.append(estimate.total)
        if longest is None or estimate.seconds > longest[0].seconds:
            longest = (estimate, cell)
    together = sum(sorted(sizes)[-at_once:])
    if at_once > 1 and together > budget.limit():
        raise SpecError("", f"{at_once} cells at once (--jobs) would need about "
                        f"{budget.human(together)} of memory, over the limit of "
                        f"{budget.human(budget.limit())}",
                        "run fewer cells at once (--jobs), or raise --max-memory",
                        cells[0].spec.source)
    if announce is None or longest is None or longest[0].seconds <= budget.NOTICE_S:
        return
    estimate, cell = longest
    if len(cells) == 1:
        announce(f"tmf {command}: estimated to take up to about "
                 f"{budget.duration(estimate.seconds)} ({estimate.what}); Ctrl-C stops it")
    else:
        announce(f"tmf {command}: the cell {cell.label} is estimated to take up to about "
                 f"{budget.duration(estimate.seconds)} ({estimate.what}); Ctrl-C stops the "
                 "sweep, finished cells are kept")


def run(command: str, spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None,
        *, policy: str | None = None, out: str | Path | None = None, force: bool = False,
        sweep: Mapping[str, Sequence[Any]] | None = None, jobs: int | None = None,
        scheduler: str | None = None, workers: int | None = None,
        max_memory: str | None = None, on_progress: Progress | None = None) -> Result:
    """Run ``tmf <command>`` on a spec and return its result (a sweep's top directory for a
    sweep); reuses a run that is up to date, as the command does (``force=True`` reruns).

    The keywords are the command's options: ``policy`` (simulate, bound-check: a result
    directory, ``"uniform"`` or ``"synchronous"``), ``out``, ``force``, ``sweep``
    (``{"seed": [0, 1, 2]}``), ``jobs``, ``scheduler``, ``workers`` (bound-check) and
    ``max_memory`` (``"8G"``). ``on_progress(phase, done, total)`` is called as it goes.

    Raises ``TmfError`` for bad input and for a failed run or cell (a sweep's finished cells
    are kept), ``KeyboardInterrupt`` when interrupted (finished cells kept; run it again to
    resume).
    """
    from tmfcli.io import budget
    from tmfcli.io import results as result_dirs

    try:
        budget.set_limit(budget.parse_size(max_memory) if max_memory is not None else None)
    except ValueError as error:
        raise TmfError(str(error), "give a size such as 8G") from None
    loaded = load_spec(spec, overrides)
    target = result_dirs.check_out(str(out), "out") if out is not None else None
    options = Options(policy=policy, workers=workers, force=force)
    call = f"tmfcli.api.run({command!r}, {loaded.source or loaded.name!r})"
    report = execute(command, loaded, options, target, force, list((sweep or {}).items()),
                     jobs, scheduler, on_progress, command_line=call)
    if report.interrupted:
        raise KeyboardInterrupt(f"interrupted: finished cells are kept in {report.top}")
    if report.failed:
        if not report.sweep:
            raise TmfError(report.failed[0].error)
        raise TmfError(f"{len(report.failed)} of {len(report.rows)} cells failed "
                       f"({report.failed[0].cell.label}: {report.failed[0].error})",
                       f"see {report.top / 'sweep.csv'}; run again to retry them")
    return read(report.top)


def solve(spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None,
          **options: Any) -> Result:
    """``tmf solve``: the mean-field equilibrium; tables iterations, policy, flow. A solve
    that stops before ``solver.tolerance`` returns normally: see
    ``result.manifest["converged"]`` (the CLI's exit code 4)."""
    return run("solve", spec, overrides, **options)


def simulate(spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None,
             **options: Any) -> Result:
    """``tmf simulate``: N agents against the mean field; tables trajectory, replicas,
    summary."""
    return run("simulate", spec, overrides, **options)


def train(spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None,
          **options: Any) -> Result:
    """``tmf train``: a population-aware policy learned from rollouts; tables iterations,
    summary and the policy's."""
    return run("train", spec, overrides, **options)


def bound_check(spec: str | Path | Mapping[str, Any] | Spec, overrides: Overrides = None,
                **options: Any) -> Result:
    """``tmf bound-check``: the finite-population gap over N and B; tables replicas, cells,
    fits. A failed regime returns normally: see ``result.manifest["passed"]`` (the CLI's
    exit code 3)."""
    return run("bound-check", spec, overrides, **options)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass
class Result:
    """A result directory: its manifest and its CSV tables, read when first asked for.

    ``tables`` maps a table's name (its file name without ``.csv``) to the DataFrame of that
    file, exactly as ``pandas.read_csv`` reads it; ``result["policy"]`` is short for
    ``result.tables["policy"]``. For a sweep, ``cells`` are the results of its cells (in the
    order of ``sweep.csv``) and ``tables`` the stacked tables.
    """

    directory: Path
    manifest: dict[str, Any]
    _tables: dict[str, pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def command(self) -> str:
        return str(self.manifest.get("command", ""))

    @property
    def is_sweep(self) -> bool:
        return self.manifest.get("kind") == "sweep"

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        if self._tables is None:
            self._tables = {path.stem: pd.read_csv(path)
                            for path in sorted(self.directory.glob("*.csv"))}
        return self._tables

    def __getitem__(self, table: str) -> pd.DataFrame:
        tables = self.tables
        if table not in tables:
            raise KeyError(f"{self.directory} has no table {table!r}: it has "
                           f"{', '.join(tables) or 'none'}")
        return tables[table]

    @property
    def cells(self) -> list[Result]:
        """The cells of a sweep that finished (done or reused); [] for a single run."""
        if not self.is_sweep:
            return []
        with (self.directory / "sweep.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [read(self.directory / row["directory"]) for row in rows
                if row["status"] in ("done", "reused")]


def read(directory: str | Path) -> Result:
    """Read a finished result directory (of any command, or a sweep) back.

    ``directory`` may also be a command directory (``results/<name>/solve``) or its
    ``latest``: the run ``latest`` names is read, as ``--policy`` does.
    """
    from tmfcli.io import results as result_dirs
    from tmfcli.io import runs

    path = runs.resolve(Path(directory))
    data = result_dirs.read_manifest(path)
    if data is None:
        raise ResultsError(f"{path}: no finished result here (no manifest.yaml with "
                           "status: complete)",
                           "give the directory of a finished run, or run it again")
    return Result(path, data)
