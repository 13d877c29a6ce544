"""The learner registry: every registered learner is a ``Learner``, listed by ``tmf train
--help`` and in docs/train.md; a learner registered from outside tmfcli (here: one that never
moves) is accepted by the spec, trained by ``tmf train``, written and reported by
``tmf report``, with its own column in iterations.csv."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tmfcli.cli import app
from tmfcli.learning.learner import Behaviour, Draw, Iteration, Learner, TrainConfig
from tmfcli.learning.registry import LEARNERS, Entry, listing, load
from tmfcli.model.exploitability import Evaluation
from tmfcli.model.policy import TabularPolicy, uniform_policy
from tmfcli.model.setting import Setting

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@dataclass
class Still:
    """The uniform policy of one setting: the state of a learner that never moves."""

    policy: TabularPolicy


@dataclass(frozen=True)
class Uniform:
    """A learner that plays pi = 1/A and never updates; its own column ``draws`` holds the
    decisions of the iteration's rollouts."""

    columns: tuple[str, ...] = ("draws",)

    def start(self, setting: Setting, config: TrainConfig) -> Still:
        return Still(uniform_policy(setting.game.n_obs, setting.game.n_act, setting.T))

    def on_flow(self, state: Still) -> np.ndarray:
        return state.policy.pi

    def behaviour(self, state: Still) -> Behaviour:
        return Behaviour(state.policy)

    def step(self, state: Still, i: int, ev: Evaluation, draw: Draw) -> tuple[Still, Iteration]:
        batch = draw(self.behaviour(state))
        return state, Iteration(float(batch.returns.mean()), math.nan,
                                (float(batch.decisions),))

    def policy(self, state: Still) -> TabularPolicy:
        return state.policy


UNIFORM = Uniform()
SPEC: dict[str, Any] = {"name": "demo", "game": {"name": "left_right"}, "horizon": {"rounds": 2},
                        "population": {"agents": 20, "batch": 1},
                        "train": {"iterations": 3, "rollouts": 2, "inner_steps": 2},
                        "simulate": {"replicas": 10}, "seed": 1}


@pytest.fixture
def uniform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LEARNERS, "uniform", Entry("the uniform policy, never moves",
                                                   f"{__name__}:UNIFORM"))


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="tmf")


@pytest.mark.parametrize("name", list(LEARNERS))
def test_every_registered_learner_is_a_learner(name: str) -> None:
    learner = load(name)
    assert isinstance(learner, Learner)
    assert isinstance(learner.columns, tuple)
    yardstick = LEARNERS[name].yardstick
    assert yardstick is None or yardstick in LEARNERS


def test_train_help_and_docs_list_every_registered_learner() -> None:
    result = invoke("train", "--help")
    assert result.exit_code == 0, result.output
    flat = "".join(result.output.split())  # the help wraps lines, at hyphens too
    docs = (ROOT / "docs" / "train.md").read_text()
    spec_line = next(line for line in (ROOT / "docs" / "spec.md").read_text().splitlines()
                     if line.strip().startswith("algorithm: tmf-pg"))
    for name, summary in listing():
        assert "".join(f"{name}: {summary}".split()) in flat, name
        assert f"| `{name}` |" in docs, name
        assert f" {name} " in f" {spec_line} ", name


def test_a_learner_registered_outside_tmfcli_is_trained_written_and_reported(
        tmp_path: Path, uniform: None) -> None:
    assert ("uniform", "the uniform policy, never moves") in listing()
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    result = invoke("train", str(path), "--algorithm", "uniform", "--out", str(tmp_path / "u"))
    assert result.exit_code == 0, result.output
    history = pd.read_csv(tmp_path / "u" / "iterations.csv")
    summary = pd.read_csv(tmp_path / "u" / "summary.csv").set_index("metric")["mean"]
    assert list(history["algorithm"].unique()) == ["uniform"]
    assert len(history) == 4  # iterations 0..2 and the final row
    # it never moves: its exploitability is the uniform policy's, as the summary computes it
    np.testing.assert_allclose(history["exploitability"], summary["exploitability_uniform"],
                               rtol=1e-12)
    # its own column: per iteration the decisions it drew, which the shared loop accumulates
    draws = history["draws"].to_numpy()
    assert np.isnan(draws[-1]) and (draws[:-1] > 0).all()
    np.testing.assert_array_equal(np.cumsum(draws[:-1]), history["samples"].to_numpy()[:-1])
    assert "exploitability_exact" not in summary.index  # it names no yardstick
    table = pd.read_csv(tmp_path / "u" / "policy.csv")  # its result is a table
    np.testing.assert_allclose(table["prob"], 0.5)  # left_right: two actions

    report = invoke("report", str(tmp_path / "u"), "--out", str(tmp_path / "r"))
    assert report.exit_code == 0, report.output
    text = (tmp_path / "r" / "REPORT.md").read_text()
    assert "uniform" in text


def test_the_spec_names_the_registered_learners(tmp_path: Path, uniform: None) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    result = invoke("train", str(path), "--algorithm", "nope", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert f"use one of: {', '.join(LEARNERS)}" in result.output
    assert "uniform" in result.output
