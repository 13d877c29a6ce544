"""A manifest's resolved spec, given back to the same command, reproduces the same bytes (for
every command and for a sweep); one answer to which seed a run used."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

BASE: dict[str, Any] = {
    "name": "again",
    "game": {"name": "resource_selection", "params": {"K": 2}, "mu0": [0.5, 0.5]},
    "horizon": {"steps": 4},
    "population": {"agents": 40, "batch": {"fraction": 0.25}},
    "solver": {"iterations": 60, "restarts": 1},
    "simulate": {"replicas": 4},
    "bound_check": {"agents": [8, 16], "batch": [1, {"fraction": 0.5}], "replicas": 4},
    "train": {"iterations": 3, "rollouts": 2, "inner_steps": 2, "seed": 5},
    "seed": 1,
}
TIMINGS = ("elapsed_s",)  # the only columns that differ between two runs of one spec


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


def tables(directory: Path) -> dict[str, bytes]:
    """Every CSV of the directory (and of its cells) as bytes, timing columns removed."""
    out = {}
    for path in sorted(directory.rglob("*.csv")):
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        kept = frame.drop(columns=[c for c in frame.columns if c in TIMINGS])
        buffer = io.StringIO()
        kept.to_csv(buffer, index=False)
        out[str(path.relative_to(directory))] = buffer.getvalue().encode()
    return out


def given_back(tmp_path: Path, run: Path) -> Path:
    """The manifest's resolved spec as a spec file of its own, in another directory."""
    spec = yaml.safe_load((run / "manifest.yaml").read_text())["spec"]
    path = tmp_path / "elsewhere" / "resolved.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(("command", "extra"), [
    ("solve", []),
    ("simulate", []),
    ("simulate", ["--policy", "uniform"]),
    ("bound-check", ["--policy", "uniform", "--workers", "1"]),
    ("train", []),
])
def test_manifest_spec_given_back_reproduces_the_bytes(tmp_path: Path, command: str,
                                                       extra: list[str]) -> None:
    first = tmp_path / "first"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(BASE))
    done = invoke(command, str(tmp_path / "spec.yaml"), "--out", str(first), "--quiet", *extra)
    assert done.exit_code in (0, 3, 4), done.output
    again = given_back(tmp_path, first)
    second = tmp_path / "second"
    redo = invoke(command, str(again), "--out", str(second), "--quiet", *extra)
    assert redo.exit_code == done.exit_code, redo.output
    assert tables(first) == tables(second)
    assert len(tables(first)) >= 2
    one, two = (yaml.safe_load((d / "manifest.yaml").read_text()) for d in (first, second))
    assert one["spec"] == two["spec"] and one["spec_hash"] == two["spec_hash"]


def test_manifest_of_a_yaml_game_file_given_back(tmp_path: Path) -> None:
    # the resolved spec records the file and the definition read from it; given back from
    # another directory (where the relative file is not), the recorded definition is used
    first = tmp_path / "first"
    done = invoke("solve", str(ROOT / "experiments" / "hybrid-work.yaml"), "--out", str(first),
                  "--quiet", "--set", "solver.restarts=0", "--set", "solver.iterations=50")
    assert done.exit_code in (0, 4), done.output
    spec = yaml.safe_load((first / "manifest.yaml").read_text())["spec"]
    assert spec["game"]["file"] is not None and spec["game"]["define"] is not None
    second = tmp_path / "second"
    redo = invoke("solve", str(given_back(tmp_path, first)), "--out", str(second), "--quiet")
    assert redo.exit_code == done.exit_code, redo.output
    assert tables(first) == tables(second)


def test_sweep_manifest_spec_given_back_runs_the_same_sweep(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**BASE, "sweep": {"seed": [2, 3]}}))
    first = tmp_path / "first"
    done = invoke("simulate", str(tmp_path / "spec.yaml"), "--out", str(first), "--quiet",
                  "--sweep", "population.batch=1,all", "--jobs", "1")
    assert done.exit_code == 0, done.output
    spec = yaml.safe_load((first / "manifest.yaml").read_text())["spec"]
    assert spec["sweep"] == {"cases": [{"seed": 2, "population.batch": 1},
                                       {"seed": 2, "population.batch": "all"},
                                       {"seed": 3, "population.batch": 1},
                                       {"seed": 3, "population.batch": "all"}]}
    second = tmp_path / "second"
    redo = invoke("simulate", str(given_back(tmp_path, first)), "--out", str(second), "--quiet",
                  "--jobs", "1")
    assert redo.exit_code == 0, redo.output
    assert tables(first) == tables(second)
    # sweep.csv, the 4 stacked tables (trajectory, replicas, summary, bands) and 4 cells' 4
    assert "sweep.csv" in tables(first) and len(tables(first)) == 1 + 4 + 4 * 4


