"""Games given as data: named observations and actions, tables of numbers and expressions.

A ``GameDefinition`` is the parsed, name-checked form of a game file (``tmfcli.io.game_files``
reads and validates the YAML; this module knows no files). ``DataGame`` turns it into a
``Game``: parameters are resolved (defaults, then overrides; a parameter may be an expression
of other parameters), every table entry is bound (parameters become numbers, ``mu[name]``
becomes a position, constants are folded) and each table is split into a constant array and
the entries that depend on mu or t. A call evaluates each distinct expression once over the
whole batch mu (..., O) and scatters the values into the table:

    transition(mu (..., O), t)      -> P  (..., O, A, O)   missing entries are 0
    idle_transition(mu (..., O), t) -> P0 (..., O, O)      default: identity (idle agents stay)
    reward(mu (..., O), t)          -> r  (..., O, A)
    idle_reward(mu (..., O), t)     -> r0 (..., O)         default: 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmfcli.errors import SpecError
from tmfcli.model.games.base import Array, Game, Lipschitz, static
from tmfcli.model.games.expressions import (
    ExpressionError,
    Node,
    Problem,
    bind,
    check,
    compile_tree,
    depends_on_mu,
    depends_on_t,
    parameters_used,
    parse,
    show,
)
from tmfcli.model.games.timed import TimedGame


@dataclass(frozen=True)
class Entry:
    """One entry of a table: its tree, its text and its dotted key (for messages).

    ``local`` binds ``o`` (and ``next`` in kernels) to positions; ``rest`` marks the entry
    "rest" of a kernel row: one minus the other entries of the row.
    """

    node: Node
    text: str
    key: str
    local: tuple[tuple[str, int], ...] = ()
    rest: bool = False


@dataclass(frozen=True)
class ParamRange:
    """A parameter's documentation and allowed values: min <= x <= max, x > above."""

    doc: str = ""
    min: float | None = None
    max: float | None = None
    above: float | None = None

    def allows(self, x: float) -> bool:
        return (self.min is None or x >= self.min) and (self.max is None or x <= self.max) \
            and (self.above is None or x > self.above)

    def text(self) -> str:
        parts = [f">= {self.min:g}" if self.min is not None else "",
                 f"> {self.above:g}" if self.above is not None else "",
                 f"<= {self.max:g}" if self.max is not None else ""]
        return " and ".join(p for p in parts if p) or "finite"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: games built from it are
class GameDefinition:                # hashable (the engine caches per game) and never confused
    """A data game, parsed and name-checked. Table keys are positions:

    P[(o, a, o')], P0[(o, o')], r[(o, a)], r0[(o,)]; P0 None means "idle agents stay",
    r0 None means 0. ``source`` is the file (or spec) and ``prefix`` the key of the
    definition inside it ("" for a game file, "game.define" inline).
    """

    name: str
    summary: str
    observations: tuple[str, ...]
    actions: tuple[str, ...]
    mu0: tuple[float, ...]
    params: dict[str, Entry]
    P: dict[tuple[int, ...], Entry]
    r: dict[tuple[int, ...], Entry]
    P0: dict[tuple[int, ...], Entry] | None = None
    r0: dict[tuple[int, ...], Entry] | None = None
    G: dict[tuple[int, ...], Entry] | None = None   # a timed game's rates, off the diagonal
    f: dict[tuple[int, ...], Entry] | None = None   # a timed game's flow reward
    timed: bool = False  # P and r then hold the decisions D and c (``TimedDataGame``)
    lipschitz: dict[str, Entry] = field(default_factory=dict)
    ranges: dict[str, ParamRange] = field(default_factory=dict)
    horizon: int | None = None
    source: str = ""
    prefix: str = ""

    def key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key


