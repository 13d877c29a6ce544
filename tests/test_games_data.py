"""Games as data (docs/games.md): YAML games equal the shipped ones, malformed games give their
specific errors, the expression language is closed, plugins and Python games work."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tmfcli.errors import SpecError, TmfError
from tmfcli.io import spec as specs
from tmfcli.io import spec_types
from tmfcli.io.resolve import setting
from tmfcli.model.exploitability import evaluate
from tmfcli.model.games.expressions import ExpressionError, check, parse
from tmfcli.model.policy import TabularPolicy
from tmfcli.simulation.counts import simulate
from tmfcli.solvers import run

ROOT = Path(__file__).resolve().parent.parent
GAMES_DIR = ROOT / "experiments" / "games"
SHIPPED = ["left_right", "resource_selection_per_step", "queueing_per_step"]


def game_spec(game: dict[str, Any], alpha: float = 1.0, steps: int = 6,
              **extra: Any) -> spec_types.Spec:
    data: dict[str, Any] = {"name": "t", "game": game, "horizon": {"steps": steps},
                            "population": {"alpha": alpha}, **extra}
    return specs.from_dict(data, str(ROOT / "spec.yaml"))


def raw(name: str) -> dict[str, Any]:
    return yaml.safe_load((GAMES_DIR / f"{name}.yaml").read_text())


# --------------------------------------------------------------------------------------------
# the shipped games as YAML
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_yaml_game_gives_the_same_flow_values_and_exploitability(name: str,
                                                                 alpha: float) -> None:
    data = setting(game_spec({"file": f"experiments/games/{name}.yaml"}, alpha))
    shipped = setting(game_spec({"name": name}, alpha))
    rng = np.random.default_rng(7)
    for _ in range(3):
        pi = rng.dirichlet(np.ones(data.game.n_act), size=(data.T, data.game.n_obs))
        a, b = evaluate(data, pi), evaluate(shipped, pi)
        np.testing.assert_allclose(a.flow.mu, b.flow.mu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.own.V, b.own.V, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.best.Q, b.best.Q, rtol=0, atol=1e-12)
        assert abs(a.exploitability - b.exploitability) <= 1e-12
    assert data.game.obs_labels == shipped.game.obs_labels
    assert data.game.act_labels == shipped.game.act_labels


@pytest.mark.parametrize("name", SHIPPED)
def test_yaml_game_solves_to_the_same_equilibrium(name: str) -> None:
    solver = {"algorithm": "mirror-descent"}  # data games declare no potential for auto
    spec = game_spec({"file": f"experiments/games/{name}.yaml"}, 0.5, solver=solver)
    other = game_spec({"name": name}, 0.5, solver=solver)
    a = run(setting(spec), spec.build_algorithm(), 60, 0.0)
    b = run(setting(other), other.build_algorithm(), 60, 0.0)
    np.testing.assert_allclose(a.evaluation.policy, b.evaluation.policy, rtol=0, atol=1e-12)
    assert abs(a.evaluation.exploitability - b.evaluation.exploitability) <= 1e-12


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("batch", [1, 7])
def test_yaml_game_simulates_identically_for_the_same_seed(name: str, batch: int) -> None:
    pop = {"agents": 40, "batch": batch}
    data = setting(specs.from_dict({"name": "t", "game": {"file": str(GAMES_DIR / f"{name}.yaml")},
                                    "horizon": {"steps": 8}, "population": pop}))
    shipped = setting(specs.from_dict({"name": "t", "game": {"name": name},
                                       "horizon": {"steps": 8}, "population": pop}))
    pi = np.random.default_rng(3).dirichlet(np.ones(data.game.n_act),
                                            size=(data.T, data.game.n_obs))
    a = simulate(data, TabularPolicy(pi), 20, seed=11)
    b = simulate(shipped, TabularPolicy(pi), 20, seed=11)
    np.testing.assert_array_equal(a.mu_hat, b.mu_hat)
    np.testing.assert_allclose(a.returns, b.returns, rtol=0, atol=1e-12)


def test_parameters_override_from_the_spec_and_may_be_expressions() -> None:
    base = {"file": "experiments/games/queueing_per_step.yaml"}
    game = game_spec({**base, "params": {"s1": 0.5, "h": "s1 / 10"}}).build_game()
    shipped = game_spec({"name": "queueing_per_step", "params": {"s": [0.5, 0.2, 0.1], "h": 0.05}}
                        ).build_game()
    mu = np.random.default_rng(1).dirichlet(np.ones(4), size=5)
    np.testing.assert_allclose(game.reward(mu, 0), shipped.reward(mu, 0), rtol=0, atol=1e-15)
    assert game.lipschitz() == shipped.lipschitz()


def test_inline_define_equals_the_file() -> None:
    inline = game_spec({"define": raw("left_right")}).build_game()
    mu = np.random.default_rng(2).dirichlet(np.ones(3), size=4)
    shipped = game_spec({"name": "left_right"}).build_game()
    np.testing.assert_array_equal(inline.reward(mu, 0), shipped.reward(mu, 0))


# --------------------------------------------------------------------------------------------
# malformed games: each its own error
# --------------------------------------------------------------------------------------------
def broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw("queueing_per_step"))
    change(data)
    return data


def error_of(definition: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(SpecError) as info:
        game_spec({"define": definition}, **extra)
    return info.value.message()


def test_row_not_summing_to_one() -> None:
    message = error_of(broken(lambda d: d["P"]["queue2"].update(join_queue1={"queue1": 0.9})))
    assert "game.define.P.queue2.join_queue1: row sums to 0.9, not 1" in message
    assert "make the row a distribution" in message


def test_negative_entry() -> None:
    message = error_of(broken(lambda d: d["P"]["queue2"].update(
        join_queue1={"queue1": 1.2, "queue2": -0.2})))
    assert "game.define.P.queue2.join_queue1: gives a negative probability -0.2 to 'queue2'" \
        in message


def test_negative_entry_at_some_mu_only() -> None:
    message = error_of(broken(lambda d: d["P0"].update(queue1={"out": "2 * mu[o]",
                                                               "queue1": "rest"})))
    assert "P0.queue1: gives a negative probability" in message and "queue1: 1" in message


def test_unknown_name_in_an_expression() -> None:
    message = error_of(broken(lambda d: d["r"].update(out="-kapa * mu[o]")))
    assert "game.define.r.out: unknown name 'kapa' in '-kapa * mu[o]'" in message
    assert "use a parameter (s1, s2, s3, h, R, lam)" in message


def test_unknown_observation_in_mu() -> None:
    message = error_of(broken(lambda d: d["r"].update(out="-mu['queue9']")))
    assert "unknown observation 'queue9' in mu[...]" in message
    assert "use one of: out, queue1, queue2, queue3" in message


def test_wrong_shape_missing_row_and_unknown_names() -> None:
    assert "game.define.P.queue3.join_queue2: missing row" in error_of(
        broken(lambda d: d["P"]["queue3"].pop("join_queue2")))
    assert "game.define.P.queue4: unknown observation — use one of: out, queue1, queue2, " \
        "queue3 or '*'" in error_of(broken(lambda d: d["P"].update(queue4="out")))
    assert "game.define.r.queue1.leave: unknown action" in error_of(
        broken(lambda d: d["r"]["queue1"].update(leave=0)))
    assert "game.define.r.queue1: missing entry" in error_of(
        broken(lambda d: d["r"].pop("queue1")))
    assert "game.define.observations[2]: 'queue1' is listed twice" in error_of(
        broken(lambda d: d.update(observations=["out", "queue1", "queue1", "queue3"])))


def test_expression_dividing_by_zero_at_some_mu() -> None:
    message = error_of(broken(lambda d: d["r"].update(out="1 / mu['queue1']")))
    assert "game.define.r.out: \"1 / mu['queue1']\" divides by zero at mu = (out: 1)" \
        in message
    assert "guard it" in message
    message = error_of(broken(lambda d: d["r0"].update(out="log(mu[o])")))
    assert "takes the log of a number <= 0" in message


def test_guarded_division_passes() -> None:
    fine = broken(lambda d: d["r"].update(
        out="where(mu['queue1'] > 0, 1 / max(mu['queue1'], 1e-12), 0)"))
    game_spec({"define": fine})


def test_cycle_of_parameter_references() -> None:
    message = error_of(broken(lambda d: d["params"].update(h="lam * 2", lam="h / 2")))
    assert "parameters refer to each other in a cycle: h -> lam -> h" in message
    assert "give one of them a number" in message


def test_errors_in_a_game_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(broken(lambda d: d["P"]["out"].update(stay={"out": 0.5}))))
    with pytest.raises(SpecError) as info:
        game_spec({"file": str(path)})
    assert info.value.message().startswith(f"{path}:P.out.stay: row sums to 0.5, not 1")


def test_unknown_parameter_override_names_the_spec_key() -> None:
    with pytest.raises(SpecError) as info:
        game_spec({"file": "experiments/games/queueing_per_step.yaml", "params": {"kappa": 1}})
    assert "game.params.kappa: unknown parameter of queueing_data — valid parameters: s1, s2, " \
        "s3, h, R, lam" in info.value.message()


# --------------------------------------------------------------------------------------------
# the expression language is closed
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "__import__('os')", "().__class__", "(1).__class__", "lambda: 1", "[x for x in mu]",
    "f'{mu}'", "open('x')", "mu.__class__", "exec('1')", "eval('1')", "mu[0]", "x[1]",
    "1 if 2", "a = 1", "import os", "mu['a'].real", "{1: 2}", "1;2", "`1`", "\\x41",
    "globals()", "getattr(mu, 'x')", "mu[o]()", "1 < 2 < 3", "max(1)", "clip(1, 2)",
    "'text'", "((((1)", "1e999", "not", "mu[", "",
])
def test_expressions_outside_the_language_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    with pytest.raises(ExpressionError, match="nested"):
        parse("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExpressionError):
        parse("-" * 10000 + "1")
    with pytest.raises(ExpressionError):
        parse("1" + "+1" * 5000)


def test_huge_exponents_are_floats_not_a_hang() -> None:
    node = parse("10 ** 10 ** 10 ** 10")
    value, _ = check(node, np.zeros((1, 1)), 0)
    assert value[0] == np.inf
    message = error_of(broken(lambda d: d["r"].update(out="9 ** 9 ** 9 ** 9")))
    assert "game.define.r.out" in message and "is not finite" in message


def test_expression_semantics_against_plain_python() -> None:
    mu = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    from tmfcli.model.games.expressions import bind, evaluate

    names = {"a": 0, "b": 1, "c": 2}
    cases = {
        "2 + 3 * 4 - 6 / 3": [12.0, 12.0],
        "-2 ** 2": [-4.0, -4.0],
        "2 ** 3 ** 2": [512.0, 512.0],
        "mu['a'] + 2 * mu[c]": [1.2, 1.0],
        "max(mu['a'], mu['b'], 0.25)": [0.3, 1.0],
        "clip(mu['c'], 0.1, 0.4)": [0.4, 0.1],
        "1 if mu['a'] > 0.5 else 2": [2.0, 1.0],
        "where(mu['b'] == 0, 7, 8)": [8.0, 7.0],
        "(mu['a'] < 0.5) and not (mu['b'] >= 1)": [1.0, 0.0],
        "exp(0) + log(1) + sqrt(4) + abs(-1)": [4.0, 4.0],
        "k * t": [6.0, 6.0],
    }
    for text, expected in cases.items():
        node = bind(parse(text), {"k": 2.0}, names, {"c": 2})
        value = np.broadcast_to(evaluate(node, mu, 3), (2,))
        np.testing.assert_allclose(value, expected, err_msg=text)


# --------------------------------------------------------------------------------------------
# property tests: random malformed expressions and tables always give a clean error
# --------------------------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TOKENS = ["mu", "[", "]", "'start'", "'left'", "o", "next", "(", ")", ",", "+", "-", "*", "/",
          "**", "<", "==", "and", "not", "if", "else", "max", "log", "sqrt", "clip", "where",
          "1", "0", "2.5e3", "1e308", "k", "t", "__class__", ".", "lambda", "x", " "]
expression_texts = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join),
    st.text(alphabet="mu[]'()+-*/<=>,.0123456789eo_ kxtlgsqrn", max_size=40))
values = st.one_of(expression_texts, st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-3, 3), st.none(), st.booleans(), st.just("rest"),
                   st.lists(st.integers(), max_size=2), st.dictionaries(
                       st.sampled_from(["start", "left", "right", "up", "*"]),
                       st.one_of(st.floats(-1, 2), expression_texts), max_size=3))
QUICK = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(expression_texts)
def test_random_expressions_parse_evaluate_or_fail_cleanly(text: str) -> None:
    from tmfcli.model.games.expressions import bind, compile_tree

    try:
        node = bind(parse(text), {"k": 2.0}, {"start": 0, "left": 1}, {"o": 0, "next": 1})
    except ExpressionError:
        return
    mu = np.random.default_rng(0).dirichlet(np.ones(2), size=4)
    reference, _ = check(node, mu, 1)  # never raises: domain problems are reported
    with np.errstate(all="ignore"):   # the compiled closures compute the same numbers
        compiled = np.broadcast_to(compile_tree(node)(mu, 1), (4,))
    np.testing.assert_array_equal(compiled, reference)


@QUICK
@given(st.sampled_from([("P", "*"), ("P", "start"), ("r", "left"), ("r", "start"),
                        ("P0", "right"), ("r0", "*"), ("params", "k"), ("mu0", "start"),
                        ("lipschitz", "L_P"), ("observations", 1), ("actions", 0),
                        ("horizon", None), ("name", None)]), values)
def test_random_malformed_tables_give_a_clean_error(where: tuple[str, Any], value: Any) -> None:
    data = copy.deepcopy(raw("left_right"))
    data["params"] = {"k": 1.0}
    table, key = where
    if key is None:
        data[table] = value
    elif isinstance(data.get(table), list):
        data[table][key] = value
    else:
        data.setdefault(table, {})
        if not isinstance(data[table], dict):
            data[table] = {}
        data[table][key] = value
    try:
        game_spec({"define": data}, alpha=0.5, steps=2)
    except TmfError as err:
        assert err.message()


# --------------------------------------------------------------------------------------------
# Python games and plugins
# --------------------------------------------------------------------------------------------
PLUGIN = '''
from dataclasses import dataclass

import numpy as np

from tmfcli.model.games.base import Game, Lipschitz, param, static


@dataclass(frozen=True)
class Hotelling(Game):
    """Two shops on a street; each customer earns -price - crowd at the shop it is in."""

    name = "hotelling"
    summary = "two shops, crowding costs"
    static_dynamics = True
    default_horizon = 3

    crowd: float = param(1.0, "cost per unit of mass at a shop", low=0)

    def build(self) -> None:
        P = np.zeros((2, 2, 2))
        P[:, 0, 0] = P[:, 1, 1] = 1.0
        self._set(n_obs=2, n_act=2, mu0=np.array([1.0, 0.0]), obs_labels=("west", "east"),
                  act_labels=("to_west", "to_east"), _P=P)

    def transition(self, mu, t):
        return static(self._P, mu)

    def reward(self, mu, t):
        return np.repeat((-self.crowd * mu)[..., None], 2, axis=-1)

    def lipschitz(self):
        return Lipschitz(0.0, 0.0)


def make_hotelling(crowd=1.0):
    return Hotelling(crowd=crowd)


def not_a_game():
    return 42
'''


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed only on sys.path: a module and a dist-info with entry points."""
    import importlib

    (tmp_path / "tmf_plugin_demo.py").write_text(PLUGIN)
    info = tmp_path / "tmf_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tmf-plugin-demo\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[tmf.games]\nhotelling = tmf_plugin_demo:Hotelling\n"
        "hotelling_fn = tmf_plugin_demo:make_hotelling\n"
        "broken = tmf_plugin_missing:Game\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_plugin_games_are_listed_and_solvable(plugin_package: Path) -> None:
    from typer.testing import CliRunner

    from tmfcli.cli import app

    listing = CliRunner().invoke(app, ["games"])
    assert listing.exit_code == 0, listing.output
    assert "hotelling  [plugin tmf_plugin_demo:Hotelling]  (O=2, A=2, default horizon 3)" \
        in listing.output
    assert "crowd      1.0" in listing.output
    assert "broken  [plugin tmf_plugin_missing:Game]: cannot be built" in listing.output
    for name in ("hotelling", "hotelling_fn"):
        spec = game_spec({"name": name, "params": {"crowd": 2.0}}, steps=3)
        result = run(setting(spec), spec.build_algorithm(), 300, 1e-10)
        # equilibrium of the one-shot split: equal crowding, half at each shop from step 1 on
        np.testing.assert_allclose(result.evaluation.flow.mu[2], [0.5, 0.5], atol=1e-3)
    with pytest.raises(SpecError) as info:
        game_spec({"name": "hotelling", "params": {"crowd": -1}})
    assert "game.params.crowd: -1.0 is out of range" in info.value.message()
    with pytest.raises(SpecError) as info:
        game_spec({"name": "broken"})
    assert "game.name: plugin game 'broken' (tmf_plugin_missing:Game) failed to load: " \
        "ModuleNotFoundError" in info.value.message()


