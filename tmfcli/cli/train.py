"""``tmf train``: TMF-PG from N-agent rollouts, with baselines and the exact yardstick."""

from __future__ import annotations

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
    summary,
)
from tmfcli.learning.registry import listing  # names only: loads no numerics (start-up)


@command
def train(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
          force: ForceOpt = False, max_memory: MemoryOpt = None,
          algorithm: Annotated[str | None, typer.Option(
              help="; ".join(f"{name}: {summary}" for name, summary in listing())
              + " [default: train.algorithm]",
              show_default=False)] = None,
          sweeps: SweepOpt = None, jobs: JobsOpt = None, scheduler: SchedulerOpt = None,
          quiet: QuietOpt = False) -> None:
    """Learn a population-aware policy from rollouts of N agents, B acting per step.

    Writes iterations.csv, summary.csv (with the N-agent epsilon eps_n of the final policy),
    the policy (logits.csv + mu_weights.csv, or policy.csv for mf-q) and manifest.yaml
    (docs/train.md); with a sweep (e.g. over seeds and batches), one such directory per cell
    and the stacked tables on top.

    Example:  tmf train experiments/train-resource.yaml --sweep population.batch=1,all
    """
    from tmfcli.cli.batch import run_command  # here: heavy (start-up)
    from tmfcli.command_registry import Options
    from tmfcli.commands import train as training

    if algorithm is not None:  # part of the spec, so part of the result's hash
        overrides = [*(overrides or []), f"train.algorithm={algorithm}"]
    report = run_command("train", spec_path, overrides, out, force, Options(), sweeps, jobs,
                         scheduler, quiet, max_memory)
    if not report.sweep:
        summary(f"tmf train: {report.rows[0].cell.spec.name}", training.summary_rows(report.top))
