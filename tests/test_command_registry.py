"""Every command that writes runs is described once and completely
(``tmfcli.command_registry``): one entry per such command of the CLI, and what each entry
says matches what a real (small) run of the command writes and what the run store, the size
checks, ``tmf runs`` and ``tmf report`` do with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.command_registry import COMMANDS, load
from tmfcli.io import budget, results, runs
from tmfcli.io import spec as specs
from tmfcli.io.report_inputs import read_run

runner = CliRunner()

SPEC: dict[str, Any] = {
    "name": "tiny",
    "game": {"name": "resource_selection_per_step"},
    "horizon": {"rounds": 2},
    "population": {"agents": 20, "batch": 2},
    "solver": {"algorithm": "mirror-descent", "iterations": 50, "tolerance": 1e-6,
               "restarts": 0},
    "simulate": {"replicas": 3},
    "bound_check": {"agents": [10, 20], "batch": [2, "all"], "replicas": 3},
    "train": {"algorithm": "tmf-pg", "iterations": 2, "inner_steps": 2, "rollouts": 2,
              "yardstick": False},
    "seed": 2,
}
# a small run of each command (several where runs write different tables)
RUNS: list[tuple[str, list[str]]] = [
    ("solve", []),
    ("simulate", []),
    ("bound-check", ["--workers", "1"]),
    ("train", []),                              # a population-aware policy
    ("train", ["--algorithm", "mf-q"]),         # a tabular one
]


def cli_commands() -> dict[str, Any]:
    """The commands of the ``tmf`` app by name, as click sees them."""
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_each_command_that_writes_runs_has_exactly_one_entry() -> None:
    """A command writes runs when it can run a sweep of them (``--sweep``); those, and only
    those, are described, each once under its own name."""
    commands = cli_commands()
    writing = {name for name, c in commands.items()
               if any(p.name == "sweeps" for p in c.params)}
    assert writing, "the probe finds the commands that run sweeps"
    assert set(COMMANDS) == writing
    assert all(name == entry.name for name, entry in COMMANDS.items())
    assert {"report", "validate", "runs"} <= set(commands) - writing


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_named_function_exists(name: str) -> None:
    entry = COMMANDS[name]
    targets = [entry.run, entry.budget.estimate, entry.report.section,
               *([entry.check] if entry.check else []),
               *([entry.default_workers] if entry.default_workers else [])]
    for target in targets:
        assert callable(load(target)), target
    assert entry.grid == (entry.default_workers is not None)
    assert set(entry.budget.takes) <= {"restarts", "solve", "workers"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Each small run of ``RUNS``, by command: its directory."""
    top = tmp_path_factory.mktemp("runs")
    path = top / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    found: dict[str, list[Path]] = {}
    for i, (name, extra) in enumerate(RUNS):
        out = top / f"{i}-{name}"
        result = runner.invoke(app, [name, str(path), "--out", str(out), "--quiet", *extra],
                               prog_name="tmf")
        assert result.exit_code in (0, 4), result.output  # 4: a solve short of tolerance
        found.setdefault(name, []).append(out)
    return found


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_entry_says_what_a_run_writes(name: str, written: dict[str, list[Path]]) -> None:
    entry = COMMANDS[name]
    directories = written[name]
    files = [{p.name for p in d.glob("*.csv")} for d in directories]
    for present in files:
        assert set(entry.tables) <= present  # every run writes them
        assert present <= set(entry.written)  # and nothing a sweep would not stack
    assert set(entry.some_tables) <= set().union(*files)  # some run writes each
    assert set(entry.report.needs) <= set(entry.tables)
    assert set(entry.report.optional) <= set(entry.written)
    for directory in directories:
        manifest = results.read_manifest(directory) or {}
        assert str(manifest["command"]).split()[0] == name
        # the run store: the directory's hash covers the blocks the command reads
        assert set(runs.read_blocks(manifest["spec"], name)) == \
            set(entry.reads) & set(manifest["spec"])
        # tmf report reads it as its kind
        run = read_run(directory)
        assert run.kind == name and set(entry.report.needs) <= set(run.tables)
        # tmf runs shows its headline
        [row] = runs.list_runs(directory)
        assert row["command"] == name
        assert row["metric"] == entry.listing.metric and row["value"] is not None


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_entry_is_budgeted(name: str) -> None:
    spec = specs.from_dict(dict(SPEC))
    estimate = budget.check(spec, name)
    assert estimate.total > 0 and estimate.work > 0
