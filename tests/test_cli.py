"""The CLI edge: exact error lines and exit codes, overrides, help, result directories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app

runner = CliRunner()

BASE = {
    "name": "demo",
    "game": {"name": "left_right"},
    "population": {"agents": 100, "batch": 10},
    "solver": {"algorithm": "tmf-pg", "iterations": 400, "tolerance": 1e-8, "restarts": 1,
               "params": {"natural": True}},
    "seed": 3,
}


def write_spec(tmp_path: Path, data: dict | None = None, text: str | None = None) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data or BASE))
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.mark.parametrize(("override", "message"), [
    ("population.batch=1000",
     "population.batch: batch 1000 is larger than agents (100) — use a batch between 1 and 100"),
    ("population.agents=0", "population.agents: 0 is too small — use an integer >= 1"),
    ("population.alpha=1.5",
     "population.alpha: 1.5 is out of range — use a number > 0 and <= 1"),
    ("discount=0", "discount: 0 is out of range — use a number > 0 and <= 1"),
    ("discount=1.2", "discount: 1.2 is out of range — use a number > 0 and <= 1"),
    ("game.mu0=[0.5,0.2,0.2]",
     "game.mu0: is not a distribution (entries sum to 0.9, smallest 0.2) — give non-negative "
     "entries that sum to 1"),
    ("game.mu0=[0.5,0.5]",
     "game.mu0: has 2 entries but left_right has 3 observations — give 3 probabilities, one "
     "per observation"),
    ("game.name=chess",
     "game.name: unknown game 'chess' — use one of: resource_selection, queueing, left_right, "
     "rock_paper_scissors, beach_bar, sis"),
    ("solver.algorithm=newton",
     "solver.algorithm: unknown value 'newton' — use one of: fixed-point, fictitious-play, "
     "mirror-descent, tmf-pg"),
    ("solver.iterations=many",
     "solver.iterations: expected a whole number, got 'many' — write an integer, e.g. 10"),
    ("solver.params.learning_rate=-1",
     "solver.params.learning_rate: -1.0 is out of range — use a value > 0"),
    ("solver.params.momentum=0.9",
     "solver.params.momentum: unknown parameter of tmf-pg — valid parameters: "),
    ("game.params.K=3", "game.params.K: unknown parameter of left_right — valid parameters: none"),
    ("populaton.agents=5", "populaton: unknown key — did you mean 'population'?"),
    ("population.batch=often",
     'population.batch: invalid batch \'often\' — use an integer >= 1, "all", "sqrt", '
     "{fraction: 0.1} or a list of integers"),
])
def test_bad_spec_values_fail_with_file_key_and_fix(tmp_path: Path, override: str,
                                                     message: str) -> None:
    spec = write_spec(tmp_path)
    result = invoke("solve", str(spec), "--set", override, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {spec}:{message}")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_game_parameter_in_file(tmp_path: Path) -> None:
    data = {**BASE, "game": {"name": "beach_bar", "params": {"n": 5, "bar": 7}}}
    spec = write_spec(tmp_path, data)
    result = invoke("solve", str(spec))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {spec}:game.params.bar: 7 is not a position of 0..4 — "
                             "use a bar between 0 and 4\n")


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    result = invoke("solve", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'absent.yaml'}: spec file not found — " \
        "check the path\n"
    spec = write_spec(tmp_path, text="name: x\ngame: [unclosed\n")
    result = invoke("solve", str(spec))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {spec}:line ")


def test_bad_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("solve", str(write_spec(tmp_path)), "--restarts", "-1")
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [[], ["solve"], ["games"]])
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout


def test_all_registered_commands_have_help_with_example() -> None:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    for name in names:
        result = invoke(name.replace("_", "-"), "--help")
        assert result.exit_code == 0, name
        assert "Example:" in result.stdout, name


def test_games_lists_every_game_with_parameters() -> None:
    result = invoke("games")
    assert result.exit_code == 0
    for name in ("resource_selection", "queueing", "left_right", "rock_paper_scissors",
                 "beach_bar", "sis", "kappa", "infection"):
        assert name in result.stdout


def test_solve_writes_tables_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("solve", str(write_spec(tmp_path)), "--out", str(out))
    assert result.exit_code == 0, result.output
    iterations = pd.read_csv(out / "iterations.csv")
    assert {"iteration", "exploitability", "elapsed_s", "seed"} <= set(iterations.columns)
    policy = pd.read_csv(out / "policy.csv")
    assert list(policy.columns) == ["t", "obs", "action", "prob"]
    sums = policy.groupby(["t", "obs"])["prob"].sum()
    assert (sums - 1).abs().max() < 1e-9
    flow = pd.read_csv(out / "flow.csv")
    assert list(flow.columns) == ["t", "obs", "mu"]
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["converged"] is True
    assert manifest["stop_reason"].startswith("converged")
    assert manifest["spec"]["population"]["batch"] == 10
    assert manifest["seed"] == 3
    assert {"flow_spread", "monotonicity_violations"} <= set(manifest["uniqueness"])
    # left_right at alpha = 0.1: the equilibrium sends 2/3 of the movers to the left
    mu1 = flow[flow.t == 1].set_index("obs")["mu"]
    assert mu1[1] / (mu1[1] + mu1[2]) == pytest.approx(2 / 3, abs=1e-4)
    assert "exploitability" in result.stdout and "converged" in result.stdout


def test_same_spec_and_seed_same_bytes_and_rerun_is_up_to_date(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("solve", str(spec), "--out", str(a)).exit_code == 0
    assert invoke("solve", str(spec), "--out", str(b)).exit_code == 0
    for name in ("policy.csv", "flow.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    ia, ib = pd.read_csv(a / "iterations.csv"), pd.read_csv(b / "iterations.csv")
    pd.testing.assert_frame_equal(ia.drop(columns="elapsed_s"), ib.drop(columns="elapsed_s"))
    before = (a / "manifest.yaml").read_bytes()
    again = invoke("solve", str(spec), "--out", str(a))
    assert again.exit_code == 0 and "up to date" in again.stderr
    assert (a / "manifest.yaml").read_bytes() == before
    changed = invoke("solve", str(spec), "--out", str(a), "--set", "seed=4")
    assert changed.exit_code == 0 and "up to date" not in changed.stderr
    fewer = invoke("solve", str(spec), "--out", str(a), "--set", "seed=4", "--restarts", "0")
    assert fewer.exit_code == 0 and "up to date" not in fewer.stderr
    assert yaml.safe_load((a / "manifest.yaml").read_text())["uniqueness"]["restarts"] == 0


def test_incomplete_directory_is_not_taken_for_a_result(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "policy.csv").write_text("t,obs,action,prob\n")  # an interrupted earlier run
    result = invoke("solve", str(spec), "--out", str(out))
    assert result.exit_code == 0 and "up to date" not in result.stderr
    assert len(pd.read_csv(out / "policy.csv")) == 2 * 3 * 2
    assert not list(out.glob("*.part"))
