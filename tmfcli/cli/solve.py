"""``tmf solve``: the mean-field equilibrium and its exploitability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tmfcli.cli.common import (
    ForceOpt,
    JobsOpt,
    MemoryOpt,
    OutOpt,
    QuietOpt,
    SchedulerOpt,
    SetOpt,
    SpecArg,
    SweepOpt,
    command,
    err,
    fmt,
    summary,
)

NOT_CONVERGED = 4  # exit code of a solve that stopped before reaching its tolerance


@command
def solve(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
          force: ForceOpt = False, max_memory: MemoryOpt = None,
          restarts: Annotated[int | None, typer.Option(
              help="random restarts for the uniqueness evidence [default: solver.restarts]",
              min=0, show_default=False)] = None,
          sweeps: SweepOpt = None, jobs: JobsOpt = None, scheduler: SchedulerOpt = None,
          quiet: QuietOpt = False) -> None:
    """Solve the mean-field equilibrium and report its exploitability.

    Writes iterations.csv, policy.csv, flow.csv and manifest.yaml; with a sweep, one such
    directory per cell and sweep.csv with the stacked tables on top. Exit code 4 (with a
    warning line) when the solver stopped before reaching solver.tolerance (in a sweep: in
    some cell).

    Example:  tmf solve experiments/resource-demo.yaml --set solver.iterations=500
    """
    from tmfcli.cli.batch import run_command  # here: heavy (start-up)
    from tmfcli.command_registry import Options
    from tmfcli.commands.solve import warning
    from tmfcli.io import results

    if restarts is not None:  # part of the spec, so part of the result's hash
        overrides = [*(overrides or []), f"solver.restarts={restarts}"]
    report = run_command("solve", spec_path, overrides, out, force, Options(), sweeps, jobs,
                         scheduler, quiet, max_memory)
    if not report.sweep:
        show_manifest_summary(report.top)
    unconverged = False
    for row in report.rows:
        data = results.read_manifest(row.directory) or {}
        if data.get("converged") is not True:
            where = f"{row.cell.label}: " if report.sweep else ""
            err.print(where + warning(str(data.get("stop_reason"))), markup=False)
            unconverged = True
    if unconverged:
        raise typer.Exit(NOT_CONVERGED)


def show_manifest_summary(target: Path) -> None:
    from tmfcli.io import results  # imported here: pandas (start-up)

    data = results.read_manifest(target) or {}
    u = data.get("uniqueness", {})
    samples = u.get("monotonicity_samples", 0)
    rows = [
        ("game", data.get("spec", {}).get("game", {}).get("name")),
        ("steps", data.get("steps")),
        ("solver", data.get("spec", {}).get("solver", {}).get("algorithm")),
        ("exploitability", data.get("exploitability")),
        ("J", data.get("J")),
        ("stop reason", data.get("stop_reason")),
        ("monotone (sampled)", f"{samples - u.get('monotonicity_violations', 0)}/{samples} "
         f"pairs, largest form {fmt(u.get('monotonicity_largest'))}"),
        ("dynamics depend on mu", u.get("dynamics_depend_on_mu")),
        ("restarts converged", f"{u.get('restarts_converged')}/{u.get('restarts')}"),
        ("flow spread (L1, max t)", u.get("flow_spread")),
        ("policy spread (mu-weighted)", u.get("policy_spread")),
        ("results", str(target)),
    ]
    if data.get("spec", {}).get("entropy", 0) > 0:
        rows.insert(4, ("exploitability (regularised)", data.get("exploitability_reg")))
    summary(f"tmf solve: {data.get('spec', {}).get('name')}", rows)
