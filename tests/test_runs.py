"""The run store: default directories keyed by what a command reads, latest, manifests that
say where and when, and ``tmf runs``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.command_registry import COMMANDS
from tmfcli.io import runs
from tmfcli.io import spec as specs

runner = CliRunner()

BASE = {
    "name": "demo",
    "game": {"name": "left_right"},
    "population": {"agents": 100, "batch": 10},
    "solver": {"algorithm": "tmf-pg", "iterations": 400, "tolerance": 1e-8, "restarts": 0,
               "params": {"natural": True}},
    "simulate": {"replicas": 5},
    "seed": 3,
}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


CHANGES = {"game": {"name": "left_right", "mu0": [0.5, 0.25, 0.25]},
           "horizon": {"steps": 3}, "population": {"agents": 100, "batch": 20},
           "discount": 0.9, "entropy": 0.1, "solver": {"iterations": 10}, "seed": 4,
           "simulate": {"replicas": 50}, "bound_check": {"replicas": 20}}


@pytest.mark.parametrize("command", ["solve", "simulate", "bound-check"])
@pytest.mark.parametrize("block", sorted(CHANGES))
def test_run_hash_changes_exactly_with_the_blocks_the_command_reads(command: str,
                                                                   block: str) -> None:
    base = specs.from_dict(dict(BASE))
    changed = specs.from_dict({**BASE, block: CHANGES[block]})
    assert changed.to_dict()[block] != base.to_dict()[block]
    same = runs.run_hash(base.to_dict(), command) == runs.run_hash(changed.to_dict(), command)
    assert same == (block not in COMMANDS[command].reads)


def test_renamed_spec_same_hash_other_directory() -> None:
    a = specs.from_dict(dict(BASE))
    b = specs.from_dict({**BASE, "name": "other"})
    assert runs.run_hash(a.to_dict(), "solve") == runs.run_hash(b.to_dict(), "solve")
    assert runs.command_root(a.name, "solve") != runs.command_root(b.name, "solve")


def test_unrelated_key_reuses_relevant_key_never_overwrites(spec_file: Path) -> None:
    first = invoke("solve", str(spec_file))
    assert first.exit_code == 0, first.output
    root = Path("results/demo/solve")
    (run_a,) = [p for p in root.iterdir() if p.name != "latest"]
    policy_a = (run_a / "policy.csv").read_bytes()
    again = invoke("solve", str(spec_file), "--set", "simulate.replicas=50")
    assert again.exit_code == 0 and f"{run_a} is up to date" in again.stderr
    other = invoke("solve", str(spec_file), "--set", "seed=4")
    assert other.exit_code == 0 and "up to date" not in other.stderr
    dirs = sorted(p for p in root.iterdir() if p.name != "latest")
    assert len(dirs) == 2 and (run_a / "policy.csv").read_bytes() == policy_a
    (run_b,) = [p for p in dirs if p != run_a]
    assert yaml.safe_load((run_b / "manifest.yaml").read_text())["seed"] == 4
    assert (root / "latest").resolve() == run_b.resolve()
    assert runs.resolve(root) == run_b  # relative, as given


def test_manifest_says_when_where_and_with_what(spec_file: Path) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert invoke("solve", str(spec_file), "--out", "out").exit_code == 0
    after = dt.datetime.now(dt.UTC)
    data = yaml.safe_load(Path("out/manifest.yaml").read_text())
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    started = dt.datetime.strptime(data["started"], stamp).replace(tzinfo=dt.UTC)
    finished = dt.datetime.strptime(data["finished"], stamp).replace(tzinfo=dt.UTC)
    assert before <= started <= finished <= after
    assert data["status"] == "complete"
    assert data["host"] == socket.gethostname()
    v = data["versions"]
    assert v["python"] == platform.python_version() and v["numpy"] == np.__version__
    commit = v["git_commit"]
    assert commit is None or len(commit.removesuffix("+dirty")) == 40


def test_latest_is_a_file_where_links_fail(spec_file: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError("links not supported")

    monkeypatch.setattr(os, "symlink", no_links)
    assert invoke("solve", str(spec_file)).exit_code == 0
    latest = Path("results/demo/solve/latest")
    assert latest.is_file() and not latest.is_symlink()
    run = runs.resolve(Path("results/demo/solve"))
    assert (run / "manifest.yaml").is_file() and run.name == latest.read_text().strip()
    # simulate --policy accepts the command directory and follows latest
    result = invoke("simulate", str(spec_file), "--policy", "results/demo/solve",
                    "--out", "sim")
    assert result.exit_code == 0, result.output
    assert "results/demo/solve" in yaml.safe_load(Path("sim/manifest.yaml").read_text())[
        "policy"]


def test_runs_lists_complete_failed_and_partial_runs(spec_file: Path) -> None:
    assert invoke("solve", str(spec_file)).exit_code == 0
    assert invoke("simulate", str(spec_file), "--policy", "uniform").exit_code == 0
    partial = Path("results/demo/simulate/0123456789abcdef")
    partial.mkdir()
    (partial / "trajectory.csv").write_text("replica,t,obs,mu_hat,mu_bar,seed\n")
    result = invoke("runs", "results", "--format", "csv")
    assert result.exit_code == 0, result.output
    from io import StringIO

    table = pd.read_csv(StringIO(result.stdout))
    assert list(table.columns) == runs.COLUMNS
    assert sorted(table["status"]) == ["complete", "complete", "partial"]
    solve_row = table[table["command"] == "solve"].iloc[0]
    manifest = yaml.safe_load((Path(solve_row["directory"]) / "manifest.yaml").read_text())
    assert solve_row["metric"] == "exploitability"
    assert solve_row["value"] == pytest.approx(manifest["exploitability"], rel=1e-12)
    assert (solve_row["game"], solve_row["agents"], solve_row["seed"]) == ("left_right", 100, 3)
    sim_row = table[(table["command"] == "simulate") & (table["status"] == "complete")].iloc[0]
    sim_manifest = yaml.safe_load((Path(sim_row["directory"]) / "manifest.yaml").read_text())
    assert sim_row["value"] == pytest.approx(sim_manifest["means"]["gap_max"], rel=1e-12)
    as_json = json.loads(invoke("runs", "results", "--format", "json").stdout)
    assert [r["directory"] for r in as_json] == list(table["directory"])
    people = invoke("runs")
    assert people.exit_code == 0 and "tmf runs: 3 below results" in people.stdout
    assert people.stdout.count("complete") == 2 and "partial" in people.stdout


def test_runs_of_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    result = invoke("runs", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'nowhere'}: no such directory — give a "
                             "directory of results, e.g. results (the default)\n")


def test_runs_skips_the_stage_a_killed_run_left_and_the_next_run_removes_it(
        spec_file: Path) -> None:
    import shutil

    assert invoke("solve", str(spec_file)).exit_code == 0
    done = runs.resolve(Path("results/demo/solve"))
    stage = done.parent / f".{done.name}.tmf-new-999999999-abcd1234"  # no such process
    shutil.copytree(done, stage)  # a whole-looking stage, manifest included
    table = invoke("runs", "results", "--format", "json")
    assert [Path(r["directory"]) for r in json.loads(table.stdout)] == [done]
    assert invoke("solve", str(spec_file), "--force").exit_code == 0
    assert not stage.exists() and (done / "manifest.yaml").is_file()
