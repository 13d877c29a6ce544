"""Sweeps: expansion over any key, one run per cell, sweep.csv and stacked tables, failures
recorded without stopping the others, resuming, and the errors of a bad sweep."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.command_registry import COMMANDS, Options, Progress
from tmfcli.commands import solve as solve_module
from tmfcli.commands import sweep
from tmfcli.io import spec as specs
from tmfcli.io import spec_text, spec_types
from tmfcli.model.setting import Batch

runner = CliRunner()

BASE: dict[str, Any] = {
    "name": "demo",
    "game": {"name": "left_right"},
    "population": {"agents": 100, "batch": 10},
    "solver": {"algorithm": "tmf-pg", "iterations": 300, "tolerance": 1e-8, "restarts": 0,
               "params": {"natural": True}},
    "simulate": {"replicas": 4},
    "seed": 3,
}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


def write(tmp_path: Path, name: str = "spec.yaml", **extra: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return path


def test_cross_product_of_axes_and_cases_in_order() -> None:
    spec = specs.from_dict({**BASE, "sweep": {
        "seed": [0, 1], "cases": [{"population.batch": 1, "solver.restarts": 1},
                                  {"population.batch": 100}]}})
    cells = sweep.expand(spec, sweep.parse_cli(["discount=0.5,1"]))
    assert len(cells) == 2 * 2 * 2
    assert sweep.columns(cells) == ["seed", "discount", "population.batch", "solver.restarts"]
    first, last = cells[0], cells[-1]
    assert first.values == (("seed", 0), ("discount", 0.5), ("population.batch", 1),
                            ("solver.restarts", 1))
    assert (first.spec.seed, first.spec.discount, first.spec.population.batch,
            first.spec.solver.restarts) == (0, 0.5, Batch("count", 1), 1)
    assert (last.spec.seed, last.spec.discount, last.spec.population.batch,
            last.spec.solver.restarts) == (1, 1.0, Batch("count", 100), 0)
    # every cell is the spec with its values set, and nothing else changed
    for cell in cells:
        data = cell.spec.to_dict()
        assert data["game"] == spec.to_dict()["game"]
        assert data["solver"]["iterations"] == 300


def test_command_line_axis_replaces_the_spec_axis_and_set_applies_first() -> None:
    spec = specs.from_dict({**BASE, "sweep": {"seed": [0, 1, 2]}})
    cells = sweep.expand(spec, sweep.parse_cli(["seed=7"]))
    assert [c.spec.seed for c in cells] == [7]
    raw = copy.deepcopy({**BASE, "sweep": {"seed": [0, 1]}})
    base = specs.from_dict(spec_text.apply_overrides(raw, ["population.agents=50"], "--set"))
    assert [c.spec.population.agents for c in sweep.expand(base)] == [50, 50]


@pytest.mark.parametrize(("sweep_block", "message"), [
    ({"population.batchh": [1, 2]},
     "sweep.population.batchh: unknown key (in the cell population.batchh=1) — did you mean "
     "'batch'?"),
    ({"seed": []}, "sweep.seed: expected a non-empty list of values, got an empty list — "),
    ({"seed": 3}, "sweep.seed: expected a non-empty list of values, got 3 — "),
    ({"population.batch": [1, 1000]},
     "sweep.population.batch: batch 1000 is larger than agents (100) (in the cell "
     "population.batch=1000) — use a batch between 1 and 100"),
    ({"name": ["a", "b"]}, "sweep.name: cannot be swept — "),
    ({"cases": []}, "sweep.cases: expected a non-empty list of cases — "),
    ({"seed": [1], "cases": [{"seed": 2}]},
     "sweep.seed: is swept both as a list and in cases — sweep each key in one place"),
])
def test_bad_sweep_is_a_clear_error(tmp_path: Path, sweep_block: dict[str, Any],
                                    message: str) -> None:
    spec = write(tmp_path, sweep=sweep_block)
    result = invoke("solve", str(spec), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {spec}:{message}"), result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_command_line_sweep(tmp_path: Path) -> None:
    spec = write(tmp_path)
    result = invoke("solve", str(spec), "--sweep", "seed=")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --sweep:seed: empty list of values — ")
    result = invoke("solve", str(spec), "--sweep", "seed")
    assert result.exit_code == 1 and "a sweep has no '='" in result.stderr
    result = invoke("solve", str(spec), "--sweep", "name=a,b")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --sweep:name: cannot be swept — ")
    result = invoke("solve", str(spec), "--sweep", "populaton.batch=1,2")  # blames --sweep
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --sweep:populaton: unknown key (in the cell "
                                    "populaton.batch=1) — did you mean 'population'?")


def test_repeated_command_line_sweep_key_is_an_error(tmp_path: Path) -> None:
    spec = write(tmp_path)
    result = invoke("solve", str(spec), "--sweep", "seed=0,1", "--sweep", "discount=1",
                    "--sweep", "seed=2", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == ("Error: --sweep:seed: is swept twice — give all its values in one "
                             "--sweep seed=v1,v2,...\n")
    assert not (tmp_path / "out").exists()


def test_sweep_writes_cells_sweep_csv_and_stacked_tables(tmp_path: Path) -> None:
    spec = write(tmp_path, sweep={"population.batch": [1, 100], "seed": [0, 1]})
    out = tmp_path / "out"
    result = invoke("simulate", str(spec), "--policy", "uniform", "--out", str(out),
                    "--jobs", "1")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert list(table.columns) == ["population.batch", "seed", "status", "directory",
                                   "elapsed_s", "error"]
    assert table[["population.batch", "seed"]].values.tolist() == [[1, 0], [1, 1], [100, 0],
                                                                   [100, 1]]
    assert set(table["status"]) == {"done"}
    for row in table.itertuples():
        manifest = yaml.safe_load((out / str(row.directory) / "manifest.yaml").read_text())
        assert manifest["status"] == "complete"
        assert manifest["spec"]["population"]["batch"] == row._1
        assert manifest["seed"] == row.seed
    # each stacked table is the cells' own rows, byte for byte, behind the swept values (one
    # name each, sweep.<key>) and the cell's directory as sweep.csv names it
    for name in COMMANDS["simulate"].tables:
        lines = (out / name).read_text().splitlines()
        own_header = (out / table.directory[0] / name).read_text().splitlines()[0]
        assert lines[0] == "sweep.population.batch,sweep.seed,directory," + own_header
        expected = []
        for row in table.itertuples():
            cell_lines = (out / str(row.directory) / name).read_text().splitlines()[1:]
            expected += [f"{row._1},{row.seed},{row.directory},{line}" for line in cell_lines]
        assert lines[1:] == expected
    top = yaml.safe_load((out / "manifest.yaml").read_text())
    assert (top["status"], top["cells"], top["done"], top["failed"]) == ("complete", 4, 4, 0)
    # a pool of two processes writes the same bytes as one process
    pool = tmp_path / "pool"
    result = invoke("simulate", str(spec), "--policy", "uniform", "--out", str(pool),
                    "--jobs", "2")
    assert result.exit_code == 0, result.output
    for path in out.rglob("*.csv"):
        if path.name != "sweep.csv":
            assert (pool / path.relative_to(out)).read_bytes() == path.read_bytes()


def test_a_cell_is_the_run_of_its_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """A sweep's cell is the same run, in the same store directory name, as the spec run
    alone with --set of the cell's values."""
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, sweep={"seed": [0, 5]})
    assert invoke("solve", str(spec)).exit_code == 0
    top = Path("results/demo/solve/latest").resolve()
    table = pd.read_csv(top / "sweep.csv")
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(BASE))
    assert invoke("solve", str(plain), "--set", "seed=5").exit_code == 0
    alone = Path("results/demo/solve/latest").resolve()
    assert alone.name == table.directory[1]
    for name in ("policy.csv", "flow.csv"):
        assert (alone / name).read_bytes() == (top / table.directory[1] / name).read_bytes()
    # simulate's cells read their equilibrium from the solve sweep's cells
    result = invoke("simulate", str(spec), "--jobs", "1")
    assert result.exit_code == 0, result.output
    sims = pd.read_csv(Path("results/demo/simulate/latest") / "sweep.csv")
    for cell, directory in zip(table.directory, sims.directory, strict=True):
        manifest = yaml.safe_load(
            (Path("results/demo/simulate/latest") / directory / "manifest.yaml").read_text())
        assert Path(manifest["policy_reused_from"]).name == cell


