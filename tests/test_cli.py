"""The CLI edge: exact error lines and exit codes, overrides, help, result directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.io import runs

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


def invoke(*args: str) -> Any:
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
     "solver.algorithm: unknown value 'newton' — use one of: auto, fixed-point, fictitious-play, "
     "mirror-descent, tmf-pg, anderson"),
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
def test_bad_spec_values_fail_with_override_key_and_fix(tmp_path: Path, override: str,
                                                         message: str) -> None:
    """A bad ``--set`` is blamed on the override (which names the key), not on the file."""
    spec = write_spec(tmp_path)
    result = invoke("solve", str(spec), "--set", override, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    problem = message.split(": ", 1)[1]
    assert result.stderr.startswith(f"Error: --set {override}: {problem}")
    assert result.stderr.count("\n") == 1
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
    for name in ("resource_selection_per_step", "queueing_per_step", "left_right",
                 "rock_paper_scissors", "beach_bar", "sis", "kappa", "infection"):
        assert name in result.stdout


def test_solve_writes_tables_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("solve", str(write_spec(tmp_path)), "--out", str(out))
    assert result.exit_code == 0, result.output
    iterations = pd.read_csv(out / "iterations.csv")
    assert {"iteration", "exploitability", "elapsed_s", "seed"} <= set(iterations.columns)
    policy = pd.read_csv(out / "policy.csv")
    assert list(policy.columns) == ["t", "obs", "obs_label", "action", "action_label", "prob"]
    assert set(policy["obs_label"]) == {"start", "left", "right"}
    sums = policy.groupby(["t", "obs"])["prob"].sum()
    assert (sums - 1).abs().max() < 1e-9
    flow = pd.read_csv(out / "flow.csv")
    assert list(flow.columns) == ["t", "obs", "obs_label", "mu"]
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
    refused = invoke("solve", str(spec), "--out", str(a), "--set", "seed=4")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: {a} holds a result of another spec or policy")
    assert (a / "manifest.yaml").read_bytes() == before
    changed = invoke("solve", str(spec), "--out", str(a), "--set", "seed=4", "--force")
    assert changed.exit_code == 0 and "up to date" not in changed.stderr
    fewer = invoke("solve", str(spec), "--out", str(a), "--set", "seed=4", "--restarts", "0",
                   "--force")
    assert fewer.exit_code == 0 and "up to date" not in fewer.stderr
    assert yaml.safe_load((a / "manifest.yaml").read_text())["uniqueness"]["restarts"] == 0


def test_incomplete_directory_is_not_taken_for_a_result(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "policy.csv").write_text("t,obs,action,prob\n")  # files of unknown origin
    for force in ([], ["--force"]):  # never taken for a result, never replaced
        result = invoke("solve", str(spec), "--out", str(out), *force)
        assert result.exit_code == 1
        assert result.stderr == f"Error: {out}: holds policy.csv but no tmf manifest.yaml — " \
            "tmf replaces only directories it wrote: choose a new or empty directory with " \
            "--out, or move the files away yourself\n"
        assert (out / "policy.csv").read_text() == "t,obs,action,prob\n"
    (out / "policy.csv").unlink()  # an empty directory is taken
    result = invoke("solve", str(spec), "--out", str(out))
    assert result.exit_code == 0 and "up to date" not in result.stderr
    assert len(pd.read_csv(out / "policy.csv")) == 2 * 3 * 2
    assert not list(out.glob("*.part")) and not list(tmp_path.glob(".out.*"))


# --- a solve that did not converge, and which policy simulate and bound-check run ----------
WARNING_END = " — raise solver.iterations or change solver.algorithm (docs/solvers.md)\n"


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines(keepends=True) if line.startswith("Warning:")]


def test_solve_stopped_at_max_iterations_exits_4_with_a_warning(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path), tmp_path / "out"
    result = invoke("solve", str(spec), "--out", str(out), "--set", "solver.iterations=1")
    assert result.exit_code == 4, result.output
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["converged"] is False and manifest["iterations"] == 1
    assert manifest["stop_reason"].startswith("max-iterations: 1 iterations")
    assert manifest["exploitability"] > 1e-8  # above the tolerance it did not reach
    [line] = warning_lines(result.stderr)
    assert line == f"Warning: the solve did not converge ({manifest['stop_reason']}){WARNING_END}"
    assert len(pd.read_csv(out / "iterations.csv")) == 2  # the tables are written all the same
    again = invoke("solve", str(spec), "--out", str(out), "--set", "solver.iterations=1")
    assert again.exit_code == 4 and "up to date" in again.stderr
    assert warning_lines(again.stderr) == [line]
    more = invoke("solve", str(spec), "--out", str(out), "--force")  # another spec: --force
    assert more.exit_code == 0 and warning_lines(more.stderr) == []
    assert yaml.safe_load((out / "manifest.yaml").read_text())["converged"] is True
    rerun = invoke("solve", str(spec), "--out", str(out))
    assert rerun.exit_code == 0 and "up to date" in rerun.stderr


def test_a_stalled_potential_solve_exits_4_and_names_its_fixes(tmp_path: Path) -> None:
    """Asked for exploitability 0 on beach_bar, potential stops at its precision floor: exit 4,
    the stop reason says "stalled", and the warning suggests the tolerance or the polish."""
    spec = write_spec(tmp_path, {"name": "stall", "game": {"name": "beach_bar"},
                                 "horizon": {"steps": 30},
                                 "solver": {"tolerance": 0, "restarts": 0}})
    out = tmp_path / "out"
    result = invoke("solve", str(spec), "--out", str(out))  # auto: potential
    assert result.exit_code == 4, result.output
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["stop_reason"].startswith("stalled: no further progress after")
    assert manifest["converged"] is False and manifest["exploitability"] < 1e-8
    [line] = warning_lines(result.stderr)
    assert line.endswith(" — raise solver.tolerance, set solver.params.polish: true, or change "
                         "solver.algorithm (docs/solvers.md)\n")


def test_simulate_labels_a_policy_that_did_not_converge(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path)
    args = ("--set", "solver.iterations=1", "--set", "simulate.replicas=10")
    solved = invoke("solve", str(spec), "--out", str(tmp_path / "eq"), *args)
    assert solved.exit_code == 4
    x = yaml.safe_load((tmp_path / "eq" / "manifest.yaml").read_text())["exploitability"]
    # solved in-process, then up to date, then (after a solve to results/demo/solve) reused
    for attempt, out in (("computed", "sim"), ("up to date", "sim"), ("reused", "sim2")):
        if attempt == "reused":
            assert invoke("solve", str(spec), *args).exit_code == 4
        result = invoke("simulate", str(spec), "--out", str(tmp_path / out), *args)
        assert result.exit_code == 0, result.output  # the comparison holds for any policy
        assert ("up to date" in result.stderr) == (attempt == "up to date")
        assert ("reusing the solve" in result.stderr) == (attempt == "reused")
        manifest = yaml.safe_load((tmp_path / out / "manifest.yaml").read_text())
        assert manifest["policy"] == f"not converged (exploitability {x:.2e})"
        assert manifest["policy_converged"] is False
        assert f"not converged (exploitability {x:.2e})" in result.stdout
        [line] = warning_lines(result.stderr)
        assert line.startswith("Warning: the solve did not converge (max-iterations: 1 ")
        assert line.endswith(WARNING_END)
    fine = invoke("simulate", str(spec), "--out", str(tmp_path / "ok"), "--set",
                  "simulate.replicas=10")
    assert fine.exit_code == 0 and warning_lines(fine.stderr) == []
    manifest = yaml.safe_load((tmp_path / "ok" / "manifest.yaml").read_text())
    assert manifest["policy"].startswith("equilibrium (exploitability ")
    assert manifest["policy_converged"] is True
    uniform = invoke("simulate", str(spec), "--out", str(tmp_path / "u"), "--policy", "uniform",
                     *args)
    assert uniform.exit_code == 0 and warning_lines(uniform.stderr) == []
    assert yaml.safe_load((tmp_path / "u" / "manifest.yaml").read_text())[
        "policy_converged"] is None


def test_bound_check_labels_a_policy_that_did_not_converge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, {**BASE, "population": {}, "horizon": {"rounds": 2},
                                 "bound_check": {"agents": [50, 100], "batch": [5, "all"],
                                                 "replicas": 5}})
    out = tmp_path / "bc"
    for attempt in ("computed", "up to date"):
        result = invoke("bound-check", str(spec), "--out", str(out), "--set",
                        "solver.iterations=1", "--workers", "1")
        assert result.exit_code in (0, 3), result.output  # the verdict decides, as before
        assert ("up to date" in result.stderr) == (attempt == "up to date")
        manifest = yaml.safe_load((out / "manifest.yaml").read_text())
        assert manifest["policy"].startswith("not converged (exploitability ")
        assert manifest["policy_converged"] is False
        assert f"policy: {manifest['policy']}" in result.stdout
        [line] = warning_lines(result.stderr)
        assert line.startswith("Warning: the solve did not converge (max-iterations: 1 ")


SYNC = {
    "name": "rounds",
    "game": {"name": "resource_selection_per_step"},
    "horizon": {"rounds": 3},
    "population": {"agents": 20, "batch": 2},
    "solver": {"algorithm": "mirror-descent", "iterations": 300, "tolerance": 1e-6,
               "restarts": 0},
    "simulate": {"replicas": 5},
    "bound_check": {"agents": [10, 20], "batch": [2, "all"], "replicas": 3},
    "seed": 5,
}


def test_policy_synchronous_plays_round_k_of_the_synchronous_equilibrium_in_round_k(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B = 2 of N = 20 over 3 rounds (30 steps) under the equilibrium of B = N (3 steps): the
    mean-field flow is that of pi_sync repeated N/B = 10 times per round, and J is the one
    bound-check finds for its regime B = 2 at N = 20 with the synchronous spec's policy."""
    from tmfcli.io import spec as specs
    from tmfcli.io.resolve import setting
    from tmfcli.model.flow import mean_field_flow

    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, SYNC)
    sync = invoke("solve", str(spec), "--set", "population.batch=all", "--out",
                  str(tmp_path / "sync"))
    assert sync.exit_code == 0, sync.output
    policy = pd.read_csv(tmp_path / "sync" / "policy.csv").sort_values(["t", "obs", "action"])
    pi_sync = policy["prob"].to_numpy().reshape(3, 3, 3)
    own = setting(specs.load(spec))
    assert own.T == 30
    expected = mean_field_flow(own, np.repeat(pi_sync, 10, axis=0)).mu  # (31, 3)

    result = invoke("simulate", str(spec), "--policy", "synchronous", "--out",
                    str(tmp_path / "sim"))
    assert result.exit_code == 0, result.output
    assert "reusing" not in result.stderr  # nothing in results/rounds/solve
    trajectory = pd.read_csv(tmp_path / "sim" / "trajectory.csv")
    mu_bar = trajectory[trajectory.replica == 0].sort_values(["t", "obs"])["mu_bar"]
    np.testing.assert_allclose(mu_bar.to_numpy().reshape(31, 3), expected, rtol=0, atol=1e-12)
    manifest = yaml.safe_load((tmp_path / "sim" / "manifest.yaml").read_text())
    assert manifest["policy"].startswith("synchronous equilibrium (exploitability ")
    assert manifest["steps"] == 30

    # the same policy, as its own: the B = 2 equilibrium is another flow
    own_eq = invoke("simulate", str(spec), "--out", str(tmp_path / "own"))
    assert own_eq.exit_code == 0, own_eq.output
    other = pd.read_csv(tmp_path / "own" / "trajectory.csv")
    assert np.abs(other[other.replica == 0]["mu_bar"].to_numpy() - mu_bar.to_numpy()).max() > 1e-3

    bc = invoke("bound-check", str(spec), "--set", "population.batch=all", "--out",
                str(tmp_path / "bc"), "--workers", "1")
    assert bc.exit_code in (0, 3), bc.output
    # and bound-check of the B = 2 spec itself with --policy synchronous: the same policy
    explicit = invoke("bound-check", str(spec), "--policy", "synchronous", "--out",
                      str(tmp_path / "bc2"), "--workers", "1")
    assert explicit.exit_code in (0, 3), explicit.output
    summary = pd.read_csv(tmp_path / "sim" / "summary.csv").set_index("metric")
    for directory in ("bc", "bc2"):
        replicas = pd.read_csv(tmp_path / directory / "replicas.csv", dtype={"regime": str})
        J_bc = replicas[(replicas.regime == "2") & (replicas.N == 20)]["J"].iloc[0]
        assert summary.at["J", "mean"] == pytest.approx(J_bc, abs=1e-12)
    assert yaml.safe_load((tmp_path / "bc2" / "manifest.yaml").read_text())["policy_steps"] == 3
    assert summary.at["J", "mean"] != pytest.approx(
        pd.read_csv(tmp_path / "own" / "summary.csv").set_index("metric").at["J", "mean"],
        abs=1e-6)


