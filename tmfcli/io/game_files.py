"""Game files: a YAML game (``game: {file: ...}`` or inline ``game: {define: ...}``) read and
checked into a ``GameDefinition`` (docs/games.md). Every problem is a ``SpecError`` naming the
file, the table and the entry, with the fix.

The format, by name throughout::

    name: my_game                       # letters, digits, _ - .
    summary: one line shown by tmf validate
    observations: [out, queue1]         # names, each once
    actions: [stay, join]
    mu0: {out: 1.0}                     # by name (missing names are 0), or one name: out
    horizon: 20                         # optional default horizon in steps
    params: {s: 0.3, h: "s / 3"}        # defaults; numbers or expressions of other parameters
    P:                                  # active kernel: observation -> action -> row
      out: {stay: out, join: queue1}    #   a row is one observation name (moved there surely)
      queue1:                           #   or a mapping next observation -> probability
        "*": {out: "s / (s + mu[o])", queue1: rest}    # rest = 1 - the others of the row
    P0: {...}                           # optional idle kernel: observation -> row (default stay)
    r:  {out: 0, queue1: {stay: "-h", join: "-h - 0.1"}}   # observation -> value or
    r0: {...}                           # action -> value; optional idle reward (default 0)
    lipschitz: {L_P: "1 / s", L_0: 0}   # optional analytic constants (else sampled)

"*" stands for every observation (or action) not listed beside it. A timed game (MODEL.md
section 9) gives ``decision`` and ``time`` instead of P, P0, r and r0::

    decision:
      D: {out: {stay: out, join: queue1}, queue1: queue1}   # rows as in P: where a decision moves
      c: {out: 0, queue1: {stay: 0, join: -0.05}}          # paid at the decision, as r
    time:
      G: {queue1: {out: "s / (s + mu[o])"}}   # rates per round: observation -> next -> rate
                                               # (>= 0; the diagonal is minus the row's sum;
                                               # an observation not listed does not move)
      f: {out: 0, queue1: "-h"}                # flow reward per round, as r0 (default 0)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tmfcli.errors import SpecError
from tmfcli.io import user_files
from tmfcli.io.yaml_size import (
    DuplicateKey,
    SelfReference,
    expanded_size,
    show_integer,
    strict,
    too_large,
)
from tmfcli.model.games.data import Entry, GameDefinition, ParamRange
from tmfcli.model.games.expressions import RESERVED, ExpressionError, Node, parse

KEYS = ("name", "summary", "observations", "actions", "mu0", "horizon", "params", "P", "P0",
        "r", "r0", "decision", "time", "lipschitz")
PER_STEP = ("P", "P0", "r", "r0")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# libyaml when available; duplicate keys refused, 1e-9 a number (yaml_size.strict)
_LOADER = strict(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
MAX_NAMES = 1000  # observations or actions of one game
MAX_NODES = 1_000_000  # YAML nodes of a game file after alias expansion
MAX_GAME_BYTES = 64 << 20  # a game file of 1000 observations is a few MiB
ANY = "*"
REST = "rest"


def read(path: str | Path, spec_source: str = "", key: str = "game.file") -> dict[str, Any]:
    """The raw mapping of a game file (relative paths are resolved by the caller)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise SpecError(key, f"game file {str(path)!r} not found",
                        "give a path relative to the spec's directory", spec_source)

    def fail(problem: str, fix: str) -> SpecError:
        return SpecError("", problem, fix, str(path))

    text = user_files.decode(user_files.read_bytes(path, fail, "game file", MAX_GAME_BYTES),
                             fail, "YAML game file")
    try:
        loader = _LOADER(text)
        try:  # compose once, count the nodes aliases would expand to, then construct
            node = loader.get_single_node()
            try:
                size = expanded_size(node, MAX_NODES) if node is not None else 0
            except SelfReference as err:
                raise SpecError("", str(err), "write the game without recursive aliases",
                                str(path)) from None
            if size > MAX_NODES:
                raise SpecError("", f"expands to more than {MAX_NODES} YAML nodes",
                                "write the game without YAML aliases that multiply it",
                                str(path))
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except DuplicateKey as err:
        raise SpecError(f"line {err.second}", err.problem,
                        "keep one of them (a YAML mapping holds each key once)",
                        str(path)) from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise SpecError(where, "not a valid YAML game file", "fix the syntax (docs/games.md)",
                        str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("", "a game file is a mapping of keys",
                        "start with 'name:', 'observations:', ... (docs/games.md)", str(path))
    huge = too_large(data)
    if huge is not None:
        raise SpecError(huge[0], f"the integer {show_integer(huge[1])} is too large for a "
                        "number", "write a number below 1e308 (or a float such as 1e300)",
                        str(path))
    return data


class _Where:
    """Errors that name the file and the dotted key inside the definition."""

    def __init__(self, source: str, prefix: str) -> None:
        self.source = source
        self.prefix = prefix

    def key(self, *parts: Any) -> str:
        inner = ".".join(str(p) for p in parts)
        return f"{self.prefix}.{inner}" if self.prefix and inner else (self.prefix or inner)

    def error(self, parts: tuple[Any, ...], problem: str, fix: str) -> SpecError:
        return SpecError(self.key(*parts), problem, fix, self.source)


def definition(data: Any, source: str = "", prefix: str = "") -> GameDefinition:
    """Check a raw game mapping and parse its expressions (each once)."""
    w = _Where(source, prefix)
    if not isinstance(data, dict):
        raise w.error((), f"expected a mapping, got {type(data).__name__}",
                      "write the game as key: value pairs (docs/games.md)")
    for key in data:
        if key not in KEYS:
            raise w.error((key,), "unknown key", f"valid keys: {', '.join(KEYS)}")
    timed = "decision" in data or "time" in data
    if timed:
        mixed = [k for k in PER_STEP if k in data]
        if mixed:
            raise w.error((mixed[0],), "a timed game (decision:, time:) has no per-step tables",
                          "give decisions as decision.D and decision.c, time as time.G and "
                          f"time.f, and remove {mixed[0]} (docs/games.md)")
    for key in ("name", "observations", "actions", "mu0", *(("decision",) if timed else
                                                              ("P", "r"))):
        if data.get(key) is None:
            raise w.error((key,), "missing", "every game gives name, observations, actions, "
                          "mu0, and P and r (or, timed, decision and time) (docs/games.md)")
    name = data["name"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise w.error(("name",), f"invalid name {name!r}",
                      "use letters, digits, '_', '-' or '.'")
    summary = data.get("summary", "")
    if not isinstance(summary, str):
        raise w.error(("summary",), "expected one line of text", "write summary: '...'")
    obs = _names(w, "observations", data["observations"])
    act = _names(w, "actions", data["actions"])
    horizon = data.get("horizon")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)
                                or horizon < 1):
        raise w.error(("horizon",), f"invalid default horizon {horizon!r}",
                      "give a whole number of steps >= 1")
    params, ranges = _params(w, data.get("params") or {})
    o_index = {n: i for i, n in enumerate(obs)}
    a_index = {n: i for i, n in enumerate(act)}
    G = f = None
    if timed:
        decision = _block(w, "decision", data["decision"], ("D", "c"), ("D", "c"))
        clock = _block(w, "time", data.get("time") or {}, ("G", "f"), ())
        P = _kernel(w, "decision.D", decision["D"], obs, o_index, act, a_index)
        r = _rewards(w, "decision.c", decision["c"], obs, o_index, act, a_index)
        G = _rates(w, clock.get("G") or {}, obs, o_index)
        f = None if clock.get("f") is None else _rewards(w, "time.f", clock["f"], obs, o_index,
                                                          None, None)
        P0 = r0 = None
    else:
        P = _kernel(w, "P", data["P"], obs, o_index, act, a_index)
        P0 = None if data.get("P0") is None else _kernel(w, "P0", data["P0"], obs, o_index,
                                                          None, None)
        r = _rewards(w, "r", data["r"], obs, o_index, act, a_index)
        r0 = None if data.get("r0") is None else _rewards(w, "r0", data["r0"], obs, o_index,
                                                           None, None)
    lipschitz = {}
    raw_lip = data.get("lipschitz")
    if raw_lip is not None:
        if not isinstance(raw_lip, dict) or "L_P" not in raw_lip or \
                set(raw_lip) - {"L_P", "L_0"}:
            raise w.error(("lipschitz",), "expected {L_P: ..., L_0: ...}",
                          "give L_P (and L_0 when the idle kernel depends on mu), or leave "
                          "lipschitz out to have them sampled")
        for key, value in raw_lip.items():
            lipschitz[key] = Entry(_parse(w, ("lipschitz", key), value), str(value),
                                   f"lipschitz.{key}")
    return GameDefinition(name=name, summary=summary, observations=obs, actions=act,
                          mu0=_mu0(w, data["mu0"], obs, o_index), params=params, P=P, r=r,
                          P0=P0, r0=r0, G=G, f=f, timed=timed, lipschitz=lipschitz,
                          ranges=ranges, horizon=horizon,
                          source=source,
                          prefix=prefix)