def test_cells_that_differ_in_unread_keys_share_one_run(tmp_path: Path) -> None:
    spec = write(tmp_path, sweep={"simulate.replicas": [2, 3]})
    out = tmp_path / "out"
    assert invoke("solve", str(spec), "--out", str(out)).exit_code == 0
    table = pd.read_csv(out / "sweep.csv")
    assert table.directory[0] == table.directory[1]
    assert len([p for p in out.iterdir() if p.is_dir()]) == 1


def test_failing_cell_is_recorded_others_finish_rerun_retries_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write(tmp_path, sweep={"seed": [0, 1, 2]})
    out = tmp_path / "out"
    real = solve_module.solve_into

    def broken(spec: spec_types.Spec, directory: Path, options: Options,
               on_progress: Progress | None) -> None:
        if spec.seed == 1:
            raise FloatingPointError("overflow in cell 1")
        real(spec, directory, options, on_progress)

    monkeypatch.setattr(solve_module, "solve_into", broken)
    result = invoke("solve", str(spec), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 1
    assert "failed: seed=1: FloatingPointError: overflow in cell 1" in result.stderr
    assert "Error: 1 of 3 cells failed" in result.stderr
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert list(table.status) == ["done", "failed", "done"]
    assert table.error[1] == "FloatingPointError: overflow in cell 1"
    bad = out / table.directory[1]
    assert not (bad / "manifest.yaml").exists()
    record = yaml.safe_load((bad / "failed.yaml").read_text())
    assert record["status"] == "failed" and "FloatingPointError" in record["traceback"]
    top = yaml.safe_load((out / "manifest.yaml").read_text())
    assert (top["status"], top["failed_cells"]) == ("failed", ["seed=1"])
    assert len(pd.read_csv(out / "flow.csv")) == 2 * len(pd.read_csv(
        out / table.directory[0] / "flow.csv"))
    done_manifest = (out / table.directory[0] / "manifest.yaml").read_bytes()
    listed = {r["directory"]: r for r in json.loads(invoke("runs", str(out), "--format",
                                                           "json").stdout)}
    assert listed[str(bad)]["status"] == "failed" and listed[str(bad)]["seed"] == 1
    assert str(out) not in listed  # the sweep's top is not a run: its cells are listed
    assert sorted(r["status"] for r in listed.values()) == ["complete", "complete", "failed"]

    monkeypatch.setattr(solve_module, "solve_into", real)
    again = invoke("solve", str(spec), "--out", str(out), "--jobs", "1")
    assert again.exit_code == 0, again.output
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert list(table.status) == ["reused", "done", "reused"]
    assert not (bad / "failed.yaml").exists() and (bad / "manifest.yaml").is_file()
    assert (out / table.directory[0] / "manifest.yaml").read_bytes() == done_manifest
    forced = invoke("solve", str(spec), "--out", str(out), "--jobs", "1", "--force")
    assert forced.exit_code == 0
    assert list(pd.read_csv(out / "sweep.csv").status) == ["done"] * 3


def test_bound_check_sweeps_like_the_others(tmp_path: Path) -> None:
    bc = {"agents": [20, 40], "batch": [1, "all"], "replicas": 3}
    spec = write(tmp_path, bound_check=bc, horizon={"steps": 3},
                 sweep={"population.init": ["iid", "rounded"]})
    out = tmp_path / "out"
    result = invoke("bound-check", str(spec), "--policy", "uniform", "--out", str(out),
                    "--jobs", "1")
    assert result.exit_code in (0, 3), result.output
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.status) == ["done", "done"]
    passed = [yaml.safe_load((out / d / "manifest.yaml").read_text())["passed"]
              for d in table.directory]
    assert result.exit_code == (0 if all(passed) else 3)
    rows = list(csv.DictReader((out / "cells.csv").open()))
    per_cell = [len(pd.read_csv(out / d / "cells.csv")) for d in table.directory]
    assert [r["sweep.population.init"] for r in rows] == ["iid"] * per_cell[0] + \
        ["rounded"] * per_cell[1]
    assert [r["directory"] for r in rows] == [table.directory[0]] * per_cell[0] + \
        [table.directory[1]] * per_cell[1]


