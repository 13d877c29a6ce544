"""`make demo`: its three commands and experiments/demo.py's plain-words table."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

import tmfcli as tmf
from tmfcli.cli import app

ROOT = Path(__file__).resolve().parents[1]


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "experiments" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_first_line_mentions_learning() -> None:
    done = CliRunner().invoke(app, ["--help"], prog_name="tmf")
    first = [line for line in done.output.splitlines() if line.strip()][1]
    assert "learn" in first


def test_demo_prints_what_the_commands_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for argv in (["solve", "experiments/resource-demo.yaml", "--set", "solver.restarts=0"],
                 ["simulate", "experiments/resource-demo.yaml", "--set", "solver.restarts=0",
                  "--set", "simulate.replicas=20"],
                 ["train", "experiments/train-resource.yaml", "--set", "train.iterations=5"]):
        done = runner.invoke(app, [*argv, "--quiet"], prog_name="tmf")
        assert done.exit_code == 0, done.output
    demo_module().main()
    shown = capsys.readouterr().out
    trained = tmf.read("results/train-resource/train")
    solved = tmf.read("results/resource-demo/solve")
    assert f"gains {solved.manifest['exploitability']:.1e}" in shown
    assert f"deviation gain of {trained.manifest['exploitability']:.3f}" in shown
    assert "tmf-pg, 5 iterations" in shown
    assert str(trained.directory) in shown


def test_demo_without_results_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        demo_module().main()
    assert str(stop.value) == ("Error: results/resource-demo/solve: no finished result here "
                               "(no manifest.yaml with status: complete) — give the directory "
                               "of a finished run, or run it again (run `make demo`)")