def test_module_games_by_factory(plugin_package: Path) -> None:
    game = game_spec({"module": "tmf_plugin_demo", "factory": "make_hotelling",
                      "params": {"crowd": 3.0}}).build_game()
    assert game.obs_labels == ("west", "east") and game.reward(np.array([0.5, 0.5]), 0)[0, 0] \
        == -1.5
    cases = {
        ("tmf_plugin_nowhere", "make"): "game.module: cannot import 'tmf_plugin_nowhere'",
        ("tmf_plugin_demo", "nothing"): "game.factory: module 'tmf_plugin_demo' has no "
                                        "'nothing'",
        ("tmf_plugin_demo", "not_a_game"): "game.factory: tmf_plugin_demo:not_a_game returned "
                                           "int, not a Game",
    }
    for (module, factory), message in cases.items():
        with pytest.raises(SpecError) as info:
            game_spec({"module": module, "factory": factory})
        assert message in info.value.message()
    with pytest.raises(SpecError, match="make_hotelling failed: TypeError"):
        game_spec({"module": "tmf_plugin_demo", "factory": "make_hotelling",
                   "params": {"speed": 1}})


# --------------------------------------------------------------------------------------------
# tmf validate
# --------------------------------------------------------------------------------------------
def invoke(*args: str) -> Any:
    from typer.testing import CliRunner

    from tmfcli.cli import app

    return CliRunner().invoke(app, list(args), prog_name="tmf")


