"""Experiment specs: YAML files validated into frozen dataclasses when loaded.

Every key is documented in ``docs/spec.md``. A problem is reported as a ``SpecError`` naming the
file and the dotted key, what is wrong and how to fix it. ``--set key.path=value`` overrides are
applied to the raw mapping before validation, so they are checked exactly like the file.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tmfcli.errors import SpecError
from tmfcli.io import addresses, game_files, user_files
from tmfcli.io.yaml_size import (
    DuplicateKey,
    SelfReference,
    expanded_size,
    show_integer,
    strict,
    too_large,
)
from tmfcli.learning.train import ALGORITHMS as LEARNERS
from tmfcli.learning.train import TrainConfig
from tmfcli.model.games import GAMES, Game, available_games, from_module, make_game
from tmfcli.model.games.base import Array
from tmfcli.model.games.checks import quick_check
from tmfcli.model.games.data import DataGame, TimedDataGame
from tmfcli.model.games.timed import TimedGame
from tmfcli.model.params import build
from tmfcli.model.setting import Batch, Setting, batch_label, batch_size
from tmfcli.simulation.counts import MAX_AGENTS
from tmfcli.solvers.algorithms import ALGORITHMS, AUTO, choose

ACTIVATIONS = ("subset", "bernoulli")
MAX_COUNT = 10**12  # steps, rounds, iterations, restarts, replicas: what a size check can see
INITS = ("iid", "rounded")


@dataclass(frozen=True)
class GameSpec:
    """The ``game:`` block: a registered or plugin game by ``name``, a game file (``file``,
    relative to the spec; its content is kept in ``define`` so that the result hash covers
    it), an inline ``define``, or a Python ``module`` with its ``factory`` (docs/games.md)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    mu0: tuple[float, ...] | dict[str, float] | None = None  # a list, or by observation name
    file: str | None = None
    define: dict[str, Any] | None = None
    module: str | None = None
    factory: str | None = None


@dataclass(frozen=True)
class Horizon:
    """Horizon in steps, or in rounds (H rounds = ceil(H / alpha) steps)."""

    steps: int | None = None
    rounds: int | None = None


@dataclass(frozen=True)
class Clock:
    """The duration dt of a step in rounds, for timed games with a horizon in steps (MODEL.md
    section 9; in rounds a step lasts B / N rounds)."""

    dt: float = 1.0


@dataclass(frozen=True)
class Population:
    """N agents of which B act per step; ``batch`` as float means a fraction of N."""

    agents: int | None = None
    batch: Batch | None = None
    alpha: float | None = None
    activation: str = "subset"
    init: str = "iid"


@dataclass(frozen=True)
class SolverSpec:
    algorithm: str = AUTO  # ``from_dict`` resolves auto to the solver it picks (``choose``)
    iterations: int = 1000
    tolerance: float = 1e-8
    restarts: int = 3
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulateSpec:
    replicas: int = 100
    every: int = 1  # trajectory.csv keeps steps 0, k, 2k, ... and the last
    epsilon: bool = True  # estimate the N-agent epsilon (about as costly as the simulation)


@dataclass(frozen=True)
class BoundCheckSpec:
    agents: tuple[int, ...] = (100, 300, 1000, 3000, 10000)
    batch: tuple[Batch, ...] = (1, "sqrt", "all")
    replicas: int = 200


# --- train block (tmf train, docs/train.md) -------------------------------------------------
TRAIN_ALGORITHMS = LEARNERS  # the names tmfcli.learning.train knows
OPTIMIZERS = ("adam", "sgd")
TIME_INDICES = ("auto", "step", "round", "none")


_LEARNER = TrainConfig()


@dataclass(frozen=True)
class TrainSpec:
    """``tmf train`` settings; ``seed`` None means the spec's seed (docs/spec.md, docs/train.md).

    ``time_index`` "auto" is "round" for a horizon in rounds and "step" for one in steps.
    ``yardstick``: tmf-pg also runs tmf-pg-exact, for the summary's side-by-side row.
    """

    # the learner's own defaults (``TrainConfig``), written once
    algorithm: str = _LEARNER.algorithm
    iterations: int = _LEARNER.iterations
    inner_steps: int = _LEARNER.inner_steps
    rollouts: int = _LEARNER.rollouts
    lr: float = _LEARNER.lr
    lr_decay: float = _LEARNER.lr_decay
    optimizer: str = _LEARNER.optimizer
    entropy_bonus: float = _LEARNER.entropy_bonus
    time_index: str = "auto"
    temperature: float = _LEARNER.temperature
    yardstick: bool = True
    seed: int | None = None


