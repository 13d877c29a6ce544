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
from pathlib import Path
from typing import Any

from tmfcli.errors import SpecError
from tmfcli.io import addresses, budget, game_files
from tmfcli.io.resolve import setting
from tmfcli.io.spec_text import apply_overrides, blame_override, parse_yaml, read_text
from tmfcli.io.spec_types import (
    ACTIVATIONS,
    INITS,
    MAX_COUNT,
    OPTIMIZERS,
    TIME_INDICES,
    TRAIN_ALGORITHMS,
    BoundCheckSpec,
    Clock,
    ExecutorSpec,
    GameSpec,
    Horizon,
    Population,
    SimulateSpec,
    SolverSpec,
    Spec,
    SweepSpec,
    TrainSpec,
    relative_path,
)
from tmfcli.io.yaml_size import (
    show_integer,
    too_large,
)
from tmfcli.model.games import GAMES, available_games
from tmfcli.model.games.checks import quick_check
from tmfcli.model.games.timed import TimedGame
from tmfcli.model.setting import Batch, Setting
from tmfcli.simulation.counts import MAX_AGENTS
from tmfcli.solvers.registry import ALGORITHMS, AUTO, choose


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
        algorithm=reader.choice("algorithm", d.algorithm, tuple(TRAIN_ALGORITHMS)),
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
        return Batch("count", value)
    if isinstance(value, str):
        if value not in ("all", "sqrt"):
            raise SpecError(key, f"invalid batch {_show(value)}", fix, source)
        return Batch(value)
    if isinstance(value, float):  # {fraction: f} as a resolved spec (a manifest) writes it
        if not 0.0 < value <= 1.0:
            raise SpecError(key, f"fraction {value:g} is not in (0, 1]", fix, source)
        return Batch("fraction", value)
    if isinstance(value, dict):
        reader = _Reader(value, key, source)
        fraction = reader.number("fraction", None, low=0.0, high=1.0, low_open=True)
        reader.done()
        if fraction is None:
            raise SpecError(key, "a batch mapping needs a fraction", fix, source)
        return Batch("fraction", fraction)
    if isinstance(value, list) and value:
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise SpecError(f"{key}[{i}]", f"invalid batch {_show(item)} in schedule", fix,
                                source)
        return Batch("schedule", tuple(value))
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
    if batch is not None and batch.kind != "fraction" and agents is None:
        raise reader.error("agents", "missing (needed to read the batch)",
                           "add population.agents, or give alpha or batch: {fraction: f}")
    if agents is not None and batch is not None:
        for b in batch.sizes(agents):
            if b > agents:
                raise reader.error("batch", f"batch {b} is larger than agents ({agents})",
                                   f"use a batch between 1 and {agents}")
    return Population(agents=agents, batch=batch, alpha=alpha, activation=activation,
                      init=init)


def _game(g: _Reader) -> GameSpec:
    """The ``game:`` block: exactly one of name, file, define or module (docs/games.md)."""
    source = g.source
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
        define = game_files.read(relative_path(game_file, source), source)
    if define is not None:
        if not isinstance(define, dict):
            raise g.error("define", f"expected a mapping, got {_show(define)}",
                          "write the game's keys under define: (docs/games.md)")
        game_name = define.get("name")
        if not isinstance(game_name, str):
            raise SpecError(("" if from_file else "game.define.") + "name",
                            "missing", "give the game a name",
                            str(relative_path(str(game_file), source)) if from_file else source)
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
    return game_spec


def _horizon(h: _Reader) -> Horizon:
    """The ``horizon:`` block: steps or rounds."""
    steps = h.integer("steps", None, low=1, high=MAX_COUNT)
    rounds = h.integer("rounds", None, low=1, high=MAX_COUNT)
    h.done()
    if steps is not None and rounds is not None:
        raise h.error("rounds", "both steps and rounds are given", "keep one of them")
    horizon = Horizon(steps=steps, rounds=rounds)
    return horizon