def test_validate_reports_a_valid_game() -> None:
    result = invoke("validate", str(ROOT / "experiments" / "hybrid-work.yaml"))
    assert result.exit_code == 0, result.output
    assert "tmf validate: hybrid-work: valid" in result.output
    assert "3.333, 3.333 (analytic)" in result.output  # 1 / road with road = 0.3
    assert "dynamics depend on mu │ yes" in result.output
    assert "solver                │ mirror-descent (docs/solvers.md)" in result.output  # auto


def test_validate_refuses_a_declared_lipschitz_constant_below_a_measured_ratio(
        tmp_path: Path) -> None:
    game = broken(lambda d: d.update(lipschitz={"L_P": "1 / max(s1, s2, s3)", "L_0": 10}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "game": {"define": game},
                                    "horizon": {"steps": 3}}))
    result = invoke("validate", str(spec))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {spec}:game.define.lipschitz.L_P: declares L_P = "
                                    "3.33333 but a sampled ratio reaches")


def test_every_command_validates_the_game_first(tmp_path: Path) -> None:
    game = broken(lambda d: d["P"]["out"].update(stay={"out": 0.5, "queue1": 0.6}))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "game": {"define": game},
                                    "horizon": {"steps": 3},
                                    "population": {"agents": 10, "batch": 2}}))
    for command in ("validate", "solve", "simulate", "bound-check"):
        out = [] if command == "validate" else ["--out", str(tmp_path / command)]
        result = invoke(command, str(spec), *out)
        assert result.exit_code == 1, (command, result.output)
        assert result.output == f"Error: {spec}:game.define.P.out.stay: row sums to 1.1, not " \
            "1, at mu = (out: 1) — make the row a distribution over next observations (e.g. " \
            "write 'rest' for one entry)\n"
        assert not (tmp_path / command).exists()