def _train(reader: _Reader, rounds: bool) -> TrainSpec:
    """Read the ``train`` block; a round time index needs a horizon in rounds."""
    d = TrainSpec()
    if reader.has("per_round"):
        raise reader.error("per_round", "is gone: it rescaled gradients to hide that a per-step "
                           "game pays idle agents N / B times per round; resource_selection "
                           "and queueing are now timed games, whose return over H rounds is "
                           "the same quantity at every B", "remove train.per_round "
                           "(docs/train.md, 'Comparing B')")
    spec = TrainSpec(
        algorithm=reader.choice("algorithm", d.algorithm, TRAIN_ALGORITHMS),
        iterations=reader.integer("iterations", d.iterations, low=1) or 1,
        inner_steps=reader.integer("inner_steps", d.inner_steps, low=1) or 1,
        rollouts=reader.integer("rollouts", d.rollouts, low=1) or 1,
        lr=reader.number("lr", d.lr, low=0.0, low_open=True) or d.lr,
        lr_decay=reader.number("lr_decay", d.lr_decay, low=0.0) or 0.0,
        optimizer=reader.choice("optimizer", d.optimizer, OPTIMIZERS),
        entropy_bonus=reader.number("entropy_bonus", d.entropy_bonus, low=0.0) or 0.0,
        time_index=reader.choice("time_index", d.time_index, TIME_INDICES),
        temperature=reader.number("temperature", d.temperature, low=0.0,
                                  low_open=True) or d.temperature,
        yardstick=reader.take("yardstick", d.yardstick),
        seed=reader.integer("seed", None, low=0),
    )
    if not isinstance(spec.yardstick, bool):
        raise reader.error("yardstick", f"expected true or false, got {spec.yardstick!r}",
                           "write true or false")
    reader.done()
    if spec.time_index == "round" and not rounds:
        raise reader.error("time_index", "a time index per round needs a horizon in rounds",
                           "give horizon: {rounds: H}, or use time_index: step or none")
    return spec