def test_progress_off_a_terminal_is_plain_lines_and_quiet_is_silent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMF_LOG_EVERY", "0")  # a line at every update instead of every 5 s
    spec = write(tmp_path, sweep={"seed": [0, 1, 2]})
    result = invoke("solve", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("tmf solve")]
    counts = [re.fullmatch(r"tmf solve cells: (\d)/3, elapsed \d+ s", line) for line in lines]
    assert all(counts) and [int(m.group(1)) for m in counts if m][-1] == 3
    assert "\x1b" not in result.stderr  # no terminal codes in a log
    quiet = invoke("solve", str(spec), "--out", str(tmp_path / "out"), "--force", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_max_memory_counts_the_cells_that_run_at_once(tmp_path: Path) -> None:
    """Each cell fits the limit, two at once do not: --jobs 2 is refused before any work,
    --jobs 1 runs."""
    from tmfcli.io import budget

    spec = write(tmp_path)
    one = budget.check(specs.load(spec, []), "solve").total
    limit = str(int(1.5 * one))
    out = tmp_path / "out"
    refused = invoke("solve", str(spec), "--sweep", "seed=1,2", "--jobs", "2",
                     "--max-memory", limit, "--out", str(out))
    assert refused.exit_code == 1, refused.output
    assert "2 cells at once (--jobs) would need about" in refused.stderr
    assert not out.exists()
    try:
        ran = invoke("solve", str(spec), "--sweep", "seed=1,2", "--jobs", "1",
                     "--max-memory", limit, "--out", str(out))
    finally:
        budget.set_limit(None)  # the limit is process-wide: leave the default for other tests
    assert ran.exit_code in (0, 4), ran.output
    assert set(pd.read_csv(out / "sweep.csv")["status"]) == {"done"}


def test_a_damaged_cell_table_is_one_line_naming_it_when_the_sweep_is_resumed(
        tmp_path: Path) -> None:
    """Resuming a sweep stacks the tables of the cells it reuses; a cell table damaged since
    (empty, binary, Latin-1, an open quote) is refused on one line that names the file and
    how to recompute it, and the stacked tables are not rewritten from it."""
    spec = write(tmp_path, sweep={"seed": [0, 1]})
    out = tmp_path / "out"
    args = ["solve", str(spec), "--out", str(out), "--jobs", "1"]
    assert invoke(*args).exit_code == 0
    name = COMMANDS["solve"].tables[0]
    cell = out / str(pd.read_csv(out / "sweep.csv").directory[1])
    stacked = (out / name).read_bytes()
    good = (cell / name).read_bytes()
    for damage in (b"", b"\x00\x01\x02\xff" * 8, "caf\xe9,1\n".encode("latin-1"),
                   good.splitlines()[0] + b'\n"open,1\n'):
        (cell / name).write_bytes(damage)
        result = invoke(*args)
        assert result.exit_code == 1, (damage, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {cell / name} "), result.stderr
        assert "Traceback" not in result.output
        assert (out / name).read_bytes() == stacked
    # the fix the line gives: delete the cell, which the next run recomputes
    shutil.rmtree(cell)
    assert invoke(*args).exit_code == 0
    # (the table holds timings: the recomputed cell has its shape, not its bytes)
    again = (cell / name).read_bytes().splitlines()
    assert again[0] == good.splitlines()[0] and len(again) == len(good.splitlines())
    assert len((out / name).read_bytes().splitlines()) == len(stacked.splitlines())
