"""``tmf simulate``: the N-agent system against the mean field."""

from __future__ import annotations

from typing import Annotated

import typer

from tmfcli.cli.common import (
    ForceOpt,
    MemoryOpt,
    OutOpt,
    PolicyOpt,
    SetOpt,
    SpecArg,
    check_size,
    command,
    err,
    load,
    out_dir,
    progress,
    summary,
)
from tmfcli.io import results


@command
def simulate(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
             force: ForceOpt = False, max_memory: MemoryOpt = None,
             policy: PolicyOpt = None,
             replicas: Annotated[int | None, typer.Option(
                 help="independent replicas [default: simulate.replicas]", min=1,
                 show_default=False)] = None) -> None:
    """Simulate N agents, B of them acting per step, and compare with the mean-field flow.

    Writes trajectory.csv, replicas.csv, summary.csv and manifest.yaml (docs/simulate.md).
    Without --policy, the spec's equilibrium is read from results/<name>/solve when that holds a
    solve of the same spec, else solved first; --policy synchronous uses the equilibrium of the
    spec with B = N (round k's policy in round k). A solve that did not converge is labelled
    "not converged" with a warning line; the exit code stays 0 (docs/simulate.md).

    Example:  tmf simulate experiments/queue-simulate.yaml --replicas 200 --policy uniform
    """
    from tmfcli.commands import simulate as sim
    from tmfcli.commands.policy_choice import choose_policy
    from tmfcli.commands.solve import warning
    from tmfcli.errors import SpecError
    from tmfcli.io.spec import setting

    if replicas is not None:
        overrides = [*(overrides or []), f"simulate.replicas={replicas}"]
    spec = load(spec_path, overrides, max_memory)
    check_size(spec, "simulate", solve=policy is None)
    problem = setting(spec)
    if problem.agents is None:
        raise SpecError("population.agents", "missing (simulate needs a finite population)",
                        "add population.agents and population.batch", spec.source)
    target = out_dir(spec, out, "simulate")
    choice = choose_policy(spec, policy, solved=out_dir(spec, None, "solve"))
    key = f"simulate --policy {choice.key}"
    if not force and results.is_up_to_date(target, spec, key):
        err.print(f"{target} is up to date (same spec and policy); use --force to recompute")
    else:
        results.claim(target, key, results.spec_hash(spec, key), force)
        with progress("simulate") as update:
            chosen = choice.get(spec, on_progress=update)
            if chosen.reused_from is not None:
                err.print(f"policy: reusing the solve in {chosen.reused_from} (same "
                          "equilibrium inputs); not solving again", markup=False)
            cmp = sim.compare(problem, chosen.on_steps(problem.T), spec.simulate.replicas,
                              spec.seed,
                              spec.population.activation, spec.population.init,
                              on_step=lambda done, total: update("replicas", done, total))
        frames = sim.tables(cmp, spec.seed, spec.simulate.every)
        extra = sim.outcome(cmp, spec, frames, chosen.description)
        with results.new_result(target, key, results.spec_hash(spec, key), force) as stage:
            for name, frame in frames.items():
                results.write_csv(frame, stage / name)
            results.write_yaml(results.manifest(spec, key, **extra,
                                                policy_converged=chosen.converged,
                                                policy_stop_reason=chosen.stop_reason),
                               stage / results.MANIFEST)
    summary(f"tmf simulate: {spec.name}", sim.summary_rows(target))
    data = results.read_manifest(target) or {}
    if data.get("policy_converged") is False:
        err.print(warning(str(data.get("policy_stop_reason"))), markup=False)
