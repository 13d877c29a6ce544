"""Tables that join: full width off a terminal, and `tmf runs --format csv` listing runs only,
with the algorithm, numeric N and B and whole-number seeds."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app

runner = CliRunner()

SPEC: dict[str, Any] = {
    "name": "join",
    "game": {"name": "left_right"},
    "population": {"agents": 100, "batch": "sqrt"},
    "solver": {"algorithm": "tmf-pg", "iterations": 50, "tolerance": 1e-8, "restarts": 0,
               "params": {"natural": True}},
    "simulate": {"replicas": 4},
    "train": {"iterations": 2, "rollouts": 2, "inner_steps": 1, "algorithm": "mf-q"},
    "seed": 3,
}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def test_summary_off_a_terminal_shows_the_whole_result_path(spec_file: Path) -> None:
    out = "results/" + "a-long-directory-name-that-a-user-would-copy/" * 3 + "run"
    assert len(out) > 80
    done = invoke("solve", str(spec_file), "--out", out, "--quiet")
    assert done.exit_code in (0, 4), done.output
    assert "…" not in done.stdout
    rows = [line for line in done.stdout.splitlines() if "results" in line]
    assert len(rows) == 1 and out in rows[0]


def test_runs_csv_lists_runs_only_with_algorithm_and_whole_numbers(spec_file: Path) -> None:
    assert invoke("solve", str(spec_file), "--quiet").exit_code in (0, 4)
    assert invoke("train", str(spec_file), "--quiet").exit_code == 0
    sweep = invoke("simulate", str(spec_file), "--policy", "uniform", "--sweep", "seed=1,2",
                   "--jobs", "1", "--quiet", "--out", "results/join/sims")
    assert sweep.exit_code == 0, sweep.output
    # a mean-field-only solve: no agents
    mean_field = invoke("solve", str(spec_file), "--set", "population={alpha: 0.5}", "--quiet",
                        "--out", "results/join/mf")
    assert mean_field.exit_code in (0, 4), mean_field.output
    report = invoke("report", "results/join/solve", "--out", "results/report", "--format",
                    "csv")
    assert report.exit_code == 0, report.output
    listed = invoke("runs", "results", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    table = pd.read_csv(io.StringIO(listed.stdout))
    # two solves, a train and the two cells of the sweep: not the sweep's top, not the report
    assert sorted(table["command"]) == ["simulate", "simulate", "solve", "solve", "train"]
    assert not table["directory"].str.startswith("results/report").any()
    assert set(table["directory"]) >= {"results/join/sims/" + p.name
                                       for p in Path("results/join/sims").iterdir()
                                       if p.is_dir()}
    assert str(table["agents"].dtype) == "float64"  # the mean-field run has none ...
    assert listed.stdout.count(",100,") == 4         # ... and the others are written whole
    algorithms = dict(zip(table["command"], table["algorithm"].fillna(""), strict=False))
    assert algorithms["train"] == "mf-q" and algorithms["simulate"] == ""
    assert set(table.loc[table["command"] == "solve", "algorithm"]) == {"tmf-pg"}
    # B as a number: sqrt of 100 agents is 10
    assert set(table.loc[table["agents"] == 100, "batch"].astype(int)) == {10}
    seeds = table.sort_values("directory").set_index("directory")["seed"]
    assert set(seeds) == {1, 2, 3}
    assert ",3,complete," in listed.stdout and ",3.0," not in listed.stdout


def test_stacked_train_tables_join_on_directory_with_numbers_for_b(spec_file: Path) -> None:
    done = invoke("train", str(spec_file), "--sweep", "train.algorithm=tmf-pg,mf-q",
                  "--sweep", "population.batch=1,all", "--set", "train.yardstick=false",
                  "--jobs", "1", "--quiet", "--out", "sw")
    assert done.exit_code == 0, done.output
    cells = pd.read_csv("sw/sweep.csv")
    assert list(cells["population.batch"].astype(str)) == ["1", "all", "1", "all"]
    for name in ("iterations.csv", "summary.csv", "logits.csv", "mu_weights.csv",
                 "policy.csv"):
        stacked = pd.read_csv(Path("sw") / name)
        assert list(stacked.columns[:3]) == ["sweep.train.algorithm", "sweep.population.batch",
                                             "directory"], name
        # B as agents acting per step: 1 and all 100 of them
        assert set(stacked["sweep.population.batch"]) == {1, 100}, name
        learners = {"logits.csv": {"tmf-pg"}, "mu_weights.csv": {"tmf-pg"},
                    "policy.csv": {"mf-q"}}.get(name, {"tmf-pg", "mf-q"})
        assert set(stacked["sweep.train.algorithm"]) == learners, name
        # every row joins sweep.csv on directory, and holds that cell's own rows
        joined = stacked.merge(cells, on="directory", how="left", validate="many_to_one")
        assert joined["status"].notna().all()
        for directory, rows in stacked.groupby("directory"):
            own = pd.read_csv(Path("sw") / str(directory) / name)
            pd.testing.assert_frame_equal(rows.iloc[:, 3:].reset_index(drop=True), own)