def _names(w: _Where, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise w.error((key,), "expected a non-empty list of names",
                      f"write e.g. {key}: [a, b, c]")
    if len(value) > MAX_NAMES:
        raise w.error((key,), f"{len(value)} names is too many", f"use at most {MAX_NAMES}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not NAME.fullmatch(item) or item in (ANY, REST):
            raise w.error((f"{key}[{i}]",), f"invalid name {item!r}",
                          "use letters, digits, '_', '-', '+' or '.' (not 'rest'), in quotes "
                          "if YAML reads it as a number")
        if item in value[:i]:
            raise w.error((f"{key}[{i}]",), f"{item!r} is listed twice", "list each name once")
    return tuple(value)


def _parse(w: _Where, parts: tuple[Any, ...], value: Any) -> Node:
    try:
        return parse(value)
    except ExpressionError as err:
        raise w.error(parts, f"{err.problem} in {value!r}" if isinstance(value, str)
                      else err.problem, err.fix) from None


RANGE_KEYS = ("default", "doc", "min", "max", "above")


def _params(w: _Where, raw: Any) -> tuple[dict[str, Entry], dict[str, ParamRange]]:
    """Parameters: ``name: default`` or ``name: {default:, doc:, min:, max:, above:}``."""
    if not isinstance(raw, dict):
        raise w.error(("params",), "expected a mapping name: default",
                      "write e.g. params: {kappa: 1.0}")
    out, ranges = {}, {}
    for name, value in raw.items():
        if not isinstance(name, str) or not PARAM.fullmatch(name) or name in RESERVED:
            raise w.error(("params", name), f"invalid parameter name {name!r}",
                          "use letters, digits and '_' (not " + ", ".join(RESERVED) + ")")
        if isinstance(value, dict):
            for key in value:
                if key not in RANGE_KEYS:
                    raise w.error(("params", name, key), "unknown key",
                                  f"valid keys: {', '.join(RANGE_KEYS)}")
            if "default" not in value:
                raise w.error(("params", name, "default"), "missing",
                              "give the parameter's default value")
            bounds = {}
            for key in ("min", "max", "above"):
                bound = value.get(key)
                if bound is not None and (isinstance(bound, bool) or
                                          not isinstance(bound, int | float)):
                    raise w.error(("params", name, key), f"expected a number, got {bound!r}",
                                  "write a number")
                bounds[key] = None if bound is None else float(bound)
            doc = value.get("doc", "")
            ranges[name] = ParamRange(doc=str(doc), **bounds)
            value = value["default"]
        out[name] = Entry(_parse(w, ("params", name), value), str(value), f"params.{name}")
    return out, ranges


def _mu0(w: _Where, raw: Any, obs: tuple[str, ...], index: dict[str, int]) -> tuple[float, ...]:
    if isinstance(raw, str):
        raw = {raw: 1.0}
    if not isinstance(raw, dict):
        raise w.error(("mu0",), "expected a mapping observation: probability, or one name",
                      f"write e.g. mu0: {{{obs[0]}: 1.0}}")
    mu0 = [0.0] * len(obs)
    for name, value in raw.items():
        if name not in index:
            raise w.error(("mu0", name), "unknown observation", f"use one of: {', '.join(obs)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise w.error(("mu0", name), f"invalid probability {value!r}",
                          "give a number >= 0")
        mu0[index[name]] = float(value)
    if abs(sum(mu0) - 1.0) > 1e-9:
        raise w.error(("mu0",), f"probabilities sum to {sum(mu0):.6g}", "make them sum to 1")
    return tuple(mu0)


def _expand(w: _Where, parts: tuple[Any, ...], raw: Any, names: tuple[str, ...],
            index: dict[str, int], what: str) -> dict[int, tuple[Any, Any]]:
    """{position: (key used, value)}: listed names first, then "*" for the others."""
    if not isinstance(raw, dict):
        raise w.error(parts, f"expected a mapping {what} -> ...",
                      f"list the {what}s by name, or '*' for every {what}")
    out: dict[int, tuple[Any, Any]] = {}
    for key, value in raw.items():
        if key == ANY:
            continue
        if key not in index:
            raise w.error((*parts, key), f"unknown {what}", f"use one of: {', '.join(names)} "
                          f"or '*'")
        out[index[key]] = (key, value)
    if ANY in raw:
        for i in range(len(names)):
            out.setdefault(i, (ANY, raw[ANY]))
    return out


def _grid(w: _Where, table: str, raw: Any, obs: tuple[str, ...], o_index: dict[str, int],
          act: tuple[str, ...] | None, a_index: dict[str, int] | None,
          whole: Callable[[Any], bool], noun: str
          ) -> dict[tuple[int, ...], tuple[tuple[str, ...], Any]]:
    """Every (o,) (no actions) or (o, a) of a table -> (key parts, raw value), with "*".

    At an observation, a value for which ``whole`` is true stands for every action."""
    out: dict[tuple[int, ...], tuple[tuple[str, ...], Any]] = {}
    rows = _expand(w, (table,), raw, obs, o_index, "observation")
    for o in range(len(obs)):
        if o not in rows:
            raise w.error((table, obs[o]), f"missing {noun}",
                          f"give {table}.{obs[o]} (or a '*' entry for every observation)")
        o_key, o_raw = rows[o]
        if act is None or a_index is None or whole(o_raw):
            for a in range(len(act)) if act is not None else (None,):
                out[(o,) if a is None else (o, a)] = ((table, o_key), o_raw)
            continue
        acts = _expand(w, (table, o_key), o_raw, act, a_index, "action")
        for a in range(len(act)):
            if a not in acts:
                raise w.error((table, o_key, act[a]), f"missing {noun}",
                              f"give {table}.{o_key}.{act[a]} (or a '*' entry for every action)")
            out[(o, a)] = ((table, o_key, acts[a][0]), acts[a][1])
    return out


def _kernel(w: _Where, table: str, raw: Any, obs: tuple[str, ...], o_index: dict[str, int],
            act: tuple[str, ...] | None, a_index: dict[str, int] | None
            ) -> dict[tuple[int, ...], Entry]:
    """P (act given) or P0: every (o[, a]) gets a row, a distribution over next observations;
    in P one observation name at an observation is the row of every action."""
    out: dict[tuple[int, ...], Entry] = {}
    cells = _grid(w, table, raw, obs, o_index, act, a_index, lambda v: isinstance(v, str),
                  "row")
    for head, (parts, row) in cells.items():
        if isinstance(row, str) and row in o_index:  # moved to one observation surely
            row = {row: 1}
        if not isinstance(row, dict) or not row:
            raise w.error(parts, "expected a row: one observation name or a mapping "
                          "next observation -> probability",
                          f"write e.g. {{{obs[0]}: 0.5, {obs[-1]}: rest}}")
        if sum(1 for v in row.values() if v == REST) > 1:
            raise w.error(parts, "more than one 'rest' in a row", "keep one")
        for nxt, value in row.items():
            if nxt not in o_index:
                raise w.error((*parts, nxt), "unknown next observation",
                              f"use one of: {', '.join(obs)}")
            local = (("o", head[0]), ("next", o_index[nxt]))
            key = ".".join((*parts, nxt))
            out[(*head, o_index[nxt])] = \
                Entry(("num", 0.0), REST, key, local, True) if value == REST else \
                Entry(_parse(w, (*parts, nxt), value), str(value), key, local)
    return out


def _block(w: _Where, key: str, raw: Any, allowed: tuple[str, ...],
           required: tuple[str, ...]) -> dict[str, Any]:
    """A timed game's ``decision`` or ``time`` mapping, its keys checked."""
    if not isinstance(raw, dict):
        raise w.error((key,), "expected a mapping", f"write {key}: {{{', '.join(allowed)}}} "
                      "(docs/games.md)")
    for name in raw:
        if name not in allowed:
            raise w.error((key, name), "unknown key", f"valid keys: {', '.join(allowed)}")
    for name in required:
        if raw.get(name) is None:
            raise w.error((key, name), "missing", f"give {key}.{name} (docs/games.md)")
    return raw


def _rates(w: _Where, raw: Any, obs: tuple[str, ...], o_index: dict[str, int]
           ) -> dict[tuple[int, ...], Entry]:
    """time.G: observation -> next observation -> rate per round, off the diagonal only (the
    diagonal is minus the row's sum); an observation not listed does not move."""
    out: dict[tuple[int, ...], Entry] = {}
    rows = _expand(w, ("time", "G"), raw, obs, o_index, "observation")
    for o, (o_key, row) in rows.items():
        parts = ("time", "G", o_key)
        if not isinstance(row, dict):
            raise w.error(parts, "expected a mapping next observation -> rate",
                          f"write e.g. {{{obs[0]}: 0.5}} (rates per round)")
        for nxt, value in row.items():
            if nxt not in o_index:
                raise w.error((*parts, nxt), "unknown next observation",
                              f"use one of: {', '.join(obs)}")
            if o_index[nxt] == o and o_key != ANY:
                raise w.error((*parts, nxt), "a rate from an observation to itself",
                              "leave the diagonal out: it is minus the sum of the row's rates")
            if o_index[nxt] == o:  # "*" covers this observation too: no self-rate
                continue
            if value == REST:
                raise w.error((*parts, nxt), "'rest' is not a rate",
                              "give a rate per round (>= 0)")
            local = (("o", o), ("next", o_index[nxt]))
            out[(o, o_index[nxt])] = Entry(_parse(w, (*parts, nxt), value), str(value),
                                            ".".join((*parts, nxt)), local)
    return out


def _rewards(w: _Where, table: str, raw: Any, obs: tuple[str, ...], o_index: dict[str, int],
             act: tuple[str, ...] | None, a_index: dict[str, int] | None
             ) -> dict[tuple[int, ...], Entry]:
    """r (act given): observation -> value or action -> value; r0: observation -> value."""
    cells = _grid(w, table, raw, obs, o_index, act, a_index, lambda v: not isinstance(v, dict),
                  "entry")
    return {head: Entry(_parse(w, parts, value), str(value), ".".join(parts),
                        (("o", head[0]),)) for head, (parts, value) in cells.items()}