@dataclass(frozen=True)
class SweepSpec:
    """``sweep:``: dotted keys with lists of values (``axes``) and explicit ``cases`` (each a
    mapping of dotted keys to values); the cells are their cross product
    (``tmfcli.commands.sweep``)."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    cases: tuple[tuple[tuple[str, Any], ...], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.axes or self.cases)


@dataclass(frozen=True)
class ExecutorSpec:
    """``executor:``: where the cells of a sweep run (None: on this machine)."""

    scheduler: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    game: GameSpec
    horizon: Horizon
    population: Population
    discount: float = 1.0
    entropy: float = 0.0
    clock: Clock = field(default_factory=Clock)
    solver: SolverSpec = field(default_factory=SolverSpec)
    simulate: SimulateSpec = field(default_factory=SimulateSpec)
    bound_check: BoundCheckSpec = field(default_factory=BoundCheckSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    seed: int = 0
    source: str = ""
    sweep: SweepSpec = field(default_factory=SweepSpec)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    # the validated mapping (overrides applied, without sweep/executor): sweeps expand from it
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def build_game(self) -> Game:
        """The game with its validated parameters and initial distribution."""
        game = _build_game(self.game, self.source)
        if self.game.mu0 is None:
            return game
        if isinstance(self.game.mu0, dict):  # by name
            unknown = [k for k in self.game.mu0 if k not in game.obs_labels]
            if unknown:
                raise SpecError(f"game.mu0.{unknown[0]}", "unknown observation",
                                f"use one of: {', '.join(game.obs_labels)}", self.source)
            return game.with_mu0(np.array([self.game.mu0.get(k, 0.0)
                                           for k in game.obs_labels]))
        mu0 = np.asarray(self.game.mu0, dtype=float)
        if mu0.shape != (game.n_obs,):
            raise SpecError("game.mu0", f"has {mu0.size} entries but {self.game.name} has "
                            f"{game.n_obs} observations",
                            f"give {game.n_obs} probabilities, one per observation", self.source)
        return game.with_mu0(mu0)

    def build_algorithm(self) -> Any:
        """The solver algorithm with its validated parameters."""
        name = self.solver.algorithm
        return build(ALGORITHMS[name], self.solver.params, "solver.params", self.source, name)

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec (defaults filled in) as plain YAML-able data."""
        data = _plain(asdict(self))
        for key in ("source", "sweep", "executor", "raw"):
            data.pop(key)
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
class _Reader:
    """Pops keys from one mapping of the spec, with errors that name the dotted key."""

    def __init__(self, data: Any, path: str, source: str) -> None:
        if not isinstance(data, dict):
            raise SpecError(path, f"expected a mapping, got {_show(data)}",
                            "write key: value pairs here", source)
        self.data = dict(data)
        self.path = path
        self.source = source
        self.known: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str, fix: str) -> SpecError:
        return SpecError(self.key(name), problem, fix, self.source)

    def take(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` (``default`` when absent). An explicit null is an error where
        the default is a value (an empty value never silently means "use the default"); for
        an optional key (default None) null is its default, as a manifest's resolved spec
        writes it."""
        self.known.append(name)
        if name in self.data and self.data[name] is None and default is not None:
            raise self.error(name, "is empty (null)",
                             "give a value, or remove the key to use the default")
        return self.data.pop(name, default)

    def has(self, name: str) -> bool:
        return name in self.data

    def sub(self, name: str) -> _Reader:
        return _Reader(self.take(name, {}), self.key(name), self.source)

    def integer(self, name: str, default: int | None, low: int | None = None,
                high: int | None = None) -> int | None:
        value = self.take(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                value = int(value)
            else:
                raise self.error(name, f"expected a whole number, got {_show(value)}",
                                 "write an integer, e.g. 10")
        if low is not None and value < low:
            raise self.error(name, f"{value} is too small", f"use an integer >= {low}")
        if high is not None and value > high:
            raise self.error(name, f"{_show(value)} is too large", f"use an integer <= {high}")
        return value

    def number(self, name: str, default: float | None, low: float | None = None,
               high: float | None = None, low_open: bool = False) -> float | None:
        value = self.take(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"expected a number, got {_show(value)}",
                             "write a number, e.g. 0.5")
        value = float(value)
        bad_low = low is not None and (value <= low if low_open else value < low)
        if bad_low or (high is not None and value > high) or not math.isfinite(value):
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"<= {high:g}"
            rng = " and ".join(s for s in (lo, hi) if s) or "finite"
            raise self.error(name, f"{value:g} is out of range", f"use a number {rng}")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.take(name, default)
        if value not in options:
            raise self.error(name, f"unknown value {_show(value)}",
                             f"use one of: {', '.join(options)}")
        return str(value)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.take(name, {})
        if not isinstance(value, dict):
            raise self.error(name, f"expected a mapping, got {_show(value)}",
                             "write key: value pairs, e.g. {K: 3}")
        return dict(value)

    def done(self) -> None:
        """Fail on the first key nobody asked for."""
        for name in self.data:
            close = difflib.get_close_matches(str(name), self.known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"valid keys here: {', '.join(self.known)}"
            raise self.error(str(name), "unknown key", hint)


def _show(value: Any) -> str:
    """A user value for an error message: short, and never the whole of a big structure."""
    if isinstance(value, dict | list):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_batch(value: Any, key: str, source: str) -> Batch:
    """Validate one batch form: int >= 1, "all", "sqrt", {fraction: f} (or f, a float in
    (0, 1], as resolved specs write it) or a list of ints."""
    fix = 'use an integer >= 1, "all", "sqrt", {fraction: 0.1} or a list of integers'
    if isinstance(value, bool):
        raise SpecError(key, f"invalid batch {_show(value)}", fix, source)
    if isinstance(value, int):
        if value < 1:
            raise SpecError(key, f"batch {value} is less than 1", fix, source)
        return value
    if isinstance(value, str):
        if value not in ("all", "sqrt"):
            raise SpecError(key, f"invalid batch {_show(value)}", fix, source)
        return value
    if isinstance(value, float):  # {fraction: f} as a resolved spec (a manifest) writes it
        if not 0.0 < value <= 1.0:
            raise SpecError(key, f"fraction {value:g} is not in (0, 1]", fix, source)
        return value
    if isinstance(value, dict):
        reader = _Reader(value, key, source)
        fraction = reader.number("fraction", None, low=0.0, high=1.0, low_open=True)
        reader.done()
        if fraction is None:
            raise SpecError(key, "a batch mapping needs a fraction", fix, source)
        return fraction
    if isinstance(value, list) and value:
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise SpecError(f"{key}[{i}]", f"invalid batch {_show(item)} in schedule", fix,
                                source)
        return tuple(value)
    raise SpecError(key, f"invalid batch {_show(value)}", fix, source)


def _population(reader: _Reader) -> Population:
    agents = reader.integer("agents", None, low=1, high=MAX_AGENTS - 1)
    raw_batch = reader.take("batch")
    alpha = reader.number("alpha", None, low=0.0, high=1.0, low_open=True)
    activation = reader.choice("activation", "subset", ACTIVATIONS)
    init = reader.choice("init", "iid", INITS)
    reader.done()
    batch = None if raw_batch is None else parse_batch(raw_batch, reader.key("batch"),
                                                      reader.source)
    if alpha is not None and (batch is not None or agents is not None):
        raise reader.error("alpha", "alpha is given together with agents/batch",
                           "give either alpha alone (mean field only) or agents and batch")
    if batch is not None and not isinstance(batch, float) and agents is None:
        raise reader.error("agents", "missing (needed to read the batch)",
                           "add population.agents, or give alpha or batch: {fraction: f}")
    if agents is not None and batch is not None:
        sizes = batch_size(batch, agents)
        for b in sizes if isinstance(sizes, tuple) else (sizes,):
            if b > agents:
                raise reader.error("batch", f"batch {b} is larger than agents ({agents})",
                                   f"use a batch between 1 and {agents}")
    return Population(agents=agents, batch=batch, alpha=alpha, activation=activation,
                      init=init)


def from_dict(data: Any, source: str = "") -> Spec:
    """Validate a raw mapping (a parsed YAML file with overrides applied) into a Spec."""
    huge = too_large(data)
    if huge is not None:  # float() of it would raise OverflowError wherever a number is read
        raise SpecError(huge[0], f"the integer {show_integer(huge[1])} is too large for a "
                        "number", "write a number below 1e308 (or a float such as 1e300)",
                        source)
    top = _Reader(data, "", source)
    name = top.take("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise top.error("name", f"missing or invalid name {_show(name)}",
                        "give a short name of letters, digits, '-', '_' or '.'")

    g = top.sub("game")
    given = [k for k in ("name", "file", "define", "module") if g.data.get(k) is not None]
    # a resolved spec (a manifest's) records the name beside define or module and the file a
    # definition was read from: records of the one form, checked below, not forms of their own
    forms = [k for k in given if not ((k in ("name", "file") and "define" in given)
                                     or (k == "name" and "module" in given))]
    recorded_name = g.data.get("name") if len(forms) == 1 and forms != ["name"] else None
    if len(forms) != 1:
        raise g.error("name" if not forms else forms[1],
                      "give exactly one of name, file, define or module",
                      "name a game of 'tmf games', or give file: games/my_game.yaml, an "
                      "inline define: {...}, or module: + factory: (docs/games.md)")
    game_file = g.take("file")
    define = g.take("define")
    module = g.take("module")
    factory = g.take("factory")
    if factory is not None and module is None:
        raise g.error("factory", "a factory needs its module",
                      "add module: mypkg.games (docs/games.md)")
    game_name = g.take("name")
    from_file = game_file is not None and define is None
    if from_file:
        if not isinstance(game_file, str) or not game_file:
            raise g.error("file", f"expected a path, got {_show(game_file)}",
                          "write file: games/my_game.yaml (relative to the spec)")
        define = game_files.read(_relative(game_file, source), source)
    if define is not None:
        if not isinstance(define, dict):
            raise g.error("define", f"expected a mapping, got {_show(define)}",
                          "write the game's keys under define: (docs/games.md)")
        game_name = define.get("name")
        if not isinstance(game_name, str):
            raise SpecError(("" if from_file else "game.define.") + "name",
                            "missing", "give the game a name",
                            str(_relative(str(game_file), source)) if from_file else source)
    elif module is not None:
        if not isinstance(module, str) or not isinstance(factory, str):
            raise g.error("factory" if isinstance(module, str) else "module",
                          "a Python game needs module and factory names",
                          "write module: mypkg.games and factory: make_game")
        game_name = f"{module}:{factory}"
    if recorded_name is not None and recorded_name != game_name:
        raise g.error("name", f"{_show(recorded_name)} is not the name of the game defined "
                      f"here ({game_name!r})", "remove game.name, or make it match")
    if define is None and module is None and (not isinstance(game_name, str) or not game_name):
        raise g.error("name", f"expected the name of a game, got {_show(game_name)}",
                      f"use one of: {', '.join(available_games())}")
    if define is None and module is None and game_name not in GAMES and \
            game_name not in available_games():  # plugins: slower
        raise g.error("name", f"unknown game {_show(game_name)}",
                      f"use one of: {', '.join(available_games())}")
    params = g.mapping("params")
    mu0_raw = g.take("mu0")
    g.done()
    mu0: tuple[float, ...] | dict[str, float] | None = None
    if mu0_raw is not None:
        values = list(mu0_raw.values()) if isinstance(mu0_raw, dict) else mu0_raw
        if not isinstance(values, list) or not values or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise g.error("mu0", "expected a list of probabilities, or a mapping "
                          "observation: probability",
                          "write mu0 as a YAML list, e.g. [0.5, 0.5], or {out: 1}")
        mu0 = {str(k): float(v) for k, v in mu0_raw.items()} if isinstance(mu0_raw, dict) \
            else tuple(float(v) for v in values)
        if not all(math.isfinite(v) for v in values) or min(values) < 0 or \
                abs(sum(values) - 1.0) > 1e-9:
            raise g.error("mu0", f"is not a distribution (entries sum to {sum(values):.6g}, "
                          f"smallest {min(values):.6g})",
                          "give non-negative entries that sum to 1")
    game_spec = GameSpec(name=game_name, params=params, mu0=mu0, file=game_file, define=define,
                         module=module, factory=factory)

    h = top.sub("horizon")
    steps = h.integer("steps", None, low=1, high=MAX_COUNT)
    rounds = h.integer("rounds", None, low=1, high=MAX_COUNT)
    h.done()
    if steps is not None and rounds is not None:
        raise h.error("rounds", "both steps and rounds are given", "keep one of them")
    horizon = Horizon(steps=steps, rounds=rounds)

    discount = top.number("discount", 1.0, low=0.0, high=1.0, low_open=True)
    entropy = top.number("entropy", 0.0, low=0.0)
    population = _population(top.sub("population"))
    c = top.sub("clock")
    clock = Clock(dt=c.number("dt", 1.0, low=0.0, low_open=True) or 1.0)
    c.done()
    if rounds is not None and clock.dt != 1.0:
        raise top.error("clock.dt", "a horizon in rounds sets the duration of a step "
                        "(B / N rounds)", "remove clock.dt, or give the horizon in steps")
    if rounds is not None and isinstance(population.batch, tuple):
        raise top.error("horizon.rounds", "rounds need a constant batch, not a schedule",
                        "give the horizon in steps, or a single batch")

    s = top.sub("solver")
    solver = SolverSpec(
        algorithm=s.choice("algorithm", AUTO, (AUTO, *ALGORITHMS)),
        iterations=s.integer("iterations", 1000, low=1, high=MAX_COUNT) or 1000,
        tolerance=s.number("tolerance", 1e-8, low=0.0) or 0.0,
        restarts=s.integer("restarts", 3, low=0, high=MAX_COUNT) or 0,
        params=s.mapping("params"),
    )
    s.done()

    sim = top.sub("simulate")
    epsilon = sim.take("epsilon", True)
    if not isinstance(epsilon, bool):
        raise sim.error("epsilon", f"expected true or false, got {_show(epsilon)}",
                        "write true (estimate eps_N) or false (skip it)")
    simulate = SimulateSpec(replicas=sim.integer("replicas", 100, low=1, high=MAX_COUNT) or 1,
                            every=sim.integer("every", 1, low=1, high=MAX_COUNT) or 1,
                            epsilon=epsilon)
    sim.done()

    b = top.sub("bound_check")
    agents_raw = b.take("agents", list(BoundCheckSpec.agents))
    if not isinstance(agents_raw, list) or not agents_raw:
        raise b.error("agents", "expected a non-empty list of agent counts",
                      "write e.g. [100, 1000, 10000]")
    for i, n in enumerate(agents_raw):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise b.error(f"agents[{i}]", f"invalid number of agents {_show(n)}",
                          "use integers >= 1")
        if n >= MAX_AGENTS:
            raise b.error(f"agents[{i}]", f"{n} agents is beyond the exact sampler",
                          f"use at most {MAX_AGENTS - 1} agents")
    batch_raw = b.take("batch", list(BoundCheckSpec.batch))
    if not isinstance(batch_raw, list) or not batch_raw:
        raise b.error("batch", "expected a non-empty list of batch forms (regimes)",
                      'write e.g. [1, sqrt, all]')
    if len(set(agents_raw)) < 2:
        raise b.error("agents", "needs at least two different agent counts to fit a slope",
                      "write e.g. [100, 1000, 10000]")
    for i, n in enumerate(agents_raw):
        if n in agents_raw[:i]:
            raise b.error(f"agents[{i}]", f"{n} agents are listed twice",
                          "list each number of agents once")
    regimes = tuple(parse_batch(v, b.key(f"batch[{i}]"), source)
                    for i, v in enumerate(batch_raw))
    for i, regime in enumerate(regimes):
        if batch_label(regime) in [batch_label(r) for r in regimes[:i]]:
            raise b.error(f"batch[{i}]", f"regime {batch_label(regime)} is listed twice",
                          "list each regime once")
    for i, regime in enumerate(regimes):
        for n in agents_raw:
            sizes = batch_size(regime, n)
            if max(sizes if isinstance(sizes, tuple) else (sizes,)) > n:
                raise b.error(f"batch[{i}]", f"batch {batch_label(regime)} is larger than "
                              f"{n} agents", f"use batches of at most {min(agents_raw)} or "
                              "a relative form (sqrt, all, fraction)")
    bound_check = BoundCheckSpec(agents=tuple(agents_raw), batch=regimes,
                                 replicas=b.integer("replicas", 200, low=2, high=MAX_COUNT) or 2)
    b.done()

    train = _train(top.sub("train"), rounds is not None)
    seed = top.integer("seed", 0, low=0) or 0
    sweep = _sweep(top.take("sweep", {}), source)  # sweep: null is an error, as sweep: {}
    e = top.sub("executor")
    scheduler = e.take("scheduler")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise e.error("scheduler", f"expected an address, got {_show(scheduler)}",
                      "write e.g. tcp://10.0.0.5:8786")
    if scheduler is not None:
        try:
            addresses.parse(scheduler)
        except addresses.AddressError as error:
            raise e.error("scheduler", f"{_show(scheduler)} {error}",
                          f"write protocol://host:port, e.g. {addresses.EXAMPLE}") from None
    e.done()
    top.done()
    raw = {k: v for k, v in data.items() if k not in ("sweep", "executor")}
    spec = Spec(name=name, game=game_spec, horizon=horizon, population=population,
                discount=discount or 1.0, entropy=entropy or 0.0, clock=clock, solver=solver,
                simulate=simulate, bound_check=bound_check, train=train, seed=seed,
                source=source, sweep=sweep, executor=ExecutorSpec(scheduler=scheduler),
                raw=copy.deepcopy(raw))
    from tmfcli.io import budget

    budget.check_game(game_spec, source)  # before any array of the game exists
    try:
        game = spec.build_game()
        quick_check(game)  # validates the game now
        if clock.dt != 1.0 and not isinstance(game, TimedGame):
            raise top.error("clock.dt", f"{game.name} is not a timed game: its steps have no "
                            "duration", "remove clock.dt (it applies to timed games, "
                            "docs/games.md)")
    except MemoryError:
        raise SpecError("game.params", "the game is too large to build in memory",
                        "use a smaller game", source) from None
    if solver.algorithm == AUTO:
        chosen = choose(game, spec.entropy)
        if solver.params:
            raise SpecError("solver.params", "solver parameters belong to a named solver, and "
                            "solver.algorithm is auto", f"name it: solver.algorithm: {chosen} "
                            "(what auto picks for this spec)", source)
        spec = replace(spec, solver=replace(solver, algorithm=chosen))
    spec.build_algorithm()  # validates the solver parameters now
    return spec


def _relative(path: str, source: str) -> Path:
    """A path of the spec, relative to the spec's directory."""
    given = Path(path)
    return given if given.is_absolute() or not source else Path(source).parent / given


def _build_game(g: GameSpec, source: str) -> Game:
    """The game of a ``game:`` block (without mu0), parameters validated."""
    if g.define is not None:
        where = str(_relative(g.file, source)) if g.file is not None else source
        definition = game_files.definition(g.define, where,
                                           "" if g.file is not None else "game.define")
        kind = TimedDataGame if definition.timed else DataGame
        return kind(definition=definition, overrides=tuple(g.params.items()),
                    overrides_source=source)
    if g.module is not None:
        return from_module(g.module, g.factory or "", g.params, source)
    return make_game(g.name, g.params, source)


UNSWEPT = ("name", "sweep", "executor")


def _sweep(value: Any, source: str) -> SweepSpec:
    """Read ``sweep:`` (its shape only; each cell is validated as a spec when it expands)."""
    if value is None:
        return SweepSpec()
    reader = _Reader(value, "sweep", source)
    axes: list[tuple[str, tuple[Any, ...]]] = []
    cases: list[tuple[tuple[str, Any], ...]] = []
    for key in list(reader.data):
        values = reader.take(key)
        if key == "cases":
            if not isinstance(values, list) or not values:
                raise reader.error("cases", "expected a non-empty list of cases",
                                   "write cases: [{population.batch: 1, seed: 0}, ...]")
            for i, case in enumerate(values):
                if not isinstance(case, dict) or not case:
                    raise reader.error(f"cases[{i}]", f"expected a mapping, got {_show(case)}",
                                       "write each case as {dotted.key: value, ...}")
                for k in case:
                    sweep_key(str(k), f"sweep.cases[{i}]", source)
                cases.append(tuple((str(k), v) for k, v in case.items()))
            continue
        sweep_key(str(key), "sweep", source)
        if not isinstance(values, list) or not values:
            raise reader.error(str(key), f"expected a non-empty list of values, got "
                               f"{_show(values) if values != [] else 'an empty list'}",
                               "write e.g. [1, 10, 100]")
        axes.append((str(key), tuple(values)))
    return SweepSpec(axes=tuple(axes), cases=tuple(cases))


def sweep_key(key: str, where: str, source: str) -> None:
    """A swept key is a dotted path to a spec key other than name, sweep and executor."""
    parts = key.split(".")
    if not all(parts) or parts[0] in UNSWEPT:
        raise SpecError(f"{where}.{key}" if where else key, "cannot be swept",
                        "sweep a dotted key of the spec, e.g. population.batch (not name, "
                        "sweep or executor)", source)


def set_key(data: dict[str, Any], key: str, value: Any, source: str = "--set") -> None:
    """Set the dotted ``key`` of a raw spec mapping to ``value``, creating mappings on the way."""
    keys = key.strip().split(".")
    if not all(keys):
        raise SpecError(key, "empty key in override", "write --set key.path=value", source)
    node = data
    for i, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(".".join(keys[: i + 1]), "is not a mapping",
                            "override a key that holds key: value pairs", source)
        node = child
    node[keys[-1]] = copy.deepcopy(value)


MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; more is not a spec
MAX_DEPTH = 32            # nesting levels of a YAML document
MAX_NODES = 100_000       # YAML nodes after alias expansion (a "billion laughs" has 10^9)


class _Loader(strict(yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader, refusing nesting beyond ``MAX_DEPTH`` while composing (no
    RecursionError) and documents that expand to more than ``MAX_NODES`` nodes through aliases,
    before anything is constructed (no alias bomb is ever expanded); duplicate keys are
    refused and 1e-9 is a number (``yaml_size.strict``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _YamlLimit(f"nested deeper than {MAX_DEPTH} levels",
                                 self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _YamlLimit(Exception):
    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


def parse_yaml(text: str, where: str, source: str) -> Any:
    """Parse one YAML document safely and within limits; problems are ``SpecError`` at
    ``where`` (a line number is added when known)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            if expanded_size(node, MAX_NODES) > MAX_NODES:
                raise _YamlLimit(f"expands to more than {MAX_NODES} values through aliases")
        except SelfReference as err:
            raise _YamlLimit(str(err)) from None
        return loader.construct_document(node)
    except DuplicateKey as err:
        raise SpecError(":".join(p for p in (where, f"line {err.second}") if p), err.problem,
                        "keep one of them (a YAML mapping holds each key once)",
                        source) from None
    except _YamlLimit as err:
        line = f"line {err.mark.line + 1}" if err.mark is not None else ""
        raise SpecError(":".join(p for p in (where, line) if p), err.problem,
                        "write the values out plainly (no deep nesting or alias chains)",
                        source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise SpecError(":".join(p for p in (where, line) if p), "not valid YAML",
                        "fix the syntax at that line" if line else
                        "quote strings and write lists as [a, b]", source) from None
    finally:
        loader.dispose()


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw spec mapping.

    Errors name the override (``--set key.path=value``), not the spec file.
    """
    for item in overrides:
        where = _override(item)
        if "=" not in item:
            raise SpecError("", "override has no '='", "write --set key.path=value", where)
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        if not all(keys):
            raise SpecError("", "empty key in override", "write --set key.path=value", where)
        value = parse_yaml(text, "", where)
        if value is None:
            raise SpecError("", "the value is empty",
                            "give a value after '=', or leave the key out to use its default",
                            where)
        try:
            set_key(data, path, value, where)
        except SpecError as error:  # blame the override, not the spec file
            raise SpecError("", f"{error.key} {error.problem}", error.fix, where) from None
    return data


def _override(item: str) -> str:
    """How an override is named in messages: ``--set key=value``, a long value cut short."""
    return f"--set {item}" if len(item) <= 80 else f"--set {item[:77]}..."


def _blame_override(error: SpecError, overrides: list[str]) -> SpecError:
    """The error re-addressed to the last override that set the failing key (or a key above
    or below it), so that ``--set`` mistakes are not reported as mistakes of the file."""
    key = error.key
    for item in reversed(overrides):
        path = item.partition("=")[0].strip()
        if key == path or key.startswith((path + ".", path + "[")) or \
                path.startswith(key + "."):
            rest = "" if key == path or path.startswith(key + ".") else key
            return SpecError(rest, error.problem, error.fix, _override(item))
    return error


def read_text(path: Path, source: str, what: str = "spec file") -> str:
    """The UTF-8 text of a small user file, or a ``SpecError`` saying what is wrong with it
    (special files such as FIFOs and devices are refused without being opened)."""

    def fail(problem: str, fix: str) -> SpecError:
        return SpecError("", problem, fix, source)

    return user_files.decode(user_files.read_bytes(path, fail, what, MAX_SPEC_BYTES), fail,
                             "YAML text file")


def load(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Read, override and validate a spec file.

    Every problem is a ``SpecError`` naming the file (or the ``--set`` override) and the key.
    """
    overrides = list(overrides or [])
    source = str(path)
    if source == "":
        raise SpecError("", "the spec path is empty", "give the path of a YAML spec", "SPEC")
    if source.endswith(("/", "\\")):
        raise SpecError("", "ends with a path separator, so it names a directory",
                        "give the path of a YAML file (no trailing '/')", source)
    text = read_text(Path(path), source)
    data = parse_yaml(text, "", source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("", "expected a mapping of keys", "start with 'name: ...'", source)
    data = apply_overrides(data, overrides, source)
    try:
        return from_dict(data, source)
    except SpecError as error:
        raise _blame_override(error, overrides) from None


# --------------------------------------------------------------------------------------------
# resolving
# --------------------------------------------------------------------------------------------
def _steps(spec: Spec, game: Game, alpha_value: float, agents: int | None,
           batch: int | None) -> int:
    """The number of decision steps (a timed game runs two per-step indices for each)."""
    horizon = spec.horizon
    if horizon.rounds is not None:
        if agents is not None and batch is not None:
            return -(-horizon.rounds * agents // batch)  # exact integer ceil(H N / B)
        return max(1, math.ceil(horizon.rounds / alpha_value - 1e-9))
    if horizon.steps is not None:
        return horizon.steps
    if game.default_horizon is None:
        raise SpecError("horizon", f"missing, and {game.name} has no default horizon",
                        "add horizon: {steps: 30} or horizon: {rounds: 10}", spec.source)
    return game.default_horizon


def steps_of(spec: Spec, game: Game, agents: int | None = None,
             batch: Batch | None = None) -> int:
    """T of ``setting(spec, agents, batch)`` for the spec's built ``game``, without building
    any array of the run (for the size checks of ``tmfcli.io.budget``)."""
    pop = spec.population
    agents = agents if agents is not None else pop.agents
    batch = batch if batch is not None else pop.batch
    value = pop.alpha if pop.alpha is not None else \
        (batch if isinstance(batch, float) else 1.0)
    stages = 2 if isinstance(game, TimedGame) else 1
    if agents is None:
        return stages * _steps(spec, game, value, None, None)
    sizes = batch_size("all" if batch is None else batch, agents)
    if isinstance(sizes, tuple):
        return stages * _steps(spec, game, 1.0, None, None)
    return stages * _steps(spec, game, sizes / agents, agents, sizes)


def make_setting(game: str, alpha: float = 1.0, steps: int | None = None,
                 params: dict[str, Any] | None = None, **extra: Any) -> Setting:
    """The mean-field setting of a shipped ``game`` at active fraction ``alpha``, from a few
    spec keys (``extra``: top-level blocks): for scripts, benchmarks and tests."""
    data: dict[str, Any] = {"name": game, "game": {"name": game, "params": params or {}},
                            "population": {"alpha": alpha}}
    if steps is not None:
        data["horizon"] = {"steps": steps}
    data.update(extra)
    return setting(from_dict(data))


def setting(spec: Spec, agents: int | None = None, batch: Batch | None = None) -> Setting:
    """Resolve the spec (optionally with another N and batch, as in bound-check sweeps)."""
    game = spec.build_game()
    pop = spec.population
    agents = agents if agents is not None else pop.agents
    batch = batch if batch is not None else pop.batch
    batches = None
    if agents is None:  # mean field only: alpha, a fraction, or synchronous
        value = pop.alpha if pop.alpha is not None else \
            (batch if isinstance(batch, float) else 1.0)
        alpha = np.full(_steps(spec, game, value, None, None), value)
    else:
        sizes = batch_size("all" if batch is None else batch, agents)
        if isinstance(sizes, tuple):  # a cyclic schedule (steps only)
            batches = np.resize(np.asarray(sizes, dtype=np.int64),
                                _steps(spec, game, 1.0, None, None))
        else:
            batches = np.full(_steps(spec, game, sizes / agents, agents, sizes), sizes,
                              dtype=np.int64)
        alpha = batches / agents
    if isinstance(game, TimedGame):
        return _timed(spec, game, alpha, batches, agents)
    gamma = spec.discount
    if spec.horizon.rounds is not None:
        gamma = gamma ** float(alpha[0])
    return Setting(game=game, alpha=alpha, gamma=gamma, tau=spec.entropy, agents=agents,
                   batches=batches)


def _timed(spec: Spec, game: TimedGame, alpha: Array, batches: np.ndarray | None,
           agents: int | None) -> Setting:
    """The per-step setting of a timed game (MODEL.md section 9): its clock bound (dt = alpha
    in rounds, ``clock.dt`` in steps; the discount per round) and two per-step indices per
    decision step, the decision (B_t agents act) and the time stage (B = 0)."""
    dt = float(alpha[0]) if spec.horizon.rounds is not None else spec.clock.dt
    bound = game.at(dt, spec.discount)
    T = alpha.shape[0]
    stepped = np.zeros(2 * T)
    stepped[0::2] = alpha
    if batches is not None:
        counts = np.zeros(2 * T, dtype=np.int64)
        counts[0::2] = batches
        batches = counts
    return Setting(game=bound, alpha=stepped, gamma=bound.step_discount, tau=spec.entropy,
                   agents=agents, batches=batches, stages=2)
