"""How every command runs its spec: one run, or a sweep of cells on an executor, with
progress, the sweep's summary, and the exit codes of a batch.

Exit codes: 0 every cell done; 1 a cell failed (each listed on stderr) or bad input;
128 + the signal when interrupted: 130 Ctrl-C (SIGINT), 143 SIGTERM (finished cells kept;
rerun to resume).
"""

from __future__ import annotations

import math

import typer
from rich.table import Table

from tmfcli import api
from tmfcli.cli.common import err, fail, fmt, light_exit, load, out, out_dir, progress
from tmfcli.command_registry import COMMANDS, Options
from tmfcli.commands import sweep
from tmfcli.errors import TmfError
from tmfcli.io import addresses


def run_command(command: str, spec_path: str, overrides: list[str] | None, given_out: str | None,
                force: bool, options: Options, sweeps: list[str] | None, jobs: int | None,
                scheduler: str | None, quiet: bool, max_memory: str | None = None
                ) -> sweep.Report:
    """Load the spec, then ``api.execute``: expand its sweep, check every cell's size, run
    what is not done; exits on interrupt or failure.

    The report's ``sweep`` is False for a plain run, whose directory is ``report.top``.
    """
    if scheduler is not None:  # parsed before the spec is read and anything connects
        try:
            addresses.parse(scheduler)
        except addresses.AddressError as error:
            shown = scheduler if len(scheduler) <= 80 else scheduler[:77] + "..."
            raise TmfError(f"--scheduler {shown}: {error}",
                           f"write protocol://host:port, e.g. {addresses.EXAMPLE}") from None
    spec = load(spec_path, overrides, max_memory)
    # the checks of an output path given by the user (--out "" or a file is refused)
    target = out_dir(spec, given_out, command) if given_out is not None else None
    with progress(f"tmf {command}", quiet) as update:
        report = api.execute(command, spec, options, target, force, sweep.parse_cli(sweeps),
                             jobs, scheduler, update,
                             announce=lambda line: err.print(line, markup=False))
    if report.interrupted and not report.sweep:
        kept = " (its finished cells are kept beside it)" if COMMANDS[command].stages else ""
        fail(f"interrupted: {report.top} is left as it was{kept}; rerun the same command to "
             "finish it")
        light_exit()
        raise typer.Exit(128 + report.signum)
    if report.interrupted:
        finished = report.count("done", "reused")
        fail(f"interrupted: {finished} of {len(report.rows)} cells finished and kept in "
             f"{report.top}; rerun the same command to resume")
        light_exit()
        raise typer.Exit(128 + report.signum)
    if not report.sweep:
        if report.failed:  # a single run on a Dask worker
            raise TmfError(report.failed[0].error)
        if report.count("reused"):
            err.print(f"{report.top} is up to date (same spec); use --force to recompute",
                      markup=False)
        return report
    show_sweep(report)
    if report.failed:
        for row in report.failed:
            err.print(f"failed: {row.cell.label}: {row.error}", markup=False, soft_wrap=True)
        err.print(f"Error: {len(report.failed)} of {len(report.rows)} cells failed — see "
                  f"{report.top / sweep.SWEEP_TABLE}; rerun to retry them", markup=False)
        raise typer.Exit(1)
    return report


def show_sweep(report: sweep.Report) -> None:
    """A short table of the cells: swept values, status, elapsed."""
    keys = sweep.columns([r.cell for r in report.rows])
    table = Table(title=f"tmf {report.command}: sweep of {len(report.rows)} cells "
                  f"({report.count('done')} run, {report.count('reused')} reused, "
                  f"{report.count('failed')} failed)", title_justify="left")
    for key in [*keys, "status", "elapsed_s"]:
        table.add_column(key)
    shown = report.rows if len(report.rows) <= 20 else report.rows[:20]
    for row in shown:
        values = dict(row.cell.values)
        elapsed = "" if math.isnan(row.elapsed_s) else fmt(row.elapsed_s)
        table.add_row(*[sweep.show(values.get(k)) for k in keys], row.status, elapsed)
    out.print(table)
    if len(shown) < len(report.rows):
        out.print(f"... {len(report.rows) - len(shown)} more cells in sweep.csv")
    for note in report.notes:
        out.print(f"note: {note}")
    out.print(f"results: {report.top} (sweep.csv and stacked tables)")
