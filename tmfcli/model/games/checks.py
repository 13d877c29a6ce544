"""Checks that a game is a game: shapes, stochastic kernels, finite rewards, at probe mu.

Probe distributions are the vertices of the simplex (every observation alone), the initial
distribution, the uniform one, random interior points (flat Dirichlet) and points near the
faces (sparse Dirichlet), where expressions such as s / (s + mu(q)) or log(mu(o)) fail first.
At every probe and every (o, a):

    P(.|o,a,mu) >= 0,  sum_o' P(o'|o,a,mu) = 1 (to 1e-9),  likewise P0(.|o,mu);
    r(o,a,mu), r0(o,mu) finite;  shapes (..., O, A, O), (..., O, O), (..., O, A), (..., O).

For data games the expressions are also checked for a division by zero, the log of a number
<= 0 and the square root of a negative number, at every probe where they are evaluated. The
first failure raises ``SpecError`` naming the file, the table entry and the fix. ``quick_check``
(run when any spec is loaded) uses a few probes within a small budget of evaluated numbers;
``check_game`` (``tmf validate``) uses many.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tmfcli import seeds
from tmfcli.errors import SpecError
from tmfcli.model.games.base import Array, Game
from tmfcli.model.games.timed import TimedGame

TOLERANCE = 1e-9
QUICK_BUDGET = 200_000    # numbers of P evaluated by quick_check
FULL_BUDGET = 4_000_000   # and by check_game at once
FULL_TOTAL = 50_000_000   # and by check_game in all (fewer probes for large games)


@dataclass(frozen=True)
class Checked:
    """What ``check_game`` verified: how many probes, the worst deviations it saw."""

    probes: int
    times: tuple[int, ...]
    worst_row_error: float
    smallest_entry: float
    reward_low: float
    reward_high: float
    dynamics_vary: bool


def probes(game: Game, rng: np.random.Generator, interior: int, max_vertices: int) -> Array:
    """Probe distributions (S, O): mu0, uniform, vertices (all, or a random subset of
    ``max_vertices``), ``interior`` flat-Dirichlet and as many sparse-Dirichlet points."""
    O = game.n_obs
    eye = np.eye(O)
    vertices = eye if O <= max_vertices else eye[rng.choice(O, max_vertices, replace=False)]
    parts = [np.asarray(game.mu0, dtype=float)[None, :], np.full((1, O), 1.0 / O), vertices]
    if interior:
        parts += [rng.dirichlet(np.ones(O), size=interior),
                  rng.dirichlet(np.full(O, 0.1), size=interior)]
    return np.concatenate(parts)


def place(game: Game, table: str, index: tuple[int, ...]) -> str:
    """Where an entry of a game's table is defined, for messages (a data game's file:key)."""
    entry_key = getattr(game, "entry_key", None)
    if entry_key is not None:
        return str(entry_key(table, index))
    labels = [game.obs_labels[index[0]] if game.obs_labels else str(index[0])]
    if table in ("P", "r") and len(index) > 1:
        labels.append(game.act_labels[index[1]] if game.act_labels else str(index[1]))
    return f"game {game.name}:{table}[{', '.join(labels)}]"


def show_mu(game: Game, mu: Array) -> str:
    """A probe as 'mu = (a: 0.5, b: 0.5)', naming at most 6 observations with mass."""
    labels = game.obs_labels or tuple(str(i) for i in range(game.n_obs))
    mass = [(labels[i], mu[i]) for i in np.flatnonzero(mu > 0)]
    text = ", ".join(f"{name}: {value:.3g}" for name, value in mass[:6])
    return f"mu = ({text}{', ...' if len(mass) > 6 else ''})"


def _fail(game: Game, table: str, index: tuple[int, ...], problem: str, fix: str) -> SpecError:
    return SpecError(place(game, table, index), problem, fix)


def check_table(game: Game, table: str, values: Array, shape: tuple[int, ...], mu: Array,
                kernel: bool, steps: np.ndarray | None = None) -> None:
    """A table evaluated at the distributions mu (S, O): values (S, *shape) finite and, for a
    kernel, rows of non-negative entries summing to 1 (to ``TOLERANCE``). ``tmf validate``
    checks its probes with it, the engine what it evaluates at run time (``steps`` (S,): the
    step of each distribution, named in the message)."""
    S = mu.shape[0]
    if values.shape != (S, *shape):
        raise SpecError(f"game {game.name}:{table}", f"has shape {values.shape[1:]} for one mu,"
                        f" expected {shape}", "return arrays of the documented shapes "
                        "(docs/games.md)")

    def at(s: int) -> str:
        where = show_mu(game, mu[s])
        return where if steps is None else f"step {int(steps[s])}, {where}"

    bad = ~np.isfinite(values)
    if bad.any():
        s, *index = np.argwhere(bad)[0]
        raise _fail(game, table, tuple(int(i) for i in index[:len(shape) - (1 if kernel else 0)]),
                    f"is not finite at {at(int(s))}",
                    "guard divisions and logs, e.g. max(x, 1e-12)")
    if not kernel:
        return
    if values.min() < -TOLERANCE:
        s, *index = np.argwhere(values < -TOLERANCE)[0]
        nxt = game.obs_labels[index[-1]] if game.obs_labels else index[-1]
        raise _fail(game, table, tuple(int(i) for i in index[:-1]),
                    f"gives a negative probability {values[(s, *index)]:.6g} to {nxt!r} at "
                    f"{at(int(s))}", "keep every entry of a kernel row >= 0")
    error = np.abs(values.sum(axis=-1) - 1.0)
    if error.max() > TOLERANCE:
        s, *index = np.unravel_index(int(np.argmax(error)), error.shape)
        total = values.sum(axis=-1)[(s, *index)]
        raise _fail(game, table, tuple(int(i) for i in index),
                    f"row sums to {total:.12g}, not 1, at {at(int(s))}",
                    "make the row a distribution over next observations (e.g. write 'rest' "
                    "for one entry)")


def _call(game: Game, method: str, mu: Array, t: int) -> Array:
    """game.<method>(mu, t); an exception raised by a game from outside tmf (a plugin or a
    module game) is that game's problem, reported on one line like any other input error."""
    if type(game).__module__.startswith("tmfcli."):
        return np.asarray(getattr(game, method)(mu, t), dtype=float)
    try:
        return np.asarray(getattr(game, method)(mu, t), dtype=float)
    except Exception as err:
        raise SpecError(f"game {game.name}:{method}", f"raised {type(err).__name__}: {err} "
                        f"on a batch of {mu.shape[0]} distributions",
                        "fix the game's code; every function takes mu with leading batch axes "
                        "(docs/games.md)") from None


