"""Up-front size checks: the memory a spec asks for, estimated before anything is allocated.

A spec can ask for sizes no machine holds (``K: 1000000``, ``horizon.steps: 10^7`` x 100
replicas, ``solver.restarts: 10^9``); numpy would fail deep inside a run, or the kernel's OOM
killer would end it. Each command calls ``check`` after the spec is read and before any work;
the game's own arrays are checked by ``check_game`` before the game is built. A run whose
estimate exceeds the limit is refused with the size it would take; the limit is ``--max-memory``
(default: half of the machine's RAM, ``default_limit``).

Time is estimated too, from the counts of Python-level steps the run makes (iterations x steps
per solve, steps x blocks of replicas per simulation, steps x rollouts per training iteration)
times per-step costs measured on a small game (``SOLVE_STEP_S``, ``SIM_STEP_S``,
``TRAIN_STEP_S``); commands print the estimate before a run longer than a
minute. It is an order of magnitude (an upper one for solves that stop at their tolerance).

The estimates count float64 arrays (8 bytes) of the shapes the code allocates (glossary of
STYLE.md: mu (T+1, O), pi and Q (T, O, A), P (T, O, A, O)); they are upper estimates within a
small factor, not measurements. O = observations, A = actions, T = steps, R = replicas.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tmfcli.command_registry import COMMANDS, load
from tmfcli.errors import SpecError
from tmfcli.io.resolve import steps_of
from tmfcli.io.spec_types import GameSpec, Spec
from tmfcli.learning.registry import LEARNERS
from tmfcli.model.games import Game
from tmfcli.model.setting import ALL
from tmfcli.simulation.counts import BLOCK
from tmfcli.solvers.potential import newton_bytes

F = 8  # bytes per float64
SIM_BLOCK = BLOCK  # replicas per block in the simulator
TABLE_FACTOR = 16  # trajectory.csv: 6 columns of R (T+1) O rows, index grids, copies (measured)

SOLVE_STEP_S = 5e-6  # one solver iteration over one step of a small game (measured: 2-3e-6 s)
SIM_STEP_S = 1e-4    # one step of one block of replicas, static kernels (measured 4.4e-5 s,
SIM_DYNAMIC_S = 1e-3  # O = A = 3), kernels that depend on mu (queueing: 4.7e-4 s)
SIM_ENTRY_S = 1e-6   # per entry of pi (O A), static, or of P (O A O), mu-dependent (beach_bar
#                      n = 1000: 2.6e-3 s per step and block)
# tmf train, one outer iteration (benchmarks/bench_chain.py, measured on a loaded 2-core machine)
TRAIN_ITERATION_S = 1e-3  # fixed cost of one iteration (measured 1.2e-3 s at T = 2)
TRAIN_STEP_S = 1.5e-4  # numpy chain (some B_t > 1): one step of R <= 8 rollouts, static kernels
TRAIN_DYNAMIC_S = 2e-4  # the same when the kernels depend on mu (queueing)
TRAIN_ROLLOUT_S = 5e-6  # per rollout and step on the numpy chain
TRAIN_DECISION_S = 4e-7  # compiled chain (every B_t <= 1): rollout + critic per rollout-step
TRAIN_IDLE_S = 1e-7  # per observation and rollout-step when idle agents move (multinomials)
TRAIN_GRADIENT_S = 6e-8  # one inner gradient pass, per rollout-step (compiled)
TRAIN_EVAL_S = 2e-6  # the iteration's exact evaluation, per step (compiled flow, 2 backward)
TRAIN_EXACT_S = 2e-7  # one exact TMF-PG inner step, per step (compiled backward pass)
EPS_STEP_S = 5e-7    # eps_N on the compiled tagged chain, per replica, step and pass
NOTICE_S = 60.0      # announce runs estimated to take longer than this

# Ceilings on what a run implies, refused before any work (docs/spec.md, "Limits"): the work
# of a run in unit steps (one step of one replica, rollout, inner step or solver iteration:
# solve (1 + restarts) x iterations x steps; simulate replicas x steps; bound-check replicas x
# the steps of every cell; train iterations x inner steps x rollouts x steps), about a day at a
# microsecond each and 10^3 times the largest shipped experiment; and the cells of a sweep,
# each of which is validated as a spec before anything runs (1-10 ms each).
MAX_WORK = 10**13
MAX_CELLS = 10_000

_limit: int | None = None


def default_limit() -> int:
    """Half of the machine's physical memory (4 GiB when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def set_limit(limit: int | None) -> None:
    """Set the limit (``--max-memory``); None restores the default."""
    global _limit
    _limit = limit