# --------------------------------------------------------------------------------------------
# labels in every table
# --------------------------------------------------------------------------------------------
def test_policy_files_are_read_back_by_name(tmp_path: Path) -> None:
    import pandas as pd

    from tmfcli.io.policy_files import load_policy, write_policy
    from tmfcli.model.policy import PopulationPolicy

    game = game_spec({"file": "experiments/games/queueing_per_step.yaml"}).build_game()
    labels = (game.obs_labels, game.act_labels)
    rng = np.random.default_rng(5)
    pi = rng.dirichlet(np.ones(4), size=(3, 4))
    write_policy(TabularPolicy(pi), tmp_path / "p", *labels)
    frame = pd.read_csv(tmp_path / "p" / "policy.csv")
    assert list(frame.columns) == ["t", "obs", "obs_label", "action", "action_label", "prob"]
    assert frame.loc[6, "obs_label"] == "queue1" and frame.loc[6, "action_label"] == "join_queue2"
    # the names decide, not the codes: scramble the codes and shuffle the rows
    frame["obs"] = 0
    frame.sample(frac=1.0, random_state=1).to_csv(tmp_path / "p" / "policy.csv", index=False)
    back = load_policy(tmp_path / "p", 4, 4, 3, obs_labels=labels[0], act_labels=labels[1])
    assert isinstance(back, TabularPolicy)
    np.testing.assert_array_equal(back.pi, pi)
    # old files without label columns are read by code
    frame.drop(columns=["obs_label", "action_label"]).to_csv(tmp_path / "p" / "policy.csv",
                                                             index=False)
    with pytest.raises(TmfError):  # the scrambled codes are now all 'out'
        load_policy(tmp_path / "p", 4, 4, 3, obs_labels=labels[0], act_labels=labels[1])
    write_policy(TabularPolicy(pi), tmp_path / "old")
    assert "obs_label" not in pd.read_csv(tmp_path / "old" / "policy.csv").columns
    old = load_policy(tmp_path / "old", 4, 4, 3, obs_labels=labels[0], act_labels=labels[1])
    np.testing.assert_array_equal(old.pi, pi)  # type: ignore[attr-defined]
    pop = PopulationPolicy(theta=rng.normal(size=(3, 4, 4)), W=rng.normal(size=(4, 4, 4)))
    write_policy(pop, tmp_path / "pop", *labels)
    assert "mu_obs_label" in pd.read_csv(tmp_path / "pop" / "mu_weights.csv").columns
    again = load_policy(tmp_path / "pop", 4, 4, 3, obs_labels=labels[0], act_labels=labels[1])
    np.testing.assert_array_equal(again.W, pop.W)  # type: ignore[attr-defined]