def _solver(s: _Reader) -> SolverSpec:
    """The ``solver:`` block (auto is resolved once the game is built)."""
    solver = SolverSpec(
        algorithm=s.choice("algorithm", AUTO, (AUTO, *ALGORITHMS)),
        iterations=s.integer("iterations", 1000, low=1, high=MAX_COUNT) or 1000,
        tolerance=s.number("tolerance", 1e-8, low=0.0) or 0.0,
        restarts=s.integer("restarts", 3, low=0, high=MAX_COUNT) or 0,
        params=s.mapping("params"),
    )
    s.done()
    return solver


def _simulate(sim: _Reader) -> SimulateSpec:
    """The ``simulate:`` block."""
    epsilon = sim.take("epsilon", True)
    if not isinstance(epsilon, bool):
        raise sim.error("epsilon", f"expected true or false, got {_show(epsilon)}",
                        "write true (estimate eps_N) or false (skip it)")
    simulate = SimulateSpec(replicas=sim.integer("replicas", 100, low=1, high=MAX_COUNT) or 1,
                            every=sim.integer("every", 1, low=1, high=MAX_COUNT) or 1,
                            epsilon=epsilon)
    sim.done()
    return simulate


def _bound_check(b: _Reader) -> BoundCheckSpec:
    """The ``bound_check:`` block: agent counts and regimes (batch forms), each checked against
    every N."""
    source = b.source
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
    batch_raw = b.take("batch", [form.plain for form in BoundCheckSpec.batch])
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
        if regime.label in [r.label for r in regimes[:i]]:
            raise b.error(f"batch[{i}]", f"regime {regime.label} is listed twice",
                          "list each regime once")
    for i, regime in enumerate(regimes):
        for n in agents_raw:
            if max(regime.sizes(n)) > n:
                raise b.error(f"batch[{i}]", f"batch {regime.label} is larger than "
                              f"{n} agents", f"use batches of at most {min(agents_raw)} or "
                              "a relative form (sqrt, all, fraction)")
    bound_check = BoundCheckSpec(agents=tuple(agents_raw), batch=regimes,
                                 replicas=b.integer("replicas", 200, low=2, high=MAX_COUNT) or 2)
    b.done()
    return bound_check


def _executor(e: _Reader) -> ExecutorSpec:
    """The ``executor:`` block: a scheduler address, parsed before anything connects."""
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
    return ExecutorSpec(scheduler=scheduler)


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

    game_spec = _game(top.sub("game"))

    horizon = _horizon(top.sub("horizon"))

    discount = top.number("discount", 1.0, low=0.0, high=1.0, low_open=True)
    entropy = top.number("entropy", 0.0, low=0.0)
    population = _population(top.sub("population"))
    c = top.sub("clock")
    clock = Clock(dt=c.number("dt", 1.0, low=0.0, low_open=True) or 1.0)
    c.done()
    if horizon.rounds is not None and clock.dt != 1.0:
        raise top.error("clock.dt", "a horizon in rounds sets the duration of a step "
                        "(B / N rounds)", "remove clock.dt, or give the horizon in steps")
    if horizon.rounds is not None and population.batch is not None and \
            population.batch.kind == "schedule":
        raise top.error("horizon.rounds", "rounds need a constant batch, not a schedule",
                        "give the horizon in steps, or a single batch")

    solver = _solver(top.sub("solver"))

    simulate = _simulate(top.sub("simulate"))

    bound_check = _bound_check(top.sub("bound_check"))

    train = _train(top.sub("train"), horizon.rounds is not None)
    seed = top.integer("seed", 0, low=0) or 0
    sweep = _sweep(top.take("sweep", {}), source)  # sweep: null is an error, as sweep: {}
    executor = _executor(top.sub("executor"))
    top.done()
    raw = {k: v for k, v in data.items() if k not in ("sweep", "executor")}
    spec = Spec(name=name, game=game_spec, horizon=horizon, population=population,
                discount=discount or 1.0, entropy=entropy or 0.0, clock=clock, solver=solver,
                simulate=simulate, bound_check=bound_check, train=train, seed=seed,
                source=source, sweep=sweep, executor=executor,
                raw=copy.deepcopy(raw))
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
        spec = spec.with_solver(chosen)
    spec.build_algorithm()  # validates the solver parameters now
    return spec



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
        raise blame_override(error, overrides) from None



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