class _Table:
    """A table of shape ``shape``: a constant array plus entries that depend on mu or t."""

    def __init__(self, shape: tuple[int, ...], entries: dict[tuple[int, ...], Node]) -> None:
        self.shape = shape
        flat = np.zeros(int(np.prod(shape)))
        unique: dict[Node, int] = {}
        positions, which = [], []
        for index, node in entries.items():
            position = int(np.ravel_multi_index(index, shape))
            if node[0] == "num":
                flat[position] = node[1]
            else:
                positions.append(position)
                which.append(unique.setdefault(node, len(unique)))
        self.base = flat
        self.nodes = list(unique)
        self.compiled = [compile_tree(n) for n in self.nodes]
        self.positions = np.asarray(positions, dtype=np.int64)
        self.which = np.asarray(which, dtype=np.int64)
        self.constant = flat.reshape(shape)

    def __getstate__(self) -> dict[str, Any]:  # closures do not pickle; trees do
        return {k: v for k, v in self.__dict__.items() if k != "compiled"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.compiled = [compile_tree(n) for n in self.nodes]

    @property
    def varies(self) -> bool:
        return bool(self.nodes)

    def __call__(self, mu: Array, t: int) -> Array:
        if not self.nodes:
            return static(self.constant, mu)
        batch = mu.shape[:-1]
        out = np.empty((*batch, self.base.size))
        out[...] = self.base
        values = np.empty((*batch, len(self.compiled)))
        with np.errstate(all="ignore"):  # domain errors are reported by the checks
            for k, f in enumerate(self.compiled):
                values[..., k] = f(mu, t)
        out[..., self.positions] = values[..., self.which]
        return out.reshape(*batch, *self.shape)


def resolve_parameters(definition: GameDefinition, overrides: Mapping[str, Any],
                       source: str = "", prefix: str = "game.params") -> dict[str, float]:
    """Parameter values: overrides (numbers or expressions) over the defaults, each expression
    evaluated after the parameters it uses; a cycle of references is an error."""
    d = definition
    nodes: dict[str, tuple[Node, str, str]] = {
        name: (entry.node, d.key(entry.key), d.source) for name, entry in d.params.items()}
    for name, value in overrides.items():
        key = f"{prefix}.{name}"
        if name not in d.params:
            raise SpecError(key, f"unknown parameter of {d.name}",
                            f"valid parameters: {', '.join(d.params) or 'none'}", source)
        try:
            nodes[name] = (parse(value), key, source)
        except ExpressionError as err:
            raise SpecError(key, err.problem, err.fix, source) from None
    values: dict[str, float] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> float:
        if name in values:
            return values[name]
        node, key, where = nodes[name]
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name):], name))
            raise SpecError(key, f"parameters refer to each other in a cycle: {cycle}",
                            "give one of them a number", where)
        for n in _uses_mu_or_t(node):
            raise SpecError(key, f"a parameter cannot depend on {n}",
                            "use mu and t only in the tables P, P0, r, r0", where)
        for used in sorted(parameters_used(node)):
            if used not in nodes:
                raise SpecError(key, f"unknown name {used!r}",
                                f"use other parameters ({', '.join(nodes) or 'none'})", where)
            resolve(used, (*chain, name))
        try:
            bound = bind(node, values, {})
        except ExpressionError as err:
            raise SpecError(key, err.problem, err.fix, where) from None
        if bound[0] != "num" or not math.isfinite(bound[1]):
            raise SpecError(key, "is not a finite number (division by zero, log of a "
                            "number <= 0 or an overflow)", "give a finite value", where)
        allowed = d.ranges.get(name, ParamRange())
        if not allowed.allows(bound[1]):
            raise SpecError(key, f"{bound[1]:g} is out of range", f"use a value "
                            f"{allowed.text()}", where)
        values[name] = float(bound[1])
        return values[name]

    for name in nodes:
        resolve(name, ())
    return {name: values[name] for name in nodes}


def _sum(nodes: list[Node]) -> Node:
    """n1 + n2 + ... as a balanced tree (shallow even for rows of many entries)."""
    if not nodes:
        return ("num", 0.0)
    if len(nodes) == 1:
        return nodes[0]
    half = len(nodes) // 2
    return ("bin", "+", _sum(nodes[:half]), _sum(nodes[half:]))


