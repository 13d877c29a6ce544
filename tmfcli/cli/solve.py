"""``tmf solve``: the mean-field equilibrium and its exploitability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tmfcli.cli.common import (
    ForceOpt,
    MemoryOpt,
    OutOpt,
    SetOpt,
    SpecArg,
    check_size,
    command,
    err,
    fmt,
    load,
    out_dir,
    progress,
    summary,
)
from tmfcli.io import results
from tmfcli.io.spec import Spec

NOT_CONVERGED = 4  # exit code of a solve that stopped before reaching its tolerance


@command
def solve(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
          force: ForceOpt = False, max_memory: MemoryOpt = None,
          restarts: Annotated[int | None, typer.Option(
              help="random restarts for the uniqueness evidence [default: solver.restarts]",
              min=0, show_default=False)] = None) -> None:
    """Solve the mean-field equilibrium and report its exploitability.

    Writes iterations.csv, policy.csv, flow.csv and manifest.yaml. Exit code 4 (with a
    warning line) when the solver stopped before reaching solver.tolerance.

    Example:  tmf solve experiments/resource-demo.yaml --set solver.iterations=500
    """
    from tmfcli.commands.solve import warning

    if restarts is not None:  # part of the spec, so part of the result's hash
        overrides = [*(overrides or []), f"solver.restarts={restarts}"]
    spec = load(spec_path, overrides, max_memory)
    target = out_dir(spec, out, "solve")
    if not force and results.is_up_to_date(target, spec, "solve"):
        err.print(f"{target} is up to date (same spec); use --force to recompute")
    else:
        results.claim(target, "solve", results.spec_hash(spec, "solve"), force)
        check_size(spec, "solve")
        compute(spec, target, force)
    show_manifest_summary(target)
    data = results.read_manifest(target) or {}
    if data.get("converged") is not True:
        err.print(warning(str(data.get("stop_reason"))), markup=False)
        raise typer.Exit(NOT_CONVERGED)


def compute(spec: Spec, target: Path, force: bool = False) -> None:
    """Solve and write the tables, then the manifest, into a new directory swapped in whole
    (``results.new_result``)."""
    from tmfcli.commands.solve import solve as solve_equilibrium
    from tmfcli.io.policy_files import write_policy
    from tmfcli.model.policy import TabularPolicy

    with progress("solve") as update:
        eq = solve_equilibrium(spec, on_progress=update)
    ev = eq.evaluation
    run = eq.result
    history = run.history.assign(seed=spec.seed)
    game = eq.setting.game
    outcome = {
        "stop_reason": run.stop_reason,
        "converged": run.converged,
        "iterations": run.iterations,
        "exploitability": ev.exploitability,
        "exploitability_reg": ev.exploitability_reg,
        "J": ev.J,
        "steps": eq.setting.T,
        "uniqueness": eq.evidence(),
        "timings": {"total_s": round(eq.elapsed_s, 3),
                    "solve_s": round(float(history["elapsed_s"].iloc[-1]), 3)},
    }
    with results.new_result(target, "solve", results.spec_hash(spec, "solve"), force) as stage:
        results.write_csv(history, stage / "iterations.csv")
        write_policy(TabularPolicy(ev.policy), stage, game.obs_labels, game.act_labels)
        results.write_csv(results.flow_table(ev.flow.mu, game.obs_labels), stage / "flow.csv")
        results.write_yaml(results.manifest(spec, "solve", **outcome), stage / results.MANIFEST)


def show_manifest_summary(target: Path) -> None:
    data = results.read_manifest(target) or {}
    u = data.get("uniqueness", {})
    samples = u.get("monotonicity_samples", 0)
    rows = [
        ("game", data.get("spec", {}).get("game", {}).get("name")),
        ("steps", data.get("steps")),
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
        rows.insert(3, ("exploitability (regularised)", data.get("exploitability_reg")))
    summary(f"tmf solve: {data.get('spec', {}).get('name')}", rows)
