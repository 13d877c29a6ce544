"""The Python API (tmfcli.api): the worked example of docs/api.md runs as written, and the
API writes what the command line writes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import tmfcli as tmf
from tmfcli.cli import app
from tmfcli.model.setting import Batch

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def doc_cells(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def test_docs_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    cells = doc_cells(ROOT / "docs" / "api.md")
    assert len(cells) >= 6
    namespace: dict[str, object] = {}
    for cell in cells:
        exec(compile(cell, "docs/api.md", "exec"), namespace)
    printed = capsys.readouterr().out
    # the last cell prints the message of the error it provokes
    assert "--set population.batch=5000: batch 5000 is larger than agents (1000) — use a " \
        "batch between 1 and 1000" in printed
    assert (tmp_path / "results" / "resource-demo" / "solve").is_dir()


def test_api_and_cli_write_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    spec = {"name": "api", "game": {"name": "left_right"},
            "population": {"agents": 100, "batch": 10},
            "solver": {"algorithm": "tmf-pg", "iterations": 50, "tolerance": 1e-8,
                       "restarts": 0, "params": {"natural": True}},
            "seed": 3}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = runner.invoke(app, ["solve", "spec.yaml", "--out", "cli", "--quiet"])
    assert done.exit_code in (0, 4), done.output
    result = tmf.solve(spec, out="api")
    assert result.directory == Path("api")
    for table in ("iterations", "policy", "flow"):
        if table == "iterations":  # elapsed_s is a timing: every other column is equal
            a = pd.read_csv(tmp_path / "cli" / "iterations.csv").drop(columns="elapsed_s")
            b = result["iterations"].drop(columns="elapsed_s")
            pd.testing.assert_frame_equal(a, b)
        else:
            assert (tmp_path / "cli" / f"{table}.csv").read_bytes() == \
                (tmp_path / "api" / f"{table}.csv").read_bytes()
    cli_manifest = yaml.safe_load((tmp_path / "cli" / "manifest.yaml").read_text())
    assert result.manifest["spec_hash"] == cli_manifest["spec_hash"]
    assert result.manifest["spec"] == cli_manifest["spec"] | {"name": "api"}
    # the same spec from the API again is reused, not recomputed
    assert tmf.solve(spec, out="api").manifest["finished"] == result.manifest["finished"]


def test_api_overrides_mapping_and_list_agree() -> None:
    path = ROOT / "experiments" / "resource-demo.yaml"
    a = tmf.load_spec(path, {"population.batch": 1, "game.params.K": 5})
    b = tmf.load_spec(path, ["population.batch=1", "game.params.K=5"])
    assert a == b
    assert a.population.batch == Batch("count", 1) and a.game.params["K"] == 5


@pytest.mark.parametrize(("call", "message"), [
    (lambda: tmf.load_spec({"name": "x", "game": {"name": "nope"}}),
     "game.name: unknown game 'nope'"),
    (lambda: tmf.load_spec(ROOT / "experiments" / "resource-demo.yaml",
                           {"population.batch": 0}),
     "--set population.batch=0: "),
    (lambda: tmf.read(ROOT / "no-such-result"),
     f"{ROOT / 'no-such-result'}: no finished result here (no manifest.yaml with status: "
     "complete) — give the directory of a finished run, or run it again"),
    (lambda: tmf.solve(ROOT / "experiments" / "resource-demo.yaml", max_memory="lots"),
     "--max-memory 'lots' is not a size; write e.g. 8G, 500M or 2e9 — give a size such as 8G"),
])
def test_api_errors_carry_the_cli_message(call: object, message: str) -> None:
    with pytest.raises(tmf.TmfError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.message().startswith(message)


def test_result_lists_tables_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("status: complete\ncommand: solve\n")
    (tmp_path / "policy.csv").write_text("t,prob\n0,1.0\n")
    result = tmf.read(tmp_path)
    assert list(result.tables) == ["policy"]
    with pytest.raises(KeyError, match="has no table 'flow': it has policy"):
        result["flow"]


def test_api_bound_check_runs_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    spec = {"name": "gap", "game": {"name": "left_right"},
            "population": {"agents": 20, "batch": 1},
            "bound_check": {"agents": [10, 40], "batch": [1, "all"], "replicas": 4},
            "seed": 2}
    result = tmf.bound_check(spec, policy="uniform", workers=1, out="api")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = runner.invoke(app, ["bound-check", "spec.yaml", "--policy", "uniform", "--workers",
                               "1", "--out", "cli", "--quiet"])
    assert done.exit_code in (0, 3), done.output
    assert result.command == "bound-check" and isinstance(result.manifest["passed"], bool)
    assert (done.exit_code == 3) == (result.manifest["passed"] is False)
    assert set(result.tables) == {"cells", "fits", "replicas"}
    for table in ("cells", "fits", "replicas"):
        assert (tmp_path / "cli" / f"{table}.csv").read_bytes() == \
            (tmp_path / "api" / f"{table}.csv").read_bytes()
    with pytest.raises(ValueError, match="unknown command 'bound_check'"):
        tmf.run("bound_check", spec)
