"""``tmf bound-check``: the finite-population gap over N and B."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

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
from tmfcli.errors import TmfError

if TYPE_CHECKING:
    import pandas as pd


@command
def bound_check(spec_path: SpecArg, overrides: SetOpt = None, given_out: OutOpt = None,
                force: ForceOpt = False, max_memory: MemoryOpt = None,
                policy: PolicyOpt = None,
                workers: Annotated[int | None, typer.Option(
                    help="worker processes inside one run [default: CPU count, at most 2; "
                    "1 when cells of a sweep run in parallel]", min=1,
                    show_default=False)] = None,
                sweeps: SweepOpt = None, jobs: JobsOpt = None, scheduler: SchedulerOpt = None,
                quiet: QuietOpt = False,
                target_gap: Annotated[float | None, typer.Option(
                    "--target-gap", help="print, per regime, the N at which the predicted "
                    "gap c_max/sqrt(N) falls to this value (e.g. 0.01)", metavar="X",
                    show_default=False)] = None) -> None:
    """Measure the O(1/sqrt N) finite-population gap over N and B, fit it, compare with the bound.

    Sweeps bound_check.agents x bound_check.batch with bound_check.replicas replicas per cell
    under one policy. Writes replicas.csv, cells.csv, fits.csv and manifest.yaml; an
    interrupted sweep resumes. Exit code 3 when a regime fails its slope or bound verdict
    (docs/bound-check.md); the verdict on the predicted constant (linear-noise approximation,
    measured/predicted within 10% at the largest N) is printed and recorded, not part of it.

    Example:  tmf bound-check experiments/resource-bound.yaml --set bound_check.replicas=50
    """
    from tmfcli.cli.batch import run_command  # here: heavy (start-up)
    from tmfcli.command_registry import Options
    from tmfcli.commands.bound_check import reuse
    from tmfcli.commands.solve import warning
    from tmfcli.io.results import read_manifest

    if target_gap is not None and not (math.isfinite(target_gap) and target_gap > 0):
        raise TmfError(f"--target-gap: {target_gap:g} is not a positive gap",
                       "give the gap E max_t ||mu_hat_t - mu_bar_t||_1 to reach, e.g. "
                       "--target-gap 0.01")
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
    # the run just completed or was up to date: its report, by the hash it wrote
    report = reuse(str((read_manifest(target) or {}).get("spec_hash")), target)
    assert report is not None
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
    if "predicted" in cells.columns:
        constant_table(cells, fits, regimes, target_gap)
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


def constant_table(cells: pd.DataFrame, fits: pd.DataFrame, regimes: list[str],
                   target_gap: float | None) -> None:
    """The predicted constant per cell, measured/predicted with its interval, the verdict on
    the constant per regime and, with ``--target-gap``, the N that reaches it."""
    from tmfcli.analysis.fluctuations import TOLERANCE, target_agents

    e = cells[cells["metric"] == "e_max"]
    table = Table(title="predicted gap c_max/sqrt(N) (linear-noise approximation)",
                  title_justify="left")
    for column in ("regime", "N", "c_max", "e_max", "predicted", "measured/predicted [95% CI]"):
        table.add_column(column, no_wrap=True)
    for regime in regimes:
        for r in e[e["regime"].astype(str) == regime].sort_values("N").to_dict("records"):
            c_max = float(r["predicted"]) * math.sqrt(float(r["N"]))
            table.add_row(regime, str(int(r["N"])), f"{c_max:.4g}", fmt(r["estimate"]),
                          fmt(r["predicted"]),
                          f"{fmt(r['ratio'])} [{fmt(r['ratio_low'])}, {fmt(r['ratio_high'])}]")
    out.print(table)
    e_fits = fits[fits["metric"] == "e_max"]
    verdicts = e_fits.set_index(e_fits["regime"].astype(str))
    for regime in regimes:
        if "constant_verdict" not in verdicts:
            break
        v = verdicts.loc[regime]
        out.print(f"constant B={regime}: {v['constant_verdict']} (measured/predicted "
                  f"{fmt(v['ratio'])} [{fmt(v['ratio_low'])}, {fmt(v['ratio_high'])}] at the "
                  f"largest N; tolerance +-{TOLERANCE:.0%}); slope verdict: {v['verdict']}")
    if target_gap is None:
        return
    for regime in regimes:
        mine = e[e["regime"].astype(str) == regime].sort_values("N")
        if mine.empty:
            continue
        last = mine.iloc[-1]
        root = math.sqrt(float(last["N"]))
        c, se = float(last["predicted"]) * root, float(last["predicted_se"]) * root
        if not (math.isfinite(c) and c > 0):
            out.print(f"target gap {target_gap:g}, B={regime}: no fluctuation predicted")
            continue
        lo, hi = target_agents(max(c - 1.96 * se, 0.0), target_gap), \
            target_agents(c + 1.96 * se, target_gap)
        out.print(f"target gap {target_gap:g}, B={regime}: N = {target_agents(c, target_gap)} "
                  f"[{lo}, {hi}] (c_max = {c:.4g} +- {1.96 * se:.2g} at N = {int(last['N'])}; "
                  "c_max depends on N where the setting does, e.g. B = 1 in rounds)")