def _evaluate(game: Game, mu: Array, times: tuple[int, ...], budget: int) -> Checked:
    O, A = game.n_obs, game.n_act
    mu0 = np.asarray(game.mu0, dtype=float)
    if mu0.shape != (O,) or not np.all(np.isfinite(mu0)) or mu0.min() < 0 or \
            abs(mu0.sum() - 1) > TOLERANCE:
        raise SpecError(f"game {game.name}:mu0", f"is not a distribution over {O} observations",
                        "give non-negative probabilities that sum to 1")
    if len(game.obs_labels) not in (0, O) or len(game.act_labels) not in (0, A):
        raise SpecError(f"game {game.name}:labels", "obs_labels/act_labels do not match n_obs/"
                        "n_act", "give one label per observation and per action")
    check_expressions = getattr(game, "check_expressions", None)
    chunk = max(1, budget // max(1, O * A * O))
    worst, smallest, low, high, vary = 0.0, np.inf, np.inf, -np.inf, False
    first: dict[str, Array] = {}
    for t in times:
        for start in range(0, mu.shape[0], chunk):
            part = mu[start:start + chunk]
            if check_expressions is not None:
                check_expressions(part, t)
            values = {"r": _call(game, "reward", part, t),
                      "r0": _call(game, "idle_reward", part, t)}
            # declared static kernels are what the engine evaluates once: two probes suffice
            kernel_mu = part[:2] if game.static_dynamics else part
            if not game.static_dynamics or (start == 0 and t == times[0]):
                values.update(P=_call(game, "transition", kernel_mu, t),
                              P0=_call(game, "idle_transition", kernel_mu, t))
            shapes = {"P": (O, A, O), "P0": (O, O), "r": (O, A), "r0": (O,)}
            for table, array in values.items():
                kernel = table in ("P", "P0")
                check_table(game, table, array, shapes[table], kernel_mu if kernel else part,
                             kernel)
                if kernel:
                    ref = first.setdefault(table, array[0])
                    vary = vary or bool(np.abs(array - ref).max() > 0)
                    worst = max(worst, float(np.abs(array.sum(axis=-1) - 1).max()))
                    smallest = min(smallest, float(array.min()))
                else:
                    low, high = min(low, float(array.min())), max(high, float(array.max()))
            if game.static_dynamics and vary:
                raise SpecError(f"game {game.name}:P", "declares static dynamics but its "
                                "kernels change with mu or t", "set static_dynamics = False")
            if game.idle_stays and "P0" in values and not np.array_equal(
                    values["P0"], np.broadcast_to(np.eye(O), values["P0"].shape)):
                raise SpecError(f"game {game.name}:P0", "declares idle_stays but P0 is not "
                                "the identity", "set idle_stays = False")
    return Checked(probes=int(mu.shape[0]), times=times, worst_row_error=worst,
                   smallest_entry=smallest, reward_low=low, reward_high=high,
                   dynamics_vary=vary)


def _check_compiled(game: Game, mu: Array) -> None:
    """A compiled kernel (``Game.compiled_dynamics``) must write what ``transition`` and
    ``idle_transition`` return, at every probe (to 1e-12)."""
    compiled = game.compiled_dynamics() if not game.static_dynamics else None
    if compiled is None:
        return
    kernel, params = compiled
    O, A = game.n_obs, game.n_act
    for probe, t in itertools.product(mu, range(max(1, game.phases))):
        P, P0 = np.empty(O * A * O), np.empty(O * O)
        kernel(np.ascontiguousarray(probe), t, np.ascontiguousarray(params, dtype=np.float64),
               P, P0)
        for table, got, want in (("P", P.reshape(O, A, O), _call(game, "transition",
                                                                 probe[None], t)[0]),
                                 ("P0", P0.reshape(O, O), _call(game, "idle_transition",
                                                                probe[None], t)[0])):
            gap = np.abs(got - want)
            if not gap.max() <= 1e-12:
                index = np.unravel_index(int(np.nanargmax(gap)), gap.shape)
                raise _fail(game, table, tuple(int(i) for i in index[:-1]),
                            f"compiled kernel differs from the numpy one by {gap.max():.3g} "
                            f"at {show_mu(game, probe)}", "make compiled_dynamics() write the "
                            "same numbers as transition() and idle_transition()")


POTENTIAL_FIX = "make potential() return d r(o, a, mu) / d mu(o) and d r0(o, mu) / d mu(o) " \
    "for mu (..., O), or return None (solver.algorithm auto then picks mirror-descent)"


def _curvatures(game: Game, mu: Array) -> Array | None:
    """The declared potential's curvatures (2, S, O) at the probes mu (S, O), or None when the
    game declares none; they must be finite and <= 0. A game from outside tmf that raises is
    reported on one line, like its other functions (``_call``)."""
    where = f"game {game.name}:potential"
    try:
        potential = game.potential()
        if potential is None:
            return None
        declared = np.stack([np.broadcast_to(np.asarray(f(mu), dtype=float), mu.shape)
                             for f in (potential.curvature, potential.idle_curvature)])
    except Exception as err:
        if type(game).__module__.startswith("tmfcli."):
            raise
        raise SpecError(where, f"raised {type(err).__name__}: {err}", POTENTIAL_FIX) from None
    bad = ~(np.isfinite(declared) & (declared <= 0))
    if bad.any():
        probe = mu[int(np.argwhere(bad)[0][1])]
        raise SpecError(where, f"declares a curvature that is not finite and <= 0 at "
                        f"{show_mu(game, probe)}", POTENTIAL_FIX)
    return declared


def _check_potential(game: Game, mu: Array) -> None:
    """A declared potential (``Game.potential``) must give curvatures <= 0 that match central
    differences of the rewards in mu(o) (the crowd terms depend on the agent's own observation
    only), at interior probes, to 1e-5 relative. (A wrong one slows the ``potential`` solver or
    stalls it; it cannot make it report a wrong exploitability, which is always evaluated.)"""
    O, h = game.n_obs, 1e-6
    mu = np.clip(mu, 2 * h, None)
    mu = mu / mu.sum(axis=1, keepdims=True)
    curvatures = _curvatures(game, mu)
    if curvatures is None:
        return
    for probe, declared in zip(mu, np.swapaxes(curvatures, 0, 1), strict=True):
        for o in range(O):
            step = np.where(np.arange(O) == o, h, 0.0)
            dr = (_call(game, "reward", (probe + step)[None], 0)[0]
                  - _call(game, "reward", (probe - step)[None], 0)[0]) / (2 * h)
            dr0 = (_call(game, "idle_reward", (probe + step)[None], 0)[0]
                   - _call(game, "idle_reward", (probe - step)[None], 0)[0]) / (2 * h)
            want = np.zeros((O, game.n_act))
            want[o] = declared[0, o]
            want0 = np.where(np.arange(O) == o, declared[1, o], 0.0)
            for table, got, expected in (("r", dr, want), ("r0", dr0, want0)):
                if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
                    raise SpecError(f"game {game.name}:potential", f"the declared curvature "
                                    f"does not match d {table} / d mu({game.obs_labels[o]}) "
                                    f"at {show_mu(game, probe)}", POTENTIAL_FIX)


def _check_time(game: Game, mu: Array) -> None:
    """A timed game's generator G (S, O, O) and flow reward f (S, O) at the probes: finite,
    rates off the diagonal >= 0, rows summing to 0 (MODEL.md section 9)."""
    if not isinstance(game, TimedGame):
        return
    O = game.n_obs
    for table, method, shape in (("G", "generator", (O, O)), ("f", "flow_reward", (O,))):
        values = _call_time(game, method, mu)
        check_table(game, table, values, shape, mu, kernel=False)
        if table == "f":
            continue
        off = values.copy()
        off[:, np.arange(O), np.arange(O)] = 0.0
        if off.min() < -TOLERANCE:
            s, o, nxt = (int(i) for i in np.argwhere(off < -TOLERANCE)[0])
            raise _fail(game, "G", (o, nxt), f"is a negative rate {values[s, o, nxt]:.6g} at "
                        f"{show_mu(game, mu[s])}", "keep every rate off the diagonal >= 0 "
                        "(a rate per round of moving o -> o')")
        total = np.abs(values.sum(axis=-1))
        if total.max() > TOLERANCE:
            s, o = (int(i) for i in np.unravel_index(int(np.argmax(total)), total.shape))
            raise _fail(game, "G", (o,), f"row sums to {values[s, o].sum():.12g}, not 0, at "
                        f"{show_mu(game, mu[s])}", "make the diagonal minus the sum of the "
                        "row's rates")


def _call_time(game: Game, method: str, mu: Array) -> Array:
    """game.generator(mu) or game.flow_reward(mu), reported on one line if a game from
    outside tmf raises (as ``_call``)."""
    try:
        return np.asarray(getattr(game, method)(mu), dtype=float)
    except Exception as err:
        if type(game).__module__.startswith("tmfcli."):
            raise
        raise SpecError(f"game {game.name}:{method}", f"raised {type(err).__name__}: {err} "
                        f"on a batch of {mu.shape[0]} distributions",
                        "fix the game's code; every function takes mu with leading batch axes "
                        "(docs/games.md)") from None


def quick_check(game: Game) -> Checked:
    """The cheap check every command runs: mu0, uniform and a few vertices and interior points,
    within ``QUICK_BUDGET`` evaluated kernel numbers."""
    rng = seeds.fixed(seeds.GAME_QUICK_CHECK)
    per_probe = max(1, game.n_obs * game.n_act * game.n_obs)
    room = max(2, QUICK_BUDGET // per_probe)
    vertices = min(game.n_obs, max(0, room - 2 - 8))
    mu = probes(game, rng, interior=4 if room >= 2 + vertices + 8 else 0,
                max_vertices=vertices)
    _curvatures(game, mu[(mu > 0).all(axis=1)])  # interior: a curvature may blow up at 0
    _check_time(game, mu[:max(room, 2)])
    return _evaluate(game, mu[:max(room, 2)], (0, 1) if isinstance(game, TimedGame) else (0,),
                     QUICK_BUDGET)


def check_game(game: Game, rng: np.random.Generator, interior: int = 64,
               times: tuple[int, ...] = (0, 1)) -> Checked:
    """The full check of ``tmf validate``: every vertex (up to 500), ``interior`` flat and
    ``interior`` sparse Dirichlet points, at the steps ``times``."""
    mu = probes(game, rng, interior=interior, max_vertices=500)
    _check_time(game, mu)
    _check_compiled(game, mu[:20])
    _check_potential(game, rng.dirichlet(np.ones(game.n_obs), size=4))
    size = game.n_obs * game.n_act * game.n_obs * len(times)
    room = max(4, FULL_TOTAL // max(1, size))
    if game.static_dynamics:
        room = mu.shape[0]  # kernels are evaluated at two probes only
    if mu.shape[0] > room:  # keep mu0 and uniform, and a random subset of the others
        keep = np.concatenate([[0, 1], 2 + rng.choice(mu.shape[0] - 2, room - 2, replace=False)])
        mu = mu[np.sort(keep)]
    return _evaluate(game, mu, times, FULL_BUDGET)
