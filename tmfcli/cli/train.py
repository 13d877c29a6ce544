"""``tmf train``: TMF-PG from N-agent rollouts, with baselines and the exact yardstick."""

from __future__ import annotations

from typing import Annotated

import typer

from tmfcli.cli.common import (
    ForceOpt,
    OutOpt,
    SetOpt,
    SpecArg,
    command,
    err,
    load,
    out_dir,
    progress,
    summary,
)
from tmfcli.io import results


@command
def train(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
          force: ForceOpt = False,
          algorithm: Annotated[str | None, typer.Option(
              help="tmf-pg | tmf-pg-exact | mf-q | independent-pg [default: train.algorithm]",
              show_default=False)] = None) -> None:
    """Learn a population-aware policy from rollouts of N agents, B acting per step.

    Writes iterations.csv, summary.csv, the policy (logits.csv + mu_weights.csv, or policy.csv
    for mf-q) and manifest.yaml (docs/train.md).

    Example:  tmf train experiments/train-resource.yaml --set population.batch=1
    """
    from tmfcli.commands import train as training
    from tmfcli.io.policy_files import write_policy

    if algorithm is not None:  # part of the spec, so part of the result's hash
        overrides = [*(overrides or []), f"train.algorithm={algorithm}"]
    spec = load(spec_path, overrides)
    target = out_dir(spec, out, "train")
    if not force and results.is_up_to_date(target, spec, "train"):
        err.print(f"{target} is up to date (same spec); use --force to recompute")
    else:
        key = results.spec_hash(spec, "train")
        results.claim(target, "train", key, force)  # refused before any work
        with progress("train") as update:
            run = training.run(spec, on_progress=update)
        frames = training.tables(run, spec)
        game = run.setting.game
        extra = training.outcome(run, frames)
        with results.new_result(target, "train", key, force) as stage:  # swapped in whole
            for name, frame in frames.items():
                results.write_csv(frame, stage / name)
            write_policy(run.result.policy, stage, game.obs_labels, game.act_labels)
            results.write_yaml(results.manifest(spec, "train", **extra),
                               stage / results.MANIFEST)
    summary(f"tmf train: {spec.name}", training.summary_rows(target))
