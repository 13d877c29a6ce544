"""``tmf bound-check``: the finite-population gap over N and B."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
    fmt,
    out,
)


@command
def bound_check(spec_path: SpecArg, overrides: SetOpt = None, given_out: OutOpt = None,
                force: ForceOpt = False, max_memory: MemoryOpt = None,
                policy: PolicyOpt = None,
                workers: Annotated[int | None, typer.Option(
                    help="worker processes inside one run [default: CPU count, at most 2; "
                    "1 when cells of a sweep run in parallel]", min=1,
                    show_default=False)] = None,
                sweeps: SweepOpt = None, jobs: JobsOpt = None, scheduler: SchedulerOpt = None,
                quiet: QuietOpt = False) -> None:
    """Measure the O(1/sqrt N) finite-population gap over N and B, fit it, compare with the bound.

    Sweeps bound_check.agents x bound_check.batch with bound_check.replicas replicas per cell
    under one policy. Writes replicas.csv, cells.csv, fits.csv and manifest.yaml; an
    interrupted sweep resumes. Exit code 3 when a regime fails (docs/bound-check.md).

    Example:  tmf bound-check experiments/resource-bound.yaml --set bound_check.replicas=50
    """
    from tmfcli.cli.batch import run_command  # here: heavy (start-up)
    from tmfcli.commands.bound_check import reuse, sweep_hash
    from tmfcli.commands.jobs import Options
    from tmfcli.commands.solve import warning
    from tmfcli.io.results import read_manifest

    batch = run_command("bound-check", spec_path, overrides, given_out, force,
                        Options(policy=policy, workers=workers, force=force), sweeps, jobs,
                        scheduler, quiet, max_memory)
    if batch.sweep:
        for r in batch.rows:
            data = read_manifest(r.directory) or {}
            if data.get("policy_converged") is False:
                err.print(f"{r.cell.label}: {warning(str(data.get('policy_stop_reason')))}",
                          markup=False)
        if not all((read_manifest(r.directory) or {}).get("passed", True) for r in batch.rows):
            raise typer.Exit(3)
        return
    spec = batch.rows[0].cell.spec
    target = batch.top
    from tmfcli.commands.policy_choice import choose_policy

    report = reuse(sweep_hash(spec, choose_policy(spec, policy).key), target)
    assert report is not None  # the run just completed or was up to date
    fits = report.fits
    regimes = list(dict.fromkeys(fits["regime"].astype(str)))
    row = {(str(r["regime"]), r["metric"]): r for r in fits.to_dict("records")}

    def slope(r: dict[Any, Any] | None) -> str:
        if r is None or r["slope"] != r["slope"]:  # absent (older result) or nan
            return "n/a"
        return f"{r['slope']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

    table = Table(title=f"tmf bound-check: {spec.name} (e_max = E max_t ||mu_hat_t - "
                  "mu_bar_t||_1)", title_justify="left")
    table.add_column("regime")
    table.add_column("slope e_max [95% CI]", no_wrap=True)
    table.add_column("allowed", no_wrap=True)
    table.add_column("worst e_max/bound")
    table.add_column("verdict", no_wrap=True)
    for regime in regimes:
        e = row[(regime, "e_max")]
        table.add_row(regime, slope(e), f"<= {-0.5 + e['allowance']:.3f}",
                      fmt(e["worst_ratio"]), str(e["verdict"]))
    out.print(table)
    other = Table(title="reported, not judged", title_justify="left")
    for column in ("regime", "slope e_mean [95% CI]", "slope return gap [95% CI]"):
        other.add_column(column, no_wrap=True)
    for regime in regimes:
        other.add_row(regime, slope(row[(regime, "e_mean")]),
                      slope(row[(regime, "return_gap")]))
    out.print(other)
    cells = report.cells
    if "eps_n" in set(cells["metric"]):
        eps = Table(title=f"N-agent epsilon at N = {int(cells['N'].max())} (reported, not "
                    "judged)", title_justify="left")
        for column in ("regime", "eps_n [95% CI]", "eps_mf", "slope eps_n [95% CI]"):
            eps.add_column(column)
        for regime in regimes:
            mine = cells[cells["regime"].astype(str) == regime]
            last = mine[mine["N"] == mine["N"].max()].set_index("metric")
            e = last.loc["eps_n"]
            eps.add_row(regime, f"{fmt(e['estimate'])} [{fmt(e['ci_low'])}, {fmt(e['ci_high'])}]",
                        fmt(last.loc["eps_mf", "estimate"]), slope(row.get((regime, "eps_n"))))
        out.print(eps)
        out.print("eps_n: what one agent gains by playing the mean-field best response while "
                  "N - 1 play the policy; eps_mf: its limit as N grows, the policy's "
                  "mean-field exploitability in the regime (docs/bound-check.md)")
    c = report.constants
    out.print(f"policy: {report.policy}; Lipschitz constants L_P={fmt(c.L_P)}, L_0={fmt(c.L_0)} "
              f"({c.source}), L_pi={fmt(c.L_pi)} ({c.policy_source})")
    if any("steeper" in str(v) for v in fits["verdict"]):
        out.print("steeper than -1/2 is expected in steps with small B: only B agents move per "
                  "step, so over a fixed number of steps the gap shrinks like sqrt(B)/N")
    if (fits["allowance"].fillna(0) > 0).any():
        out.print("allowed: a regime passes when the slope interval reaches -1/2 plus the "
                  "sqrt(log T) drift of a maximum over T(N) steps (0 when T does not grow "
                  "with N; docs/bound-check.md)")
    if any("flatter" in str(v) for v in fits["verdict"]):
        out.print("flatter than -1/2: compare the e_mean slope and larger N (docs/bound-check.md)")
    out.print(f"results: {target}")
    if report.policy_converged is False:  # the gap is still measured; the label says it all
        err.print(warning(report.stop_reason), markup=False)
    if not report.passed:
        raise typer.Exit(3)