def test_simulate_reuses_a_solve_of_the_same_spec_only(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy is read from results/<name>/solve/<hash>: replacing its policy.csv by the uniform
    policy makes simulate run the uniform policy. Keys solve does not read may differ; a
    different discount may not."""
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path)
    assert invoke("solve", str(spec)).exit_code == 0
    solved = runs.resolve(Path("results/demo/solve"))  # the latest run of the store
    assert (solved / "manifest.yaml").is_file()
    uniform = invoke("simulate", str(spec), "--policy", "uniform", "--out", str(tmp_path / "u"))
    assert uniform.exit_code == 0, uniform.output
    pi = pd.read_csv(solved / "policy.csv")
    pi.assign(prob=0.5).to_csv(solved / "policy.csv", index=False)  # left_right has 2 actions

    reused = invoke("simulate", str(spec), "--out", str(tmp_path / "r"), "--set",
                    "population.activation=bernoulli")
    assert reused.exit_code == 0, reused.output
    assert f"policy: reusing the solve in {solved} (same equilibrium " \
        "inputs); not solving again" in reused.stderr
    u_summary = pd.read_csv(tmp_path / "u" / "summary.csv").set_index("metric")
    r_summary = pd.read_csv(tmp_path / "r" / "summary.csv").set_index("metric")
    assert r_summary["mean"]["J"] == u_summary["mean"]["J"]
    manifest = yaml.safe_load((tmp_path / "r" / "manifest.yaml").read_text())
    assert manifest["policy"].startswith("equilibrium (exploitability ")  # the solve's label

    other = invoke("simulate", str(spec), "--out", str(tmp_path / "o"), "--set",
                   "discount=0.9")
    assert other.exit_code == 0, other.output
    assert "reusing" not in other.stderr
    # solved again: an equilibrium, where the uniform policy is exploitable
    exploitability = {name: yaml.safe_load((tmp_path / name / "manifest.yaml").read_text())[
        "exploitability"] for name in ("u", "r", "o")}
    assert exploitability["r"] == exploitability["u"] > 1e-5
    assert exploitability["o"] <= 1e-8
    # an incomplete solve directory (no manifest) is not reused
    (solved / "manifest.yaml").unlink()
    fresh = invoke("simulate", str(spec), "--out", str(tmp_path / "f"), "--force")
    assert fresh.exit_code == 0 and "reusing" not in fresh.stderr


def test_simulate_help_names_the_policy_choices() -> None:
    result = invoke("simulate", "--help")
    assert result.exit_code == 0
    assert "synchronous" in result.stdout and "uniform" in result.stdout


def test_simulate_every_keeps_every_kth_step_and_the_last(tmp_path: Path) -> None:
    data = {"name": "thin", "game": {"name": "resource_selection_per_step"},
            "horizon": {"steps": 10},
            "population": {"agents": 50, "batch": 5}, "simulate": {"replicas": 3}, "seed": 1}
    spec = write_spec(tmp_path, data)
    full, thin = tmp_path / "full", tmp_path / "thin"
    args = ("--policy", "uniform")
    assert invoke("simulate", str(spec), "--out", str(full), *args).exit_code == 0
    result = invoke("simulate", str(spec), "--out", str(thin), "--set", "simulate.every=4",
                    *args)
    assert result.exit_code == 0, result.output
    a, b = pd.read_csv(full / "trajectory.csv"), pd.read_csv(thin / "trajectory.csv")
    assert sorted(set(b["t"])) == [0, 4, 8, 10]
    assert len(b) == 3 * 4 * 3  # replicas x kept steps x observations
    pd.testing.assert_frame_equal(a[a["t"].isin([0, 4, 8, 10])].reset_index(drop=True), b)
    for name in ("replicas.csv", "summary.csv"):  # gaps and returns use every step
        assert (full / name).read_bytes() == (thin / name).read_bytes()
    every_step = invoke("simulate", str(spec), "--out", str(tmp_path / "k1"), "--set",
                        "simulate.every=1", *args)
    assert (tmp_path / "k1" / "trajectory.csv").read_bytes() == \
        (full / "trajectory.csv").read_bytes(), every_step.output
    beyond = invoke("simulate", str(spec), "--out", str(tmp_path / "k20"), "--set",
                    "simulate.every=20", *args)
    assert beyond.exit_code == 0
    assert sorted(set(pd.read_csv(tmp_path / "k20" / "trajectory.csv")["t"])) == [0, 10]
    bad = invoke("simulate", str(spec), "--set", "simulate.every=0", "--out", str(tmp_path / "x"))
    assert bad.exit_code == 1
    assert bad.stderr == "Error: --set simulate.every=0: 0 is too small — use an integer >= 1\n"


def test_a_train_run_builds_its_game_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tmfcli.io.spec_types import Spec

    built: list[str] = []
    build = Spec._game_of_block

    def counted(self: Spec) -> Any:
        built.append(self.name)
        return build(self)

    monkeypatch.setattr(Spec, "_game_of_block", counted)
    spec = Path(__file__).resolve().parent.parent / "experiments" / "train-resource.yaml"
    result = invoke("train", str(spec), "--set",
                    "train.iterations=2", "--set", "train.yardstick=false", "--out",
                    str(tmp_path / "t"), "--quiet")
    assert result.exit_code == 0, result.output
    assert built == ["train-resource"]