def limit() -> int:
    return _limit if _limit is not None else default_limit()


def parse_size(text: str, option: str = "--max-memory") -> int:
    """'8G', '500M', '1.5GB', '1e9' (bytes) -> bytes; ValueError when it is not a size."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)i?[bB]?\s*",
                         text)
    if not match:
        raise ValueError(f"{option} {text!r} is not a size; write e.g. 8G, 500M or 2e9")
    value = float(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")
    if not 1 <= value < 2**63:
        raise ValueError(f"{option} {text!r} is out of range; write e.g. 8G")
    return int(value)


def duration(seconds: float) -> str:
    """Seconds as a short human duration: 45 s, 12 min, 3.5 h, 40 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.3g} days"


def human(n: float) -> str:
    """Bytes as a short human size: 512 B, 3.2 MB, 7.5 GB, 1.2e+06 TB."""
    try:
        n = float(n)
    except OverflowError:
        return "more than 1e+300 TB"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB" if n < 1e5 else f"{n:.1e} TB"


# --- the game ---------------------------------------------------------------------------------
def game_dims(game: GameSpec) -> tuple[int, int] | None:
    """(O, A) of a registered game from its parameters, without building it (None when the
    game's size does not follow from its parameters in a known way)."""
    params = game.params
    if game.file is not None or game.define is not None or game.module is not None:
        return None  # a game defined by the user: checked when built
    if game.name == "resource_selection":
        K = _int(params.get("K", 3))
        return (K, K) if K is not None else None
    if game.name == "queueing":
        K = _int(params.get("K", 3))
        return (K + 1, K + 1) if K is not None else None
    if game.name == "beach_bar":
        n = _int(params.get("n", 10))
        return (n, 3) if n is not None else None
    return None  # fixed small sizes, or sizes the game's own checks bound


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):
        return None


def _count(n: int) -> str:
    if n < 10**9:
        return str(n)
    try:
        return f"{float(n):.3g}"
    except OverflowError:
        return "more than 1e+308"


def game_bytes(O: int, A: int) -> int:
    """The arrays a game builds: a few (O, A, O) kernels."""
    return 3 * F * O * A * O


def check_game(game: GameSpec, source: str) -> None:
    """Refuse a game whose own arrays exceed the limit, before it is built."""
    dims = game_dims(game)
    if dims is None:
        return
    O, A = dims
    need = game_bytes(O, A)
    if need > limit():
        raise SpecError("game.params", f"{game.name} with {_count(O)} observations and "
                        f"{_count(A)} actions "
                        f"needs about {human(need)} for its kernels, over the limit of "
                        f"{human(limit())}", "use a smaller game, or raise --max-memory",
                        source)


