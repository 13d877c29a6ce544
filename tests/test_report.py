"""tmf report: tables from real result directories, figures, same bytes, errors, claims.

Solve, simulate and bound-check directories are produced here by the real commands at tiny
sizes. ``tmf train`` is not part of this version: its directory is built by hand to the
contract its command will write (iterations.csv, summary.csv, manifest.yaml with
``command: train``), see ``train_dir``.
"""

from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.analysis.plots import bound_check_figure
from tmfcli.cli import app

runner = CliRunner()

SPEC: dict[str, Any] = {
    "name": "tiny",
    "game": {"name": "resource_selection_per_step", "params": {"K": 3}},
    "horizon": {"steps": 6},
    "discount": 1.0,
    "population": {"agents": 50, "batch": 5},
    "solver": {"algorithm": "mirror-descent", "iterations": 200, "tolerance": 1e-8,
               "restarts": 1},
    "simulate": {"replicas": 20},
    "bound_check": {"agents": [50, 200], "batch": [1, 5], "replicas": 10},
    "seed": 0,
}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two solves (B = 5 and B = 50 of 50), a simulate and a bound-check, by the commands."""
    root = tmp_path_factory.mktemp("results")
    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    out = {"solve": root / "solve", "solve_all": root / "solve-all", "simulate": root / "sim",
           "simulate_200": root / "sim-200", "bound": root / "bc"}
    for args in (["solve", str(spec), "--out", str(out["solve"])],
                 ["solve", str(spec), "--set", "population.batch=all", "--out",
                  str(out["solve_all"])],
                 ["simulate", str(spec), "--policy", str(out["solve"]), "--out",
                  str(out["simulate"])],
                 ["simulate", str(spec), "--policy", str(out["solve"]), "--set",
                  "population.agents=200", "--out", str(out["simulate_200"])],
                 ["bound-check", str(spec), "--workers", "1", "--out", str(out["bound"])]):
        result = invoke(*args)
        assert result.exit_code in (0, 3), result.output
    return out


def report(paths: list[Path], out: Path, *extra: str) -> Any:
    result = invoke("report", *map(str, paths), "--out", str(out), *extra)
    return result


def is_png(path: Path) -> tuple[int, int]:
    """Width and height of a valid PNG (signature and IHDR checked); the image decodes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[:2] == (height, width)
    return width, height


