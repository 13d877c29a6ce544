"""From spec to setting: batch forms, time units, discount per round, overrides."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tmfcli.errors import SpecError
from tmfcli.io import spec as specs
from tmfcli.io import spec_text
from tmfcli.io.resolve import setting
from tmfcli.model.setting import Batch, Setting


def resolve(population: dict[str, Any], horizon: dict[str, int] | None = None,
            discount: float = 1.0) -> Setting:
    return setting(specs.from_dict({"name": "t", "game": {"name": "resource_selection_per_step"},
                                    "horizon": horizon or {"steps": 12},
                                    "population": population, "discount": discount}))


@pytest.mark.parametrize(("batch", "B"), [(10, 10), ("all", 400), ("sqrt", 20),
                                          ({"fraction": 0.1}, 40), ({"fraction": 0.001}, 1)])
def test_batch_forms(batch: Any, B: int) -> None:
    s = resolve({"agents": 400, "batch": batch})
    assert s.batches is not None and set(s.batches.tolist()) == {B}
    np.testing.assert_allclose(s.alpha, B / 400)


@pytest.mark.parametrize(("plain", "kind", "label"), [
    (10, "count", "10"), ("all", "all", "all"), ("sqrt", "sqrt", "sqrt"),
    (0.1, "fraction", "frac0.1"), ([1, 5], "schedule", "sched(1,5)")])
def test_a_batch_is_one_tagged_value_written_back_as_the_spec_writes_it(
        plain: Any, kind: str, label: str) -> None:
    spec = specs.from_dict({"name": "t", "game": {"name": "resource_selection"},
                            "horizon": {"steps": 4},
                            "population": {"agents": 50, "batch": plain}})
    batch = spec.population.batch
    assert batch is not None and (batch.kind, batch.label) == (kind, label)
    assert Batch.of(plain) == batch and batch.plain == plain
    assert spec.to_dict()["population"]["batch"] == plain  # the manifest's form
    assert specs.from_dict(spec.to_dict()) == spec  # and read back as it stands


def test_batch_sizes_resolve_each_form_once() -> None:
    N = 1000
    assert Batch("all").sizes(N) == (1000,)
    assert Batch("sqrt").sizes(N) == (32,)  # sqrt(1000) = 31.6
    assert Batch("sqrt").sizes(2) == (1,)  # sqrt(2) = 1.41
    assert Batch("fraction", 0.1).sizes(N) == (100,)
    assert Batch("fraction", 1e-6).sizes(N) == (1,)  # at least one agent acts
    assert Batch("schedule", (1, 5)).sizes(N) == (1, 5)
    with pytest.raises(ValueError):
        Batch.of("half")


def test_alpha_alone_and_fraction_alone_define_the_mean_field() -> None:
    np.testing.assert_allclose(resolve({"alpha": 0.25}).alpha, 0.25)
    np.testing.assert_allclose(resolve({"batch": {"fraction": 0.2}}).alpha, 0.2)
    np.testing.assert_allclose(resolve({}).alpha, 1.0)


def test_schedule_repeats_cyclically() -> None:
    s = resolve({"agents": 10, "batch": [1, 5, 10]}, {"steps": 7})
    assert s.batches is not None
    assert s.batches.tolist() == [1, 5, 10, 1, 5, 10, 1]
    np.testing.assert_allclose(s.alpha, s.batches / 10)


@pytest.mark.parametrize(("agents", "batch", "steps"), [(100, 100, 3), (100, 10, 30),
                                                        (100, 1, 300), (100, 30, 10)])
def test_rounds_give_ceil_h_n_over_b_steps_and_per_round_discount(agents: int, batch: int,
                                                                   steps: int) -> None:
    s = resolve({"agents": agents, "batch": batch}, {"rounds": 3}, discount=0.9)
    assert s.T == steps == math.ceil(3 * agents / batch)
    assert s.gamma == pytest.approx(0.9 ** (batch / agents))
    # so the discount over one round of N/B steps is the per-round discount
    assert s.gamma ** (agents / batch) == pytest.approx(0.9)


def test_rounds_with_alpha_only() -> None:
    s = resolve({"alpha": 0.1}, {"rounds": 4})
    assert s.T == 40


def test_rounds_reject_a_schedule() -> None:
    with pytest.raises(SpecError, match="rounds need a constant batch"):
        resolve({"agents": 10, "batch": [1, 2]}, {"rounds": 2})


def test_overrides_create_nested_keys_and_parse_yaml() -> None:
    data = spec_text.apply_overrides({"name": "x", "game": {"name": "sis"}},
                                 ["game.params.infection=0.5", "population.batch=sqrt",
                                  "population.agents=100", "bound_check.agents=[10, 20]"], "s")
    spec = specs.from_dict(data)
    assert spec.game.params == {"infection": 0.5}
    assert spec.population.batch == Batch("sqrt") and spec.bound_check.agents == (10, 20)
    with pytest.raises(SpecError, match="override has no '='"):
        spec_text.apply_overrides({}, ["population.batch"], "s")
    with pytest.raises(SpecError, match="is not a mapping"):
        spec_text.apply_overrides({"name": "x"}, ["name.first=1"], "s")


def test_missing_horizon_without_game_default() -> None:
    spec = specs.from_dict({"name": "x", "game": {"name": "beach_bar"}})
    with pytest.raises(SpecError, match="beach_bar has no default horizon"):
        setting(spec)
    assert setting(specs.from_dict({"name": "x", "game": {"name": "sis"}})).T == 50


def test_control_characters_are_one_spec_error_not_a_reader_traceback() -> None:
    with pytest.raises(SpecError, match="control characters"):
        spec_text.parse_yaml("name: x\nseed: \x82\n", "", "s.yaml")
