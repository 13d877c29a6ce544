"""What a sweep does with a command of ``tmfcli.command_registry``: the identity of one run,
and the run itself.

A job runs one command on one (cell's) spec into one directory, with the manifest last. Jobs
are looked up by name, so a worker process or a Dask worker on another machine needs only the
name, the spec and the options.
"""

from __future__ import annotations

from pathlib import Path

from tmfcli.command_registry import Command, Options, Progress, load
from tmfcli.commands.policy_choice import choose_policy
from tmfcli.io.spec_types import Spec


def key(command: Command, spec: Spec, options: Options) -> str:
    """The run's identity beyond the spec blocks it reads (``Command.reads``): the command,
    and the policy's fingerprint for commands that run a policy. Checks the spec
    (``Command.check``) and loads and checks the policy, so a bad one fails here, before any
    run."""
    if command.check is not None:
        load(command.check)(spec)
    if not command.policy:
        return command.name
    return f"{command.name} --policy {choose_policy(spec, options.policy).key}"


def run(command: Command, spec: Spec, directory: Path, options: Options,
        on_progress: Progress | None) -> None:
    """Write one run's tables and manifest into ``directory`` (``Command.run``)."""
    load(command.run)(spec, directory, options, on_progress)
