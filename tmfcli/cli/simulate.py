"""``tmf simulate``: the N-agent system against the mean field."""

from __future__ import annotations

from typing import Annotated

import typer

from tmfcli.cli.common import (
    ForceOpt,
    JobsOpt,
    MemoryOpt,
    OutOpt,
    PolicyOpt,
    QuietOpt,
    SchedulerOpt,
    SetOpt,
    SpecArg,
    SweepOpt,
    command,
    err,
    summary,
)


@command
def simulate(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
             force: ForceOpt = False, max_memory: MemoryOpt = None,
             policy: PolicyOpt = None,
             replicas: Annotated[int | None, typer.Option(
                 help="independent replicas [default: simulate.replicas]", min=1,
                 show_default=False)] = None,
             sweeps: SweepOpt = None, jobs: JobsOpt = None, scheduler: SchedulerOpt = None,
             quiet: QuietOpt = False) -> None:
    """Simulate N agents, B of them acting per step, and compare with the mean-field flow.

    Writes trajectory.csv, replicas.csv, summary.csv and manifest.yaml (docs/simulate.md);
    with a sweep, one such directory per cell and sweep.csv with the stacked tables on top.
    Without --policy, the spec's equilibrium is read from the solve of the same spec in
    results/<name>/solve when there is one, else solved first; --policy synchronous uses the
    equilibrium of the spec with B = N (round k's policy in round k). A solve that did not
    converge is labelled "not converged" with a warning line; the exit code stays 0
    (docs/simulate.md).

    Example:  tmf simulate experiments/queue-simulate.yaml --replicas 200 --policy uniform
    """
    from tmfcli.cli.batch import run_command  # here: heavy (start-up)
    from tmfcli.command_registry import Options
    from tmfcli.commands import simulate as sim
    from tmfcli.commands.solve import warning
    from tmfcli.io import results

    if replicas is not None:
        overrides = [*(overrides or []), f"simulate.replicas={replicas}"]
    report = run_command("simulate", spec_path, overrides, out, force, Options(policy=policy),
                         sweeps, jobs, scheduler, quiet, max_memory)
    for row in report.rows:
        data = results.read_manifest(row.directory) or {}
        where = f"{row.cell.label}: " if report.sweep else ""
        if row.status == "done" and data.get("policy_reused_from"):
            err.print(f"{where}policy: reusing the solve in {data['policy_reused_from']} (same "
                      "equilibrium inputs); not solving again", markup=False)
        if not report.sweep:
            summary(f"tmf simulate: {row.cell.spec.name}", sim.summary_rows(report.top))
        if data.get("policy_converged") is False:
            err.print(where + warning(str(data.get("policy_stop_reason"))), markup=False)
