"""``tmf spec``: the resolved spec, as a manifest records it."""

from __future__ import annotations

import typer

from tmfcli.cli.common import SetOpt, SpecArg, command, load


@command
def spec(spec_path: SpecArg, overrides: SetOpt = None) -> None:
    """Print the resolved spec: every default filled in, --set applied, auto resolved.

    This is the spec: block a run's manifest.yaml records, with the spec's sweep and executor
    blocks when it has them; saved to a file, it runs as the spec does (docs/spec.md).
    Writes nothing.

    Example:  tmf spec experiments/resource-demo.yaml --set population.batch=1 > resolved.yaml
    """
    import yaml

    resolved = load(spec_path, overrides)
    data = resolved.to_dict()
    if resolved.sweep:
        block: dict[str, object] = {key: list(values) for key, values in resolved.sweep.axes}
        if resolved.sweep.cases:
            block["cases"] = [dict(case) for case in resolved.sweep.cases]
        data["sweep"] = block
    if resolved.executor.scheduler is not None:
        data["executor"] = {"scheduler": resolved.executor.scheduler}
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