# --- the runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """What a run would hold in memory at its peak, in bytes, and what dominates; its time
    estimate; and its work in unit steps (``MAX_WORK``) with the product that makes it."""

    total: int
    what: str
    seconds: float = 0.0
    work: int = 0
    work_what: str = ""


def sim_step_s(game: Game) -> float:
    """Seconds of one simulated step of one block of replicas (an upper estimate)."""
    O, A = game.n_obs, game.n_act
    if game.static_dynamics:
        return SIM_STEP_S + SIM_ENTRY_S * O * A
    return SIM_DYNAMIC_S + SIM_ENTRY_S * O * A * O


def _flow_bytes(O: int, A: int, T: int, static: bool) -> int:
    """One evaluated policy: flow, kernels along it (stacked unless static), values, policy."""
    kernels = T * O * A * O + T * O * O if not static else O * A * O
    return F * (kernels + 8 * T * O * A + 4 * (T + 1) * O)


def solve_bytes(spec: Spec, game: Game, restarts: int) -> Estimate:
    O, A, T = game.n_obs, game.n_act, steps_of(spec, game)
    per_run = _flow_bytes(O, A, T, game.static_dynamics) + F * 12 * spec.solver.iterations
    work = max(1.0, O * A * O / 50)  # the kernels' size slows each step of larger games
    seconds = SOLVE_STEP_S * (1 + restarts) * spec.solver.iterations * T * work
    newton = newton_bytes(game, T, idle=True) if spec.solver.algorithm == "potential" else 0
    return Estimate((3 + restarts) * per_run + game_bytes(O, A) + newton,
                    f"{1 + restarts} solve(s) of {T} steps, {O} observations, {A} actions"
                    + (f"; potential's Newton system {human(newton)}" if newton else ""),
                    seconds, (1 + restarts) * spec.solver.iterations * T,
                    f"{_count(1 + restarts)} solve(s) x {_count(spec.solver.iterations)} "
                    f"iterations x {_count(T)} steps")


def simulate_bytes(spec: Spec, game: Game, solve: bool) -> Estimate:
    O, A, T = game.n_obs, game.n_act, steps_of(spec, game)
    R = spec.simulate.replicas
    kept = T // spec.simulate.every + 2  # rows of trajectory.csv per replica and observation
    sim = F * (TABLE_FACTOR - 3) * R * kept * O + F * 3 * R * (T + 1) * O \
        + F * SIM_BLOCK * O * A * O * 3
    solved = solve_bytes(spec, game, 0)
    policy = solved.total if solve else _flow_bytes(O, A, T, game.static_dynamics)
    seconds = sim_step_s(game) * -(-R // SIM_BLOCK) * T + (solved.seconds if solve else 0.0)
    work, what = R * T, f"{R} replicas x {T} steps"
    if solve and solved.work > work:
        work, what = solved.work, solved.work_what
    return Estimate(sim + policy, f"{R} replicas x {T + 1} steps x {O} observations", seconds,
                    work, what)


def bound_check_bytes(spec: Spec, game: Game, solve: bool, workers: int) -> Estimate:
    O, A, static = game.n_obs, game.n_act, game.static_dynamics
    R = spec.bound_check.replicas
    cells = []
    for batch in spec.bound_check.batch:
        for n in spec.bound_check.agents:
            T = steps_of(spec, game, agents=n, batch=batch)
            label = f"N={n}, B={'schedule' if batch.kind == 'schedule' else batch.sizes(n)[0]}"
            cells.append((F * 4 * R * (T + 1) * O + _flow_bytes(O, A, T, static), T, label))
    cells.sort(reverse=True)
    seconds = sim_step_s(game) * -(-R // SIM_BLOCK) * sum(c[1] for c in cells) \
        / max(1, workers)
    concurrent = sum(c[0] for c in cells[:max(1, workers)])
    solved = solve_bytes(spec, game, 0)
    policy = solved.total if solve else _flow_bytes(O, A, steps_of(spec, game), static)
    biggest = cells[0]
    steps = sum(c[1] for c in cells)
    work, what = R * steps, f"{R} replicas x {steps} steps over {len(cells)} cells"
    if solve and solved.work > work:
        work, what = solved.work, solved.work_what
    return Estimate(concurrent + policy, f"the cell {biggest[2]}: {R} replicas x "
                    f"{biggest[1] + 1} steps x {O} observations",
                    seconds + (solved.seconds if solve else 0.0), work, what)


def train_bytes(spec: Spec, game: Game) -> Estimate:
    """Rollouts of ``train.rollouts`` N-agent systems over T steps, held together per iteration:
    counts n, m, c, X (moves o, a -> o'), Y (idle moves), rewards, the policy and the critic's
    totals (measured: about 1.2 KB per rollout and step for O = A = 3), twice for the copies of
    the gradient; the exact yardstick's flows; the epsilon streams its replicas."""
    O, A, T = game.n_obs, game.n_act, steps_of(spec, game)
    t = spec.train
    R = t.rollouts
    rollouts = 2 * F * R * (T + 1) * (O * A * O + O * O + 10 * O * A + 4 * O)
    flows = 3 * _flow_bytes(O, A, T, game.static_dynamics)
    seconds = t.iterations * _train_iteration_s(spec, game, T, t.algorithm)
    yardstick = LEARNERS[t.algorithm].yardstick if t.yardstick else None
    if yardstick is not None:  # run beside it (tmf-pg's tmf-pg-exact)
        seconds += t.iterations * _train_iteration_s(spec, game, T, yardstick)
    if spec.simulate.epsilon:
        replicas = spec.simulate.replicas
        seconds += EPS_STEP_S * replicas * T * 2 if _compiled_chain(spec, game) else \
            sim_step_s(game) * -(-replicas // SIM_BLOCK) * T * 2
    return Estimate(rollouts + flows + game_bytes(O, A),
                    f"{t.iterations} iterations of {R} rollouts x {T + 1} steps x {O} "
                    "observations", seconds, t.iterations * t.inner_steps * R * T,
                    f"{_count(t.iterations)} iterations x {_count(t.inner_steps)} inner steps "
                    f"x {_count(R)} rollouts x {_count(T)} steps")


def _compiled_chain(spec: Spec, game: Game) -> bool:
    """Whether train's rollouts (and eps_N) run the compiled chain: every B_t <= 1 with subset
    activation, kernels that compile (``tmfcli.simulation.chain``)."""
    agents = spec.population.agents
    if agents is None or spec.population.activation != "subset":
        return False
    one = max((spec.population.batch or ALL).sizes(int(agents))) <= 1
    return one and (game.static_dynamics or game.compiled_dynamics() is not None)


def _train_iteration_s(spec: Spec, game: Game, T: int, algorithm: str) -> float:
    """Seconds of one outer iteration of ``algorithm`` (an estimate; constants above)."""
    O, A = game.n_obs, game.n_act
    t = spec.train
    R, inner = t.rollouts, t.inner_steps
    size = max(1.0, O * A * O / 27)  # the constants were measured at O = A = 3
    evaluation = TRAIN_ITERATION_S + T * TRAIN_EVAL_S * size
    if algorithm == "tmf-pg-exact":
        return evaluation + T * inner * TRAIN_EXACT_S * size
    if _compiled_chain(spec, game):
        idle = 0.0 if game.idle_stays else TRAIN_IDLE_S * O
        return evaluation + R * T * (TRAIN_DECISION_S * size + idle + inner * TRAIN_GRADIENT_S)
    step = TRAIN_STEP_S if game.static_dynamics else TRAIN_DYNAMIC_S
    return evaluation + T * (step + R * TRAIN_ROLLOUT_S) \
        + R * T * O * inner * TRAIN_GRADIENT_S * size


def check(spec: Spec, command: str, restarts: int | None = None, solve: bool = True,
          workers: int = 1) -> Estimate:
    """Refuse ``command`` on ``spec`` when its estimated memory exceeds the limit.

    ``command`` is a key of ``tmfcli.command_registry.COMMANDS``, whose ``budget`` names the
    estimate and the keywords it takes: ``restarts`` (default: ``solver.restarts``), ``solve``
    (the policy is the spec's equilibrium, solved first), ``workers`` (cells of one run's
    own grid at once).
    """
    game = spec.build_game()
    given = {"restarts": spec.solver.restarts if restarts is None else restarts,
             "solve": solve, "workers": workers}
    budget = COMMANDS[command].budget
    estimate: Estimate = load(budget.estimate)(spec, game, **{k: given[k] for k in budget.takes})
    if estimate.total > limit():
        raise SpecError("", f"tmf {command} would need about {human(estimate.total)} of "
                        f"memory ({estimate.what}), over the limit of {human(limit())}",
                        "ask for fewer steps, replicas, rollouts, restarts or agents, or raise "
                        "--max-memory", spec.source)
    if estimate.work > MAX_WORK:
        raise SpecError("", f"tmf {command} would do about {_count(estimate.work)} steps of "
                        f"work ({estimate.work_what}), over the limit of {_count(MAX_WORK)} "
                        f"(docs/spec.md, Limits)", "ask for fewer iterations, inner steps, "
                        "rollouts, replicas, restarts or steps", spec.source)
    return estimate


def check_cells(counts: list[tuple[str, int]], cases: int, source: str) -> None:
    """Refuse a sweep of more than ``MAX_CELLS`` cells from the number of values of each
    axis (``counts``) and of ``cases``, before any cell is expanded or validated."""
    total = cases
    for _, n in counts:
        total *= n
    if total > MAX_CELLS:
        parts = [f"{n} values of {key}" for key, n in counts] + \
            ([f"{cases} cases"] if cases > 1 else [])
        raise SpecError("", f"the sweep would have {_count(total)} cells ({' x '.join(parts)}), "
                        f"over the limit of {MAX_CELLS} cells",
                        "sweep fewer values, or split it into several sweeps (each with its "
                        "own --out)", source)