def test_a_policy_of_another_game_is_refused_by_its_labels(tmp_path: Path) -> None:
    from tmfcli.io.policy_files import load_policy, write_policy

    hybrid = game_spec({"file": "experiments/games/hybrid_work.yaml"}).build_game()
    queue = game_spec({"file": "experiments/games/queueing_per_step.yaml"}).build_game()
    write_policy(TabularPolicy(np.full((3, 4, 4), 0.25)), tmp_path / "p", hybrid.obs_labels,
                 hybrid.act_labels)
    with pytest.raises(TmfError) as info:
        load_policy(tmp_path / "p", 4, 4, 3, obs_labels=queue.obs_labels,
                    act_labels=queue.act_labels)
    assert info.value.message() == (
        f"{tmp_path / 'p' / 'policy.csv'} is a policy of another game: its observations cafe, "
        "home, office, road are not among this game's (out, queue1, queue2, queue3) — solve "
        "this game first, or use --policy uniform")


def test_solve_and_simulate_tables_carry_labels(tmp_path: Path) -> None:
    import pandas as pd

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "x", "game": {"file": str(GAMES_DIR / "hybrid_work.yaml")},
        "horizon": {"steps": 4}, "population": {"agents": 50, "batch": 5},
        "solver": {"iterations": 50, "restarts": 0}, "simulate": {"replicas": 3}}))
    assert invoke("solve", str(spec), "--out", str(tmp_path / "s")).exit_code == 0
    result = invoke("simulate", str(spec), "--out", str(tmp_path / "m"), "--policy",
                    str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    flow = pd.read_csv(tmp_path / "s" / "flow.csv")
    trajectory = pd.read_csv(tmp_path / "m" / "trajectory.csv")
    for frame in (flow, trajectory):
        assert list(frame.columns[frame.columns.get_loc("obs"):][:2]) == ["obs", "obs_label"]
        assert list(frame["obs_label"][:4]) == ["home", "cafe", "road", "office"]


def test_parameter_ranges_refuse_overrides_outside_them() -> None:
    base = {"file": "experiments/games/hybrid_work.yaml"}
    for params, message in (({"road": 0}, "game.params.road: 0 is out of range — use a value "
                                          "> 0"),
                            ({"seats": "-road"}, "game.params.seats: -0.3 is out of range — "
                                                 "use a value >= 0")):
        with pytest.raises(SpecError) as info:
            game_spec({**base, "params": params})
        assert info.value.message().endswith(message)
    game = game_spec({**base, "params": {"seats": "road / 3"}}).build_game()
    assert game.values["seats"] == pytest.approx(0.1)  # type: ignore[attr-defined]


def test_a_module_game_that_raises_is_a_clean_error(plugin_package: Path) -> None:
    (plugin_package / "tmf_plugin_bad.py").write_text(
        "import numpy as np\n"
        "from tmf_plugin_demo import Hotelling\n\n"
        "class Unbatched(Hotelling):\n"
        "    def reward(self, mu, t):\n"
        "        return np.array([[-mu[0], -mu[0]], [-mu[1], -mu[1]]])  # ignores batch axes\n"
        "\n"
        "class Crashing(Hotelling):\n"
        "    def transition(self, mu, t):\n"
        "        return 1 / 0\n")
    with pytest.raises(SpecError) as info:
        game_spec({"module": "tmf_plugin_bad", "factory": "Unbatched"})
    assert info.value.message().startswith("game hotelling:r: has shape")
    with pytest.raises(SpecError) as info:
        game_spec({"module": "tmf_plugin_bad", "factory": "Crashing"})
    assert info.value.message().startswith("game hotelling:transition: raised "
                                           "ZeroDivisionError: division by zero on a batch of")


def test_spec_mu0_by_observation_name() -> None:
    game = game_spec({"file": "experiments/games/queueing_per_step.yaml",
                      "mu0": {"queue2": 0.25, "out": 0.75}}).build_game()
    np.testing.assert_array_equal(game.mu0, [0.75, 0.0, 0.25, 0.0])
    shipped = game_spec({"name": "queueing_per_step",
                         "mu0": {"queue2": 0.25, "out": 0.75}}).build_game()
    np.testing.assert_array_equal(shipped.mu0, game.mu0)
    with pytest.raises(SpecError) as info:
        game_spec({"name": "queueing_per_step", "mu0": {"queue9": 1.0}})
    assert "game.mu0.queue9: unknown observation — use one of: out, queue1, queue2, queue3" \
        in info.value.message()
    with pytest.raises(SpecError, match="not a distribution"):
        game_spec({"name": "queueing_per_step", "mu0": {"out": float("nan")}})


def test_the_result_hash_covers_the_game_file(tmp_path: Path) -> None:
    from tmfcli.io.results import spec_hash

    path = tmp_path / "g.yaml"
    path.write_text((GAMES_DIR / "left_right.yaml").read_text())
    first = spec_hash(game_spec({"file": str(path)}), "solve")
    assert spec_hash(game_spec({"file": str(path)}), "solve") == first
    path.write_text(path.read_text().replace('right: "-2 * mu[o]"', 'right: "-3 * mu[o]"'))
    assert spec_hash(game_spec({"file": str(path)}), "solve") != first


leaves = st.sampled_from(["1", "0", "2.5", "mu['start']", "mu[o]", "mu[next]", "k", "t"])
valid_expressions = st.recursive(leaves, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "<", ">=", "==", "and", "or"]),
              inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
    st.tuples(st.sampled_from(["exp", "log", "sqrt", "abs"]), inner).map(
        lambda x: f"{x[0]}({x[1]})"),
    st.tuples(st.sampled_from(["min", "max", "where", "clip"]), inner, inner, inner).map(
        lambda x: f"{x[0]}({x[1]}, {x[2]}{'' if x[0] in ('min', 'max') else ', ' + x[3]})"),
    st.tuples(inner, inner, inner).map(lambda x: f"({x[0]} if {x[1]} else {x[2]})"),
    inner.map(lambda x: f"-({x})"), inner.map(lambda x: f"(not {x})")), max_leaves=12)