def test_a_mistake_beside_a_recorded_game_is_still_refused(tmp_path: Path) -> None:
    data = {**BASE, "game": {"name": "other", "define": {"name": "x"}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    done = invoke("solve", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1
    assert done.stderr == (f"Error: {tmp_path / 'spec.yaml'}:game.name: 'other' is not the name "
                           "of the game defined here ('x') — remove game.name, or make it "
                           "match\n")
    data = {**BASE, "population": {"agents": 40, "batch": 1.5}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    done = invoke("solve", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1
    assert done.stderr.startswith(f"Error: {tmp_path / 'spec.yaml'}:population.batch: "
                                  "fraction 1.5 is not in (0, 1] — ")
    data = {**BASE, "solver": {"iterations": None}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    done = invoke("solve", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1
    assert done.stderr.startswith(f"Error: {tmp_path / 'spec.yaml'}:solver.iterations: is "
                                  "empty (null) — ")


def test_one_seed_everywhere_for_train(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(BASE))  # seed: 1, train.seed: 5
    run = tmp_path / "results" / "run"
    done = invoke("train", str(tmp_path / "spec.yaml"), "--out", str(run), "--quiet")
    assert done.exit_code == 0, done.output
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    assert manifest["seed"] == 5
    for table in ("iterations.csv", "summary.csv"):
        assert set(pd.read_csv(run / table)["seed"]) == {5}
    listed = invoke("runs", str(tmp_path / "results"), "--format", "csv")
    assert listed.exit_code == 0
    rows = pd.read_csv(io.StringIO(listed.stdout))
    assert list(rows["seed"]) == [5]
    shown = invoke("runs", str(tmp_path / "results"))
    assert shown.exit_code == 0 and "seed=5" in shown.stdout and "seed=1" not in shown.stdout
    # the seed reported is the seed that drew: seed 5 alone gives the same numbers
    alone = {**BASE, "seed": 5, "train": {**BASE["train"], "seed": None}}
    (tmp_path / "alone.yaml").write_text(yaml.safe_dump(alone))
    other = tmp_path / "results" / "alone"
    done = invoke("train", str(tmp_path / "alone.yaml"), "--out", str(other), "--quiet")
    assert done.exit_code == 0, done.output
    assert tables(other) == tables(run)


def test_tmf_spec_prints_the_resolved_spec_that_runs_the_same(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(
        {**BASE, "sweep": {"seed": [2, 3], "cases": [{"population.batch": 1}]}}))
    done = invoke("spec", str(tmp_path / "spec.yaml"), "--set", "discount=0.5")
    assert done.exit_code == 0, done.output
    printed = yaml.safe_load(done.stdout)
    # defaults filled in, the override applied, auto resolved (resource_selection declares a
    # potential and has static dynamics: docs/solvers.md)
    assert printed["discount"] == 0.5
    assert printed["solver"] == {"algorithm": "potential", "iterations": 60,
                                 "tolerance": 1e-8, "restarts": 1, "params": {}}
    assert printed["population"]["batch"] == 0.25 and printed["train"]["seed"] == 5
    assert printed["sweep"] == {"seed": [2, 3], "cases": [{"population.batch": 1}]}
    (tmp_path / "resolved.yaml").write_text(done.stdout)
    again = invoke("spec", str(tmp_path / "resolved.yaml"))
    assert again.exit_code == 0 and again.stdout == done.stdout


def test_tmf_spec_errors_are_one_line(tmp_path: Path) -> None:
    done = invoke("spec", str(tmp_path / "missing.yaml"))
    assert done.exit_code == 1
    assert done.stderr == f"Error: {tmp_path / 'missing.yaml'}: spec file not found — check " \
        "the path\n"