_OPCODES = {"+": 4, "-": 5, "*": 6, "/": 7, "**": 8, "<": 9, "<=": 10, ">": 11, ">=": 12,
            "==": 13, "!=": 14, "and": 15, "or": 16, "exp": 17, "log": 18, "sqrt": 19,
            "abs": 20, "min": 21, "max": 22, "clip": 23, "where": 24}
CONST, MU, NEG, NOT = 0, 1, 2, 3  # as in tmfcli.model.games.data_kernel


def postfix(node: Node, code: list[float]) -> int:
    """Append the postfix code of a bound tree (see ``data_kernel``); return the stack depth
    it needs. Raises ValueError for ``t`` (compiled kernels do not see the step)."""
    kind = node[0]
    if kind == "num":
        code += [CONST, node[1]]
        return 1
    if kind == "mu":
        code += [MU, float(node[1])]
        return 1
    if kind in ("neg", "not"):
        depth = postfix(node[1], code)
        code.append(NEG if kind == "neg" else NOT)
        return depth
    if kind == "bin":
        depth = max(postfix(node[2], code), 1 + postfix(node[3], code))
        code.append(_OPCODES[node[1]])
        return depth
    if kind == "if" or (kind == "call" and node[1] in ("where", "clip")):
        args = node[1:] if kind == "if" else node[2]
        depth = max(i + postfix(a, code) for i, a in enumerate(args))
        code.append(_OPCODES["where" if kind == "if" else node[1]])
        return depth
    if kind == "call" and node[1] in ("min", "max"):
        depth = postfix(node[2][0], code)
        for a in node[2][1:]:
            depth = max(depth, 1 + postfix(a, code))
            code.append(_OPCODES[node[1]])
        return depth
    if kind == "call":
        depth = postfix(node[2][0], code)
        code.append(_OPCODES[node[1]])
        return depth
    raise ValueError(f"cannot compile {kind!r}")