@QUICK
@given(valid_expressions)
def test_compiled_expressions_equal_the_interpreter(text: str) -> None:
    from tmfcli.model.games.expressions import bind, compile_tree

    node = bind(parse(text), {"k": 2.0}, {"start": 0, "left": 1}, {"o": 0, "next": 1})
    mu = np.random.default_rng(0).dirichlet(np.ones(2), size=5)
    reference, _ = check(node, mu, 3)
    with np.errstate(all="ignore"):
        compiled = np.broadcast_to(compile_tree(node)(mu, 3), (5,))
    np.testing.assert_array_equal(compiled, reference)


def test_set_overrides_reach_data_game_parameters() -> None:
    spec = str(ROOT / "experiments" / "hybrid-work.yaml")
    result = invoke("validate", spec, "--set", "game.params.social=0")
    assert result.exit_code == 0, result.output
    assert "social=0" in result.output and "256/256 pairs" not in result.output
    result = invoke("validate", spec, "--set", "game.params.road=0")
    assert result.exit_code == 1
    assert result.output == "Error: --set game.params.road=0: 0 is out of range — use a value " \
        "> 0\n"  # the override is blamed, not the file


def test_a_data_game_pickles(tmp_path: Path) -> None:
    import pickle

    game = game_spec({"file": "experiments/games/hybrid_work.yaml"}).build_game()
    again = pickle.loads(pickle.dumps(game))
    mu = np.random.default_rng(4).dirichlet(np.ones(4), size=(2, 3))
    for method in ("transition", "idle_transition", "reward", "idle_reward"):
        np.testing.assert_array_equal(getattr(again, method)(mu, 1), getattr(game, method)(mu, 1))
    assert (again.name, again.idle_stays, again.default_horizon) == ("hybrid_work", False, 20)


