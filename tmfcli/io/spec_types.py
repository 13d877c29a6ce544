"""The spec as data: the frozen dataclasses a validated spec is made of.

``tmfcli.io.spec`` reads and validates a YAML mapping into these (every key is documented in
``docs/spec.md``); ``tmfcli.io.resolve`` turns a ``Spec`` into the engine's numbers. A ``Spec``
also knows how to build its game and solver and how to write itself back as plain data (the
manifest's ``spec:``, which the reader accepts as it stands).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tmfcli.errors import SpecError
from tmfcli.io import game_files, runs
from tmfcli.learning.learner import TrainConfig
from tmfcli.learning.registry import LEARNERS
from tmfcli.model.games import Game, from_module, make_game
from tmfcli.model.games.data import DataGame, TimedDataGame
from tmfcli.model.params import build
from tmfcli.model.setting import Batch
from tmfcli.solvers.registry import ALGORITHMS, AUTO

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
    batch: tuple[Batch, ...] = (Batch("count", 1), Batch("sqrt"), Batch("all"))
    replicas: int = 200


# --- train block (tmf train, docs/train.md) -------------------------------------------------
TRAIN_ALGORITHMS = LEARNERS  # the learners by name (read when a spec is validated)
OPTIMIZERS = ("adam", "sgd")
TIME_INDICES = ("auto", "step", "round", "none")


_LEARNER = TrainConfig()


@dataclass(frozen=True)
class TrainSpec:
    """``tmf train`` settings; ``seed`` None means the spec's seed (docs/spec.md, docs/train.md).

    ``time_index`` "auto" is "round" for a horizon in rounds and "step" for one in steps.
    ``yardstick``: also run the learner's yardstick if it has one (``learning.registry``;
    tmf-pg: tmf-pg-exact), for the summary's side-by-side row.
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
        """The game with its validated parameters and initial distribution, built once per
        spec (games are immutable; a spec changed with ``replace`` builds its own)."""
        game = self.__dict__.get("_game")
        if game is None:
            game = self._game_of_block()
            object.__setattr__(self, "_game", game)
        return game

    def run_hash(self, key: str) -> str:
        """``runs.run_hash`` of this spec for ``key`` (the command and what else defines the
        run), computed once per key: the run store, the sweep, the executor and the manifest
        all ask for it."""
        hashes: dict[str, str] = self.__dict__.setdefault("_hashes", {})
        if key not in hashes:
            hashes[key] = runs.run_hash(self.to_dict(), key)
        return hashes[key]

    def with_solver(self, algorithm: str) -> Spec:
        """The spec with ``solver.algorithm`` set (auto resolved), keeping the built game."""
        spec = replace(self, solver=replace(self.solver, algorithm=algorithm))
        if "_game" in self.__dict__:
            object.__setattr__(spec, "_game", self.__dict__["_game"])
        return spec

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a worker) without the built game: the worker builds its own."""
        return {k: v for k, v in self.__dict__.items() if k != "_game"}

    def _game_of_block(self) -> Game:
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
        batch = self.population.batch  # batches as the spec writes them (Batch.plain)
        data["population"]["batch"] = None if batch is None else batch.plain
        data["bound_check"]["batch"] = [form.plain for form in self.bound_check.batch]
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value




def relative_path(path: str, source: str) -> Path:
    """A path of the spec, relative to the spec's directory."""
    given = Path(path)
    return given if given.is_absolute() or not source else Path(source).parent / given


def _build_game(g: GameSpec, source: str) -> Game:
    """The game of a ``game:`` block (without mu0), parameters validated."""
    if g.define is not None:
        where = str(relative_path(g.file, source)) if g.file is not None else source
        definition = game_files.definition(g.define, where,
                                           "" if g.file is not None else "game.define")
        kind = TimedDataGame if definition.timed else DataGame
        return kind(definition=definition, overrides=tuple(g.params.items()),
                    overrides_source=source)
    if g.module is not None:
        return from_module(g.module, g.factory or "", g.params, source)
    return make_game(g.name, g.params, source)