def encode(P: _Table, P0: _Table | None, O: int) -> Array | None:
    """The ``params`` of ``data_kernel.fill`` for the kernels P and P0 (None: P0 = stay), or
    None when an entry uses t."""
    base0 = P0.base if P0 is not None else np.eye(O).ravel()
    entries: list[float] = []
    code: list[float] = []
    depth = 0
    for table, part in ((0, P), (1, P0)):
        if part is None:
            continue
        for position, which in zip(part.positions, part.which, strict=True):
            node = part.nodes[int(which)]
            if depends_on_t(node):
                return None
            start = len(code)
            depth = max(depth, postfix(node, code))
            entries += [table, float(position), start, len(code)]
    header = [P.base.size, base0.size, len(entries) // 4, len(code), depth]
    return np.concatenate([np.asarray(header, dtype=float), P.base, base0,
                           np.asarray(entries, dtype=float), np.asarray(code, dtype=float)])


def _uses_mu_or_t(node: Node) -> list[str]:
    """'mu' and/or 't' when the tree uses them (parameters must not)."""
    return [w for w, used in (("mu", depends_on_mu(node)), ("t", depends_on_t(node))) if used]


@dataclass(frozen=True)
class DataGame(Game):
    """A game built from a ``GameDefinition`` with parameter ``overrides`` (spec values)."""

    definition: GameDefinition | None = field(default=None, repr=False)
    overrides: tuple[tuple[str, Any], ...] = ()
    overrides_source: str = field(default="", compare=False)

    values: dict[str, float] = field(init=False, repr=False, compare=False, default_factory=dict)
    _tables: dict[str, _Table] = field(init=False, repr=False, compare=False,
                                       default_factory=dict)
    _checks: list[tuple[Node, Entry]] = field(init=False, repr=False, compare=False,
                                              default_factory=list)
    _lipschitz: Lipschitz | None = field(init=False, repr=False, compare=False, default=None)
    _program: Array | None = field(init=False, repr=False, compare=False, default=None)

    def build(self) -> None:
        d = self.definition
        if d is None:
            raise ValueError("a DataGame needs a definition")
        values = resolve_parameters(d, dict(self.overrides), self.overrides_source)
        O, A = len(d.observations), len(d.actions)
        index = {name: i for i, name in enumerate(d.observations)}
        shapes = {"P": (O, A, O), "r": (O, A), "P0": (O, O), "r0": (O,), "G": (O, O),
                  "f": (O,)}
        tables, checks = {}, []
        for table, shape in shapes.items():
            entries = getattr(d, table)
            if entries is None:
                continue
            bound = self._bind(entries, values, index)
            tables[table] = _Table(shape, bound)
            checks += [(node, entries[i]) for i, node in bound.items() if node[0] != "num"]
        idle = tables.get("P0")
        static_dynamics = not tables["P"].varies and (idle is None or not idle.varies)
        time_homogeneous = not any(depends_on_t(node) for node, _ in checks)
        idle_stays = idle is None or (not idle.varies and
                                      np.array_equal(idle.constant, np.eye(O)))
        self._set(n_obs=O, n_act=A, mu0=np.asarray(d.mu0, dtype=float),
                  obs_labels=d.observations, act_labels=d.actions, values=values,
                  _tables=tables, _checks=checks,
                  _program=None if static_dynamics else encode(tables["P"], idle, O),
                  _lipschitz=self._constants(d, values, index),
                  name=d.name, summary=d.summary, static_dynamics=static_dynamics,
                  idle_stays=idle_stays, default_horizon=d.horizon,
                  time_homogeneous=time_homogeneous)

    def _bind(self, entries: dict[tuple[int, ...], Entry], values: dict[str, float],
              index: dict[str, int]) -> dict[tuple[int, ...], Node]:
        d = self.definition
        assert d is not None
        bound: dict[tuple[int, ...], Node] = {}
        rests = []
        for position, entry in entries.items():
            if entry.rest:
                rests.append(position)
                continue
            try:
                bound[position] = bind(entry.node, values, index, dict(entry.local))
            except ExpressionError as err:
                raise SpecError(d.key(entry.key), f"{err.problem} in {entry.text!r}", err.fix,
                                d.source) from None
        for position in rests:  # one minus the other entries of its row
            row = [n for p, n in bound.items() if p[:-1] == position[:-1]]
            rest: Node = ("bin", "-", ("num", 1.0), _sum(row))
            bound[position] = bind(rest, values, index)
        return bound

    @staticmethod
    def _constants(d: GameDefinition, values: dict[str, float],
                   index: dict[str, int]) -> Lipschitz | None:
        if not d.lipschitz:
            return None
        numbers = {}
        for name, entry in d.lipschitz.items():
            try:
                node = bind(entry.node, values, index)
            except ExpressionError as err:
                raise SpecError(d.key(entry.key), err.problem, err.fix, d.source) from None
            if node[0] != "num" or not math.isfinite(node[1]) or node[1] < 0:
                raise SpecError(d.key(entry.key), "is not a finite number >= 0",
                                "give a constant (an expression of parameters only)", d.source)
            numbers[name] = float(node[1])
        return Lipschitz(L_P=numbers["L_P"], L_0=numbers.get("L_0", 0.0))

    # --- the model -------------------------------------------------------------------------
    def transition(self, mu: Array, t: int) -> Array:
        return self._tables["P"](mu, t)

    def reward(self, mu: Array, t: int) -> Array:
        return self._tables["r"](mu, t)

    def idle_transition(self, mu: Array, t: int) -> Array:
        if "P0" in self._tables:
            return self._tables["P0"](mu, t)
        return super().idle_transition(mu, t)

    def idle_reward(self, mu: Array, t: int) -> Array:
        if "r0" in self._tables:
            return self._tables["r0"](mu, t)
        return super().idle_reward(mu, t)

    def lipschitz(self) -> Lipschitz | None:
        return self._lipschitz

    def compiled_dynamics(self) -> tuple[Any, Array] | None:
        """The stack-machine kernel of ``data_kernel`` with this game's program, for
        mu-dependent dynamics that do not use t (else None: the numpy reference is used)."""
        if self._program is None:
            return None
        from tmfcli.model.games.data_kernel import fill

        return fill, self._program

    def check_expressions(self, mu: Array, t: int) -> None:
        """Evaluate every mu- or t-dependent entry at the probes mu (S, O) with domain checks
        (division by zero, log of x <= 0, sqrt of x < 0, a non-finite value)."""
        from tmfcli.model.games.checks import show_mu

        d = self.definition
        assert d is not None
        for node, entry in self._checks:
            value, problem = check(node, mu, t, d.observations)
            text = "rest (1 - the other entries of the row)" if entry.rest else repr(entry.text)
            if problem is None and not np.all(np.isfinite(value)):
                problem = Problem("is not finite", show(node, d.observations),
                                  int(np.flatnonzero(~np.isfinite(value))[0]))
            if problem is not None:
                inner = "" if problem.part == show(node, d.observations) else \
                    f" (in {problem.part})"
                raise SpecError(d.key(entry.key), f"{text} {problem.what}{inner} at "
                                f"{show_mu(self, mu[problem.probe])}" + (f", t = {t}" if
                                depends_on_t(node) else ""),
                                "guard it, e.g. max(x, 1e-12) for a denominator or a log's "
                                "argument, or where(condition, a, b)", d.source)

    def entry_key(self, table: str, index: tuple[int, ...]) -> str:
        """Where an entry of a table is defined, for messages: ``file:key`` or the names."""
        d = self.definition
        assert d is not None
        entries = getattr(d, table)
        labels = [d.observations[index[0]]]
        if table in ("P", "r"):
            labels.append(d.actions[index[1]])
        if entries is not None:
            keys = [e.key for p, e in entries.items() if p[:len(index)] == index]
            if keys:
                common = keys[0].rsplit(".", 1)[0] if table in ("P", "P0") else keys[0]
                return ":".join(p for p in (d.source, d.key(common)) if p)
        return ":".join(p for p in (d.source, d.key(".".join([table, *labels]))) if p)


@dataclass(frozen=True)
class TimedDataGame(TimedGame, DataGame):
    """A timed game given as data (``decision:`` and ``time:``, MODEL.md section 9): the
    tables P and r of the definition hold D and c, G the rates off the diagonal (the diagonal
    is minus the row's sum) and f the flow reward; the engine runs it as ``TimedGame`` does.
    Its time stage is the block matrix exponential (``timed.stage``); it has no compiled
    kernel, so mu-dependent rates take the numpy reference loops."""

    def build(self) -> None:
        DataGame.build(self)
        d = self.definition
        assert d is not None
        for table in ("G", "f"):
            for node, entry in self._checks:
                if entry.key.startswith(f"time.{table}") and depends_on_t(node):
                    raise SpecError(d.key(entry.key), f"{entry.text!r} uses t",
                                    "the time block cannot depend on t: rates and flow "
                                    "rewards are functions of mu", d.source)
        G = self._tables.get("G")
        moves = G is not None and (G.varies or bool(np.any(G.constant != 0)))
        decides_by_t = any(depends_on_t(node) for node, entry in self._checks
                           if not entry.key.startswith("time."))
        self._set(static_decisions=not self._tables["P"].varies and not decides_by_t,
                  time_moves=moves, time_homogeneous=False, period=0 if decides_by_t else 2,
                  _program=None)

    def decision(self, mu: Array, t: int) -> Array:
        return self._tables["P"](mu, t)

    def decision_reward(self, mu: Array, t: int) -> Array:
        return self._tables["r"](mu, t)

    def generator(self, mu: Array) -> Array:
        if "G" not in self._tables:
            return np.zeros((*mu.shape, mu.shape[-1]))
        off = self._tables["G"](mu, 0)
        idx = np.arange(self.n_obs)
        G = off.copy()
        G[..., idx, idx] = -off.sum(axis=-1)
        return G

    def flow_reward(self, mu: Array) -> Array:
        return self._tables["f"](mu, 0) if "f" in self._tables else np.zeros(mu.shape)

    def compiled_dynamics(self) -> tuple[Any, Array] | None:
        return None