def test_a_game_file_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\n")
    with pytest.raises(SpecError) as info:
        game_spec({"file": str(path)})
    assert info.value.message().startswith(f"{path}: expands to more than 1000000 YAML nodes")


def test_a_game_file_with_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\nobservations: &a [x, *a]\n")
    with pytest.raises(SpecError) as info:
        game_spec({"file": str(path)})
    assert info.value.message() == (f"{path}: an alias refers to itself (a recursive structure)"
                                    " — write the game without recursive aliases")


@QUICK
@given(st.data())
def test_random_mutations_anywhere_in_a_game_give_a_clean_error(data: Any) -> None:
    game = copy.deepcopy(raw("queueing_per_step"))
    for _ in range(data.draw(st.integers(1, 3))):
        node: Any = game
        while True:  # walk down to a random place of the nested mapping
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = data.draw(st.sampled_from(keys)) if keys else None
            child = node[key] if key is not None else None
            if key is None or not isinstance(child, dict | list) or not child or \
                    data.draw(st.booleans()):
                break
            node = child
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if key is None or action == "add":
            if isinstance(node, dict):
                node[data.draw(st.sampled_from(["out", "queue1", "*", "rest", "x"]))] = \
                    data.draw(values)
        elif action == "delete":
            del node[key]
        else:
            node[key] = data.draw(values)
    try:
        game_spec({"define": game}, alpha=0.5, steps=2)
    except TmfError as err:
        assert err.message()