# --------------------------------------------------------------------------------------------
# tables and figures from real result directories
# --------------------------------------------------------------------------------------------
def test_report_has_one_row_per_run_with_the_numbers_of_the_files(dirs: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    paths = [dirs["solve"], dirs["solve_all"], dirs["simulate"], dirs["bound"]]
    result = report(paths, tmp_path, "--format", "csv")
    assert result.exit_code == 0, result.output

    solve = pd.read_csv(tmp_path / "solve.csv")
    assert len(solve) == 2  # two solve directories make one comparison table
    assert solve["run"].tolist() == ["tiny (batch=5)", "tiny (batch=all)"]  # the differing key
    for row, key in zip(solve.to_dict("records"), ("solve", "solve_all"), strict=True):
        last = pd.read_csv(dirs[key] / "iterations.csv").iloc[-1]
        manifest = yaml.safe_load((dirs[key] / "manifest.yaml").read_text())
        assert row["exploitability"] == last["exploitability"]
        assert row["J"] == last["J"]
        assert row["flow_spread"] == manifest["uniqueness"]["flow_spread"]
        assert (row["restarts_converged"], row["restarts"]) == \
            (manifest["uniqueness"]["restarts_converged"], 1)
        assert row["directory"] == str(dirs[key])  # joins the run store's tables
        assert not [c for c in solve.columns if " " in c]  # names to use in code

    sim = pd.read_csv(tmp_path / "simulate.csv")
    summary = pd.read_csv(dirs["simulate"] / "summary.csv").set_index("metric")
    assert len(sim) == 1
    assert (sim.loc[0, "N"], sim.loc[0, "B"], sim.loc[0, "replicas"]) == (50, 5, 20)
    for metric in ("gap_max", "gap_mean", "return_avg", "return_minus_J"):
        assert sim[metric][0] == summary["mean"][metric]
        assert sim[f"{metric}_low"][0] == summary["ci_low"][metric]

    bound = pd.read_csv(tmp_path / "bound-check.csv", dtype={"regime": str})
    fits = pd.read_csv(dirs["bound"] / "fits.csv", dtype={"regime": str},
                       keep_default_na=False, na_values=[""])
    assert list(zip(bound["regime"], bound["metric"], strict=True)) == \
        [(r, m) for r, m in zip(fits["regime"], fits["metric"], strict=True)
         if m != "return_gap"]
    np.testing.assert_array_equal(bound["slope"],
                                  fits[fits["metric"] != "return_gap"]["slope"])
    assert (bound["N"] == "50..200").all()

    text = (tmp_path / "REPORT.md").read_text()
    for heading in ("## Equilibria (tmf solve)", "## N-agent simulations (tmf simulate)",
                    "## Finite-population gap (tmf bound-check)", "| run | game |"):
        assert heading in text
    linked = [line.split("](")[1].rstrip(")") for line in text.splitlines()
              if line.startswith("![")]
    expected = {"solve-exploitability.png", "flow-tiny-batch-5.png", "flow-tiny-batch-all.png",
                "bands-tiny.png", "bound-tiny.png"}
    assert set(linked) == expected
    for name in expected:
        width, height = is_png(tmp_path / name)
        assert 600 <= width <= 680  # within one column (3.4 in at 200 dpi), cropped to the ink
        assert 300 < height < 1200


@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_same_inputs_give_the_same_bytes_in_every_format(dirs: dict[str, Path],
                                                        tmp_path: Path) -> None:
    paths = [dirs["solve"], dirs["simulate"], dirs["bound"]]
    for out in ("a", "b"):
        result = report(paths, tmp_path / out, "--format", "json", "--figure-format", "svg",
                        "--figure-format", "pdf")
        assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {Path(f).suffix for f in files} == {".md", ".json", ".png", ".svg", ".pdf", ".yaml"}
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in (f for f in files if f != "manifest.yaml"):  # the manifest holds times
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_flow_figure_names_the_observations(dirs: dict[str, Path], tmp_path: Path) -> None:
    from tmfcli.analysis.report import obs_labels

    spec = yaml.safe_load((dirs["solve"] / "manifest.yaml").read_text())["spec"]
    assert obs_labels(spec, 3) == ["r0", "r1", "r2"]  # the game's own labels
    assert obs_labels({"game": {"name": "not-a-game"}}, 2) == ["o=0", "o=1"]
    named = pd.DataFrame({"t": [0, 0, 1, 1], "obs": [1, 0, 0, 1],
                          "obs_label": ["queue", "out", "out", "queue"]})
    assert obs_labels({"game": {"name": "not-a-game"}}, 2, named) == ["out", "queue"]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_unknown_kind_missing_csv_and_no_manifest_are_clear_errors(dirs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(dirs["solve"], odd)
    manifest = yaml.safe_load((odd / "manifest.yaml").read_text())
    manifest["command"] = "juggle"
    (odd / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = report([odd], tmp_path / "r1")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {odd / 'manifest.yaml'}: unknown kind of result "
                                    "'command: juggle' — tmf report reads results of: solve, "
                                    "simulate, bound-check, train")

    holed = tmp_path / "holed"
    shutil.copytree(dirs["simulate"], holed)
    (holed / "trajectory.csv").unlink()
    result = report([dirs["solve"], holed], tmp_path / "r2")
    assert result.exit_code == 1
    assert f"Error: {holed}: trajectory.csv is missing (a simulate result holds summary.csv, " \
        "trajectory.csv) — rerun tmf simulate" in result.output

    bare = tmp_path / "bare"
    bare.mkdir()
    result = report([bare], tmp_path / "r3")
    assert result.exit_code == 1
    assert f"Error: {bare}: no manifest.yaml" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r3" / "REPORT.md").exists()

    assert report([dirs["solve"]], tmp_path / "r4", "--format", "xml").exit_code == 2


# --------------------------------------------------------------------------------------------
# the reference bound is never dropped silently
# --------------------------------------------------------------------------------------------
def _sweep(bound: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    N = [100, 1000]
    est = [0.1, 0.1 / math.sqrt(10)]
    cells = pd.DataFrame({"regime": "1", "N": N, "B": 1, "steps": 10, "replicas": 10,
                          "metric": "e_max", "estimate": est,
                          "ci_low": [0.9 * e for e in est], "ci_high": [1.1 * e for e in est],
                          "bound": bound, "seed": 0})
    fits = pd.DataFrame({"regime": ["1"], "metric": ["e_max"], "slope": [-0.5],
                         "ci_low": [-0.6], "ci_high": [-0.4], "worst_ratio": [0.1],
                         "allowance": [0.0], "verdict": ["pass"]})
    return cells, fits


def test_bound_far_above_the_data_is_drawn_clipped_and_named(tmp_path: Path) -> None:
    slopes = "slopes e_max [95% CI]: B=1 -0.50 [-0.60, -0.40]"  # the legend names regimes only
    cells, fits = _sweep([1.0, 0.3])  # within 10x: drawn as a line, nothing to say
    assert bound_check_figure(cells, fits, tmp_path / "near.png") == [slopes]
    cells, fits = _sweep([1e6, 3e5])
    notes = bound_check_figure(cells, fits, tmp_path / "far.png")
    assert notes == [slopes, "B = 1: reference bound off scale (up to 1.0e+07 x the data), "
                     "marked at the top"]
    cells, fits = _sweep([math.inf, 1.0])
    notes = bound_check_figure(cells, fits, tmp_path / "inf.png")
    assert notes == [slopes, "B = 1: reference bound infinite (says nothing) at N = 100"]
    for name in ("near", "far", "inf"):
        is_png(tmp_path / f"{name}.png")
    # the marker changes the picture: the clipped figure is not the one without a bound
    assert (tmp_path / "far.png").read_bytes() != (tmp_path / "near.png").read_bytes()


# --------------------------------------------------------------------------------------------
# train, to the contract of its command (directories built by hand)
# --------------------------------------------------------------------------------------------
FINAL = {  # (algorithm, batch) -> final exploitability of seeds 0 and 1
    ("tmf-pg", "1"): (0.010, 0.020), ("tmf-pg", "all"): (0.012, 0.016),
    ("mf-q", "1"): (0.30, 0.34), ("mf-q", "all"): (0.05, 0.07),
}


def train_dir(root: Path, algorithm: str, batch: str, seed: int, final: float,
              game: str = "resource_selection", uniform: float = 0.5,
              iterations: int = 10) -> Path:
    """A directory as ``tmf train`` will write it: iterations.csv (iteration, exploitability,
    return_avg, samples, grad_norm, elapsed_s, algorithm, agents, batch, seed), summary.csv
    (metric, mean, ci_low, ci_high, seed) and manifest.yaml (command: train, ...)."""
    path = root / f"{game}-{algorithm}-{batch}-{seed}-{iterations}"
    path.mkdir(parents=True)
    k = np.arange(iterations + 1)
    expl = final * 10.0 ** (1 - k / iterations)  # from 10x the final value down to it
    pd.DataFrame({"iteration": k, "exploitability": expl, "return_avg": -expl,
                  "samples": 1000 * (k + 1), "grad_norm": expl, "elapsed_s": 0.1 * k,
                  "algorithm": algorithm, "agents": 1000, "batch": batch,
                  "seed": seed}).to_csv(path / "iterations.csv", index=False)
    rows = [("exploitability", final), ("return_avg", -final), ("eps_n", final / 2),
            ("exploitability_exact", final / 3), ("exploitability_uniform", uniform)]
    pd.DataFrame([(m, v, v - 0.001, v + 0.001, seed) for m, v in rows],
                 columns=["metric", "mean", "ci_low", "ci_high", "seed"]).to_csv(
        path / "summary.csv", index=False)
    spec = {"name": f"train-{game}", "game": {"name": game, "params": {}},
            "horizon": {"rounds": 3}, "population": {"agents": 1000, "batch": batch},
            "train": {"algorithm": algorithm, "iterations": iterations, "lr": 0.1}, "seed": seed}
    (path / "manifest.yaml").write_text(yaml.safe_dump(
        {"command": "train", "algorithm": algorithm, "agents": 1000, "batch": batch,
         "steps": 3, "iterations": iterations, "seed": seed, "spec": spec}))
    return path


def test_runs_of_different_budgets_are_rows_of_their_own(tmp_path: Path) -> None:
    paths = [train_dir(tmp_path / "runs", "tmf-pg-exact", "1", 0, final, iterations=I)
             for I, final in ((40, 0.2), (1000, 0.04))]
    result = report(paths, tmp_path / "out", "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "train.csv")
    assert table[["iterations", "seeds", "exploitability"]].values.tolist() == \
        [[40, 1, 0.2], [1000, 1, 0.04]]  # not one row averaging 0.12 over two "seeds"


def test_train_table_combines_seeds_per_algorithm_and_batch(tmp_path: Path) -> None:
    paths = [train_dir(tmp_path / "runs", a, b, s, FINAL[(a, b)][s])
             for (a, b) in FINAL for s in (0, 1)]
    result = report(paths, tmp_path / "out", "--format", "csv", "--claims")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "train.csv", dtype={"B": str})
    assert list(zip(table["algorithm"], table["B"], strict=True)) == list(FINAL)
    assert (table["seeds"] == 2).all()
    for row in table.to_dict("records"):
        values = np.array(FINAL[(row["algorithm"], row["B"])])
        half = 1.959963984540054 * abs(values[0] - values[1]) / 2  # z sd / sqrt 2, two seeds
        assert row["exploitability"] == pytest.approx(values.mean(), rel=1e-12)
        assert (row["exploitability_low"], row["exploitability_high"]) == \
            pytest.approx((values.mean() - half, values.mean() + half), rel=1e-12)
        assert row["eps_n"] == pytest.approx(values.mean() / 2, rel=1e-12)
        assert row["exploitability_exact"] == pytest.approx(values.mean() / 3, rel=1e-12)
    for name in ("train-exploitability.png", "train-return.png", "train-vs-B.png"):
        is_png(tmp_path / "out" / name)
    # the metric against B: one series per algorithm, B = "all" drawn at N = 1000
    from tmfcli.analysis.report import batch_series

    series = dict(batch_series(table.astype({"B": str, "N": str}), "exploitability"))
    assert sorted(series) == ["mf-q, N=1000", "tmf-pg, N=1000"]
    assert series["tmf-pg, N=1000"]["B"].tolist() == [1.0, 1000.0]
    assert series["tmf-pg, N=1000"]["y"].tolist() == pytest.approx(
        [np.mean(FINAL[("tmf-pg", "1")]), np.mean(FINAL[("tmf-pg", "all")])], rel=1e-12)
    text = (tmp_path / "out" / "REPORT.md").read_text()
    # claim 3: tmf-pg 0.015 +- 1.96 x 0.01 / 2 (B=1) vs 0.014 +- 1.96 x 0.004 / 2 (B=N): the
    # intervals overlap; 0.015 is 0.03 of the uniform policy's 0.5
    assert "| 3. TMF-PG about the same for B = 1 and B = N; mf-q and independent-pg beside it " \
        "| **pass**: resource_selection: tmf-pg exploitability 0.015 [0.0052, 0.0248] (B=1) " \
        "vs 0.014 [0.0101, 0.0179] (B=N): same (intervals overlap, difference 0.001 <= 0.02); " \
        "0.03 and 0.028 of the uniform policy's (0.5, 0.5): both <= 0.1; mf-q B=1: 0.32, " \
        "mf-q B=all: 0.06 |" in text
    assert "**not measurable**: no tmf solve results given" in text


def test_train_runs_of_two_games_stay_apart(tmp_path: Path) -> None:
    """The same algorithm and B on two games: two rows of the train table (never averaged
    together), and the curves' labels name the game."""
    paths = [train_dir(tmp_path / "runs", "tmf-pg", "1", s, v, game=g)
             for g, v in (("resource_selection", 0.01), ("queueing", 0.5)) for s in (0, 1)]
    result = report(paths, tmp_path / "out", "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "train.csv")
    assert sorted(zip(table["game"], table["exploitability"], table["seeds"], strict=True)) \
        == [("queueing", pytest.approx(0.5), 2), ("resource_selection", pytest.approx(0.01), 2)]
    from tmfcli.analysis.report import train_curves
    from tmfcli.io.report_inputs import read_run

    labels = [label for label, _ in train_curves([read_run(p) for p in paths],
                                                  "exploitability")]
    assert labels == ["resource_selection tmf-pg, B=1 (2 seeds)", "queueing tmf-pg, B=1 (2 seeds)"]


def test_claim_three_fails_when_batch_changes_tmf_pg(tmp_path: Path) -> None:
    paths = [train_dir(tmp_path / "runs", "tmf-pg", "1", 0, 0.10),
             train_dir(tmp_path / "runs", "tmf-pg", "1000", 0, 0.01)]  # B = N given as a count
    result = report(paths, tmp_path / "out", "--claims")
    assert result.exit_code == 0, result.output
    assert "claim 3 (TMF-PG about the same for B = 1 and B = N; mf-q and independent-pg " \
        "beside it): fail — resource_selection: tmf-pg exploitability 0.1 (B=1) vs 0.01 " \
        "(B=N): different (no interval with one seed, difference 0.09 > 0.02); 0.2 and 0.02 of " \
        "the uniform policy's (0.5, 0.5): not both <= 0.1" in " ".join(result.output.split())


# --------------------------------------------------------------------------------------------
# claims from real directories, and sweeps
# --------------------------------------------------------------------------------------------
def test_claims_one_and_two_from_the_numbers(dirs: dict[str, Path], tmp_path: Path) -> None:
    result = report([dirs["solve"], dirs["solve_all"], dirs["bound"]], tmp_path / "ok",
                    "--claims", "--format", "json")
    assert result.exit_code == 0, result.output
    import json

    claims = json.loads((tmp_path / "ok" / "report.json").read_text())["claims"]
    spreads = [yaml.safe_load((dirs[k] / "manifest.yaml").read_text())["uniqueness"]
               ["flow_spread"] for k in ("solve", "solve_all")]
    assert claims[0]["verdict"] == ("pass" if max(spreads) <= 1e-3 else "fail")
    fits = pd.read_csv(dirs["bound"] / "fits.csv", keep_default_na=False, na_values=[""])
    e = fits[fits["metric"] == "e_max"]
    expected = "pass" if all(v.startswith("pass") for v in e["verdict"]) else "fail"
    assert claims[1]["verdict"] == expected
    assert claims[2]["verdict"] == "not measurable"

    # a solve whose restarts converged to a different flow is a failed claim
    split = tmp_path / "split"
    shutil.copytree(dirs["solve"], split)
    manifest = yaml.safe_load((split / "manifest.yaml").read_text())
    manifest["converged"] = True
    manifest["uniqueness"].update(flow_spread=0.2, restarts_converged=1, restarts=1)
    (split / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = report([split], tmp_path / "bad", "--claims")
    assert "claim 1 (a unique equilibrium for any B): fail — equilibria at tolerance differ " \
        "by more than 0.001: largest flow spread 0.2" in " ".join(result.output.split())
    # ... but a wide spread from starts that did not converge measures the solver
    manifest["uniqueness"].update(restarts_converged=0)
    (split / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = report([split], tmp_path / "unsure", "--claims")
    assert "claim 1 (a unique equilibrium for any B): not measurable — spread above 0.001 " \
        "only where the solver did not reach its tolerance" in " ".join(result.output.split())


def test_a_sweep_directory_is_read_as_its_finished_cells(dirs: dict[str, Path],
                                                         tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(dirs["solve"], sweep / "cells" / "a")
    shutil.copytree(dirs["solve_all"], sweep / "cells" / "b")
    (sweep / "cells" / "c").mkdir()  # a cell that did not finish: no manifest
    pd.DataFrame({"population.batch": [5, "all", 10], "status": ["done", "done", "failed"],
                  "directory": ["cells/a", "cells/b", "cells/c"],
                  "elapsed_s": [0.1, 0.1, 0.0]}).to_csv(sweep / "sweep.csv", index=False)
    # on top, the sweep's own manifest and a stacked table: not a run of their own
    (sweep / "manifest.yaml").write_text(yaml.safe_dump({"kind": "sweep", "command": "solve"}))
    shutil.copy(dirs["solve"] / "iterations.csv", sweep / "iterations.csv")
    result = report([sweep], tmp_path / "out", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "out" / "solve.csv")) == 2
    assert f"{sweep}: cell cells/c skipped (status failed, no manifest)" in \
        (tmp_path / "out" / "REPORT.md").read_text()


def test_a_command_directory_reads_its_latest_once(dirs: dict[str, Path],
                                                   tmp_path: Path) -> None:
    # results/<name>/solve as the run store lays it out: two runs, latest naming the second
    store = tmp_path / "results" / "tiny" / "solve"
    shutil.copytree(dirs["solve"], store / "aaaa")
    shutil.copytree(dirs["solve_all"], store / "bbbb")
    (store / "latest").symlink_to("bbbb")
    result = report([store], tmp_path / "one", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "one" / "solve.csv")) == 1
    # latest beside the run it names, and beside the other run: each run read once
    result = report([store / "aaaa", store / "bbbb", store / "latest", store], tmp_path / "two",
                    "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "two" / "solve.csv")) == 2
    # where links are not possible, latest is a one-line file naming the run
    (store / "latest").unlink()
    (store / "latest").write_text("aaaa\n")
    result = report([store, store / "aaaa"], tmp_path / "three", "--format", "csv")
    assert result.exit_code == 0, result.output
    one, three = (pd.read_csv(tmp_path / d / "solve.csv") for d in ("one", "three"))
    assert len(three) == 1 and not one.equals(three)


def test_a_command_directory_without_latest_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "results" / "tiny" / "solve"
    store.mkdir(parents=True)
    result = report([store], tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {store}: no manifest.yaml, so not a complete result "
                             "directory — give a directory written by a tmf command, or rerun "
                             "that command\n")


# --------------------------------------------------------------------------------------------
# make paper-quick, its smallest part end to end
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # 15-40 s on two shared cores: pytest -m 'not slow' skips it
def test_paper_quick_claim_one_end_to_end(tmp_path: Path) -> None:
    """experiments/paper/run.sh quick, claim 1 only: four solves with restarts, then the
    report with its verdict (the whole of make paper-quick takes about a minute)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    tmf = Path(sys.executable).parent / "tmf"
    done = subprocess.run(["sh", str(root / "experiments/paper/run.sh"), "quick",
                           str(tmp_path), "1"], env={"TMF": str(tmf), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert text.startswith("# The paper's claims on our games (quick)\n")
    claims = [line for line in text.splitlines() if line.startswith("| 1. ")
              or line.startswith("| 2. ") or line.startswith("| 3. ")]
    assert [c.split("**")[1] for c in claims] == ["pass", "not measurable", "not measurable"]
    assert "over 4 settings, 8/8 restarts at tolerance" in claims[0]
    for alpha in ("resource-alpha-1.0", "resource-alpha-0.3", "queueing-alpha-1.0",
                  "queueing-alpha-0.1"):
        is_png(tmp_path / f"flow-unique-{alpha}.png")


# --------------------------------------------------------------------------------------------
# eps_N, as simulate and bound-check measure it
# --------------------------------------------------------------------------------------------
def test_eps_n_joins_the_tables_figures_and_claim(dirs: dict[str, Path],
                                                  tmp_path: Path) -> None:
    sims = [dirs["simulate"], dirs["simulate_200"]]
    result = report([*sims, dirs["bound"]], tmp_path / "out", "--format", "csv", "--claims")
    assert result.exit_code == 0, result.output
    sim = pd.read_csv(tmp_path / "out" / "simulate.csv")
    for i, path in enumerate(sims):
        summary = pd.read_csv(path / "summary.csv").set_index("metric")
        assert sim["eps_n"][i] == summary["mean"]["eps_n"]
        assert sim["eps_n_high"][i] == summary["ci_high"]["eps_n"]
    table = pd.read_csv(tmp_path / "out" / "bound-check.csv", dtype={"regime": str})
    fits = pd.read_csv(dirs["bound"] / "fits.csv", dtype={"regime": str},
                       keep_default_na=False, na_values=[""])
    eps = fits[fits["metric"] == "eps_n"]
    assert table[table["metric"] == "eps_n"]["regime"].tolist() == eps["regime"].tolist()
    text = (tmp_path / "out" / "REPORT.md").read_text()
    cells = pd.read_csv(dirs["bound"] / "cells.csv", dtype={"regime": str})
    expected = []
    for regime, g in cells.groupby("regime", sort=False):
        if (g[g["metric"] == "eps_mf"]["estimate"].abs() <= 1e-6).all():
            last = g[g["metric"] == "eps_n"].sort_values("N").iloc[-1]
            expected.append(f"tiny B={regime}: {last['estimate']:.2g} [{last['ci_low']:.2g}, "
                            f"{last['ci_high']:.2g}] at N = {last['N']}")
    assert "eps_N at the largest N where the sweep's policy is the regime's equilibrium " \
        f"(eps_mf <= 1e-6): {', '.join(expected) or 'none'}" in text
    assert "not in these" not in text  # no note that eps_N is missing
    # the simulate runs span N = 50 and 200: gap and eps_N against N
    is_png(tmp_path / "out" / "simulate-gap-vs-N.png")
    one_panel = is_png(tmp_path / "out" / "bands-tiny-agents-50.png")[1]
    two_panels = is_png(tmp_path / "out" / "bound-tiny.png")[1]  # e_max and eps_N
    assert two_panels > one_panel + 300


def test_claim_three_fails_when_tmf_pg_does_not_learn(tmp_path: Path) -> None:
    """The same at both B, but 0.2 is 0.4 of the uniform policy's 0.5 > REACH = 0.1."""
    paths = [train_dir(tmp_path / "runs", "tmf-pg", b, s, 0.2 + 0.001 * s)
             for b in ("1", "all") for s in (0, 1)]
    result = report(paths, tmp_path / "out", "--claims")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "fail — resource_selection: tmf-pg exploitability 0.2" in text
    assert "same (intervals overlap, difference 0 <= 0.02); 0.4 and 0.4 of the uniform " \
        "policy's (0.5, 0.5): not both <= 0.1" in text


def test_no_caption_leaves_the_caption_out_of_the_figures_only(tmp_path: Path) -> None:
    """--no-caption: the figures lose their caption lines (shorter canvases), REPORT.md keeps
    the caption under each figure."""
    paths = [train_dir(tmp_path / "runs", "tmf-pg", b, 0, 0.1) for b in ("1", "all")]
    assert report(paths, tmp_path / "with").exit_code == 0
    assert report(paths, tmp_path / "without", "--no-caption").exit_code == 0
    for name in ("train-exploitability.png", "train-return.png"):
        first, second = (tmp_path / d / name for d in ("with", "without"))
        assert is_png(second)[1] <= is_png(first)[1], name
        assert first.read_bytes() != second.read_bytes(), name
    assert is_png(tmp_path / "without" / "train-return.png")[1] < \
        is_png(tmp_path / "with" / "train-return.png")[1]
    assert (tmp_path / "with" / "REPORT.md").read_text() == \
        (tmp_path / "without" / "REPORT.md").read_text()


def test_return_curves_draw_the_value_each_run_knows(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """train-return.png: per series a dashed line at J of its final policy (summary.csv's J,
    mean over seeds), in the series' colour, inside the y range, named once in the legend;
    a series whose summary has no J gets none. Every label lies inside the canvas, and the
    file has the user's mode (0666 less the umask), like the tables."""
    import os

    from matplotlib.colors import to_hex

    from tmfcli.analysis import plots
    from tmfcli.analysis.report import TRAIN_LEVEL

    values = {("tmf-pg", 0): -0.2, ("tmf-pg", 1): -0.4, ("mf-q", 0): -0.9, ("mf-q", 1): -0.7}
    paths = []
    for (algorithm, seed), J in values.items():
        path = train_dir(tmp_path / "runs", algorithm, "1", seed, 0.05)
        with (path / "summary.csv").open("a") as table:
            table.write(f"J,{J},{J},{J},{seed}\n")
        paths.append(path)
    paths.append(train_dir(tmp_path / "runs", "independent-pg", "1", 0, 0.05))  # no J
    drawn: dict[str, Any] = {}
    save = plots.save

    def inspect(fig: Any, path: Path, formats: Any = ("png",)) -> list[Path]:
        if path.name == "train-return.png":
            fig.canvas.draw()
            ax = fig.axes[0]
            levels = [line for line in ax.get_lines() if line.get_label() == "_level"]
            drawn["levels"] = {to_hex(line.get_color()): line.get_ydata()[0] for line in levels}
            drawn["curves"] = {line.get_label(): to_hex(line.get_color())
                               for line in ax.get_lines() if not line.get_label().startswith("_")}
            drawn["ylim"] = ax.get_ylim()
            drawn["legend"] = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
            canvas = fig.bbox
            texts = [ax.yaxis.label, ax.xaxis.label, *ax.get_yticklabels(),
                     *[t for legend in fig.legends for t in legend.get_texts()]]
            for text in texts:
                box = text.get_window_extent()
                assert canvas.x0 - 1 <= box.x0 and box.x1 <= canvas.x1 + 1 and \
                    canvas.y0 - 1 <= box.y0 and box.y1 <= canvas.y1 + 1, text.get_text()
        return save(fig, path, formats)

    monkeypatch.setattr(plots, "save", inspect)
    old = os.umask(0o022)
    try:
        result = report(paths, tmp_path / "out", "--format", "csv")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    colour = drawn["curves"]
    assert drawn["levels"] == {colour["tmf-pg, B=1 (2 seeds)"]: pytest.approx(-0.3),
                               colour["mf-q, B=1 (2 seeds)"]: pytest.approx(-0.8)}
    assert colour["independent-pg, B=1 (1 seed)"] not in drawn["levels"]
    assert drawn["ylim"][0] < -0.8 and -0.3 < drawn["ylim"][1]
    assert drawn["legend"].count(TRAIN_LEVEL) == 1
    figure = tmp_path / "out" / "train-return.png"
    is_png(figure)
    assert figure.stat().st_mode & 0o777 == 0o644
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert "dash-dot-dot lines: J, the mean-field value" in text