# --------------------------------------------------------------------------------------------
# the compiled path (a stack machine over the trees) against the numpy evaluation
# --------------------------------------------------------------------------------------------
EVERY_OPERATION = {
    "name": "every_op", "observations": ["a", "b", "c"], "actions": ["x", "y"], "mu0": "a",
    "params": {"k": 0.5},
    "P": {"*": {"x": {"a": "clip(where(mu[o] > 0.3, exp(-mu[o]), log(1 + mu[next])) * k, 0, k)",
                      "b": "min(0.2, sqrt(mu['b']), abs(-0.1)) ** 1 + (0.1 if mu['a'] <= 0.5 "
                           "and not (mu['b'] == 0) or mu['a'] != 1 else 0)",
                      "c": "rest"},
                "y": {"c": "max(mu[o], 0.25, mu['c'] / 2) - (mu['a'] >= 0.9) * 0",
                      "b": "rest"}}},
    "P0": {"a": {"a": "1 - mu['b'] * (mu['c'] < 0.5)", "b": "rest"}, "b": "b", "c": "c"},
    "r": {"*": "-mu[o]"},
}


@pytest.mark.parametrize("name", ["queueing_per_step", "hybrid_work", None])
def test_compiled_kernel_equals_the_numpy_tables(name: str | None) -> None:
    from tmfcli.model.games.data_kernel import fill

    game = game_spec({"define": EVERY_OPERATION} if name is None else
                     {"file": f"experiments/games/{name}.yaml"}).build_game()
    compiled = game.compiled_dynamics()
    assert compiled is not None
    kernel, params = compiled
    O, A = game.n_obs, game.n_act
    rng = np.random.default_rng(9)
    mus = np.concatenate([np.eye(O), rng.dirichlet(np.ones(O), size=50)])
    for mu in mus:
        P, P0 = np.empty(O * A * O), np.empty(O * O)
        kernel(mu, 0, params, P, P0)
        np.testing.assert_allclose(P.reshape(O, A, O), game.transition(mu, 0), rtol=0,
                                   atol=1e-15)
        np.testing.assert_allclose(P0.reshape(O, O), game.idle_transition(mu, 0), rtol=0,
                                   atol=1e-15)
    assert kernel is fill


@pytest.mark.parametrize("name", ["queueing_per_step", "hybrid_work"])
@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_accelerated_evaluation_of_yaml_games_equals_the_reference(name: str,
                                                                   alpha: float) -> None:
    from tmfcli.model.flow import accelerated

    s = setting(game_spec({"file": f"experiments/games/{name}.yaml"}, alpha, steps=40))
    assert accelerated(s.game)
    pi = np.random.default_rng(2).dirichlet(np.ones(s.game.n_act), size=(s.T, s.game.n_obs))
    fast, reference = evaluate(s, pi), evaluate(s, pi, fast=False)
    np.testing.assert_allclose(fast.flow.mu, reference.flow.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.best.Q, reference.best.Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.own.V, reference.own.V, rtol=0, atol=1e-12)
    assert abs(fast.exploitability - reference.exploitability) <= 1e-12


def test_dynamics_that_use_t_take_the_numpy_path() -> None:
    from tmfcli.model.flow import accelerated

    timed: dict[str, Any] = copy.deepcopy(EVERY_OPERATION)
    timed["P0"]["a"] = {"a": "1 / (1 + t)", "b": "rest"}
    game = game_spec({"define": timed}).build_game()
    assert game.compiled_dynamics() is None and not accelerated(game)
    assert not game.time_homogeneous


@QUICK
@given(valid_expressions.filter(lambda text: "t" not in re.findall(r"[a-z_]+", text)))
def test_the_stack_machine_equals_the_interpreter(text: str) -> None:
    from tmfcli.model.games.data import postfix
    from tmfcli.model.games.data_kernel import fill
    from tmfcli.model.games.expressions import bind

    node = bind(parse(text), {"k": 2.0}, {"start": 0, "left": 1}, {"o": 0, "next": 1})
    code: list[float] = []
    depth = postfix(node, code)
    params = np.array([1, 1, 1, len(code), depth, 0.0, 0.0, 0, 0, 0, len(code), *code])
    for mu in np.random.default_rng(0).dirichlet(np.ones(2), size=3):
        out, idle = np.empty(1), np.empty(1)
        fill(mu, 0, params, out, idle)
        reference, _ = check(node, mu[None, :], 0)
        np.testing.assert_allclose(out, reference, rtol=1e-12, atol=0, equal_nan=True)


def test_validate_compares_a_compiled_kernel_with_the_numpy_one() -> None:
    from tmfcli.model.games.checks import check_game

    for name in ("queueing_per_step", "sis"):  # the shipped compiled kernels pass
        check_game(game_spec({"name": name}).build_game(), np.random.default_rng(0))
    game = game_spec({"file": "experiments/games/queueing_per_step.yaml"}).build_game()
    other = game_spec({"file": "experiments/games/queueing_per_step.yaml",
                       "params": {"s3": 0.2}}).build_game()
    object.__setattr__(game, "_program", other._program)  # type: ignore[attr-defined]
    with pytest.raises(SpecError) as info:
        check_game(game, np.random.default_rng(0))
    assert "compiled kernel differs from the numpy one" in info.value.message()
