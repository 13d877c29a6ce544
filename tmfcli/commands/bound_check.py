"""``tmf bound-check``: the finite-population gap measured over N and B, fitted, and bounded.

For every regime (a batch form of ``bound_check.batch``) and every N of ``bound_check.agents``
(a *cell*), ``bound_check.replicas`` replicas of the N-agent system are simulated exactly under
ONE policy for the whole sweep, and compared with the mean-field flow mu_bar of the same
(time-indexed) policy in the same cell's setting (MODEL.md sections 4 and 5). Per replica:

    e_max      = max_t  ||mu_hat_t - mu_bar_t||_1        (t = 0..T)
    e_mean     = mean_t ||mu_hat_t - mu_bar_t||_1
    return_gap = |G - J|,   G the population-average return, J the mean-field value
    eps_n      = G_tag^sigma - G_tag^pi: the gain of one tagged agent that plays the mean-field
                 best response sigma to the cell's flow while N - 1 agents play the policy,
                 paired replicas (``tmfcli.simulation.epsilon``; a lower bound on eps_N)
    eps_mf     = J*(mu_bar) - J(pi; mu_bar): the mean-field exploitability of the cell's policy,
                 exact (the same in every replica), the limit of eps_n as N grows

and per cell the mean over replicas with a bootstrap 95% interval, beside the reference bound
(``tmfcli.analysis.bound``). Per regime the log-log slope against N is fitted
(``tmfcli.analysis.fit``).

**One policy, many settings.** The policy has T_policy steps: those of the spec's own setting
(``setting(spec)``). A cell with T_cell steps uses at its step t the policy's step

    s(t) = floor(t T_policy / T_cell),

i.e. the step reached after the same fraction of the horizon. In rounds (T = ceil(H N / B)) that
is the same number of rounds elapsed: with a synchronous spec (T_policy = H) step t of a regime
with active fraction alpha uses the policy of round floor(t alpha) (exactly, when B divides H N).
With a horizon in steps every cell has T_policy steps and s(t) = t.

**Files** (in the result directory): ``replicas.csv`` (one row per replica), ``cells.csv`` (one
row per cell and metric), ``fits.csv`` (one row per regime and metric), ``bound-check.png``
(e_max against N with the bound), ``progress.yaml`` while the sweep is partial,
``manifest.yaml`` last. The sweep is written in a stage beside the result directory
(``results.sweep_stage``: ``.<name>.tmf-sweep-<hash>``) and swapped in whole when complete, so a
complete result of another spec in the directory stays intact until the new one is whole. Both
per-cell tables are rewritten atomically after every cell, so an interrupted sweep keeps its
finished cells, and a rerun of the same spec and policy resumes from them (the stage is locked
while a sweep runs). A cell's seed depends only on (spec seed, regime index, N), so results do
not depend on the order of cells, on resuming or on --workers.

**Interrupts.** SIGINT and SIGTERM to the parent stop the sweep at once: worker processes are
terminated (they ignore SIGINT themselves and die with the parent, even after SIGKILL, through
the Linux parent-death signal), finished cells are kept, and the rerun resumes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmfcli import seeds
from tmfcli.analysis.bound import (
    Constants,
    game_constants,
    initial_error,
    max_allowance,
    passed,
    reference_bound,
    sampled_policy_lipschitz,
    verdict,
)
from tmfcli.analysis.fit import bootstrap_means, fit_slope, interval
from tmfcli.analysis.fluctuations import (
    TOLERANCE,
    constant_verdict,
    ratio_interval,
    try_predict,
)
from tmfcli.analysis.plots import bound_check_figure
from tmfcli.command_registry import Options
from tmfcli.commands.policy_choice import cell_policy, choose_policy, policy_steps
from tmfcli.commands.solve import Progress
from tmfcli.errors import ResultsError
from tmfcli.io import results, user_files
from tmfcli.io.resolve import setting
from tmfcli.io.spec_types import Spec
from tmfcli.model.flow import mean_field_flow
from tmfcli.model.games.base import Array
from tmfcli.model.setting import Batch
from tmfcli.model.values import backward

METRICS = ("e_max", "e_mean", "return_gap", "eps_n", "eps_mf")
COMMAND = "bound-check"
PROGRESS = "progress.yaml"
REPLICAS = "replicas.csv"
CELLS = "cells.csv"
FITS = "fits.csv"
FIGURE = "bound-check.png"
# what a resumable stage may hold (results.check_stage): anything else is not tmf's to swap in
STAGE_FILES = (PROGRESS, REPLICAS, CELLS, FITS, FIGURE, results.MANIFEST, ".lock")


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One (regime, N) of the sweep; ``seed`` is derived from (spec seed, regime index, N)."""

    regime: int
    label: str
    batch: Batch
    agents: int
    seed: int


def default_workers() -> int:
    """The CPU count, at most 2 (cells are independent; more rarely helps at these sizes)."""
    return max(1, min(2, os.cpu_count() or 1))


def cell_seed(seed: int, regime: int, agents: int) -> int:
    """A 63-bit seed (fits a CSV integer column) that depends only on the spec's seed, the
    regime's index and N."""
    return seeds.integer(seed, seeds.BOUND_CELL, regime, agents)


def grid(spec: Spec) -> list[Cell]:
    """All cells, regime by regime, N in the order of the spec."""
    bc = spec.bound_check
    return [Cell(regime=i, label=b.label, batch=b, agents=n,
                 seed=cell_seed(spec.seed, i, n))
            for i, b in enumerate(bc.batch) for n in bc.agents]


# --------------------------------------------------------------------------------------------
# one cell
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellRun:
    """What one cell measured: ``values`` (R, 5) per replica for METRICS, ``returns`` (R,)."""

    cell: Cell
    B: int | str
    steps: int
    J: float
    bound_max: float
    bound_mean: float
    values: Array
    returns: Array
    elapsed_s: float
    c_max: float = float("nan")     # the linear-noise constants of the cell (``predict``)
    c_max_se: float = float("nan")
    c_mean: float = float("nan")


def run_cell(spec: Spec, policy: Any, T_policy: int, cell: Cell,
             constants: Constants) -> CellRun:
    """Simulate one cell and compare with the mean-field flow of the same time-indexed policy."""
    from tmfcli.model.policy import TabularPolicy, on_flow
    from tmfcli.simulation.counts import gaps, simulate
    from tmfcli.simulation.epsilon import tagged_returns

    start = time.perf_counter()
    s = setting(spec, agents=cell.agents, batch=cell.batch)
    game = s.game
    pol = cell_policy(policy, policy_steps(s.T, T_policy, s.stages))
    pi = on_flow(s, pol)
    flow = mean_field_flow(s, pi)
    # J as in exploitability.evaluate(s, pi).J, without the best-response pass it also makes
    J = float(flow.mu[0] @ backward(flow, s.gamma, pi).V[0])
    best_values = backward(flow, s.gamma, None)
    best = TabularPolicy(best_values.policy)  # the deviation sigma of eps_n
    eps_mf = float(flow.mu[0] @ best_values.V[0]) - J
    pop = spec.population
    rollouts = simulate(s, pol, spec.bound_check.replicas,
                        seed=seeds.sequence(cell.seed, seeds.CELL_SIMULATE),
                        activation=pop.activation, init=pop.init)
    e_max, e_mean = gaps(rollouts, flow.mu)
    returns = np.asarray(rollouts.returns, dtype=float)
    tagged = tagged_returns(s, pol, spec.bound_check.replicas,
                            seeds.sequence(cell.seed, seeds.CELL_EPS_N), deviation=best,
                            activation=pop.activation, init=pop.init)
    values = np.column_stack([e_max, e_mean, np.abs(returns - J), tagged.gains,
                              np.full(returns.shape, eps_mf)])
    # the linear-noise constants of this cell's setting (its own T, alpha_t and N)
    pred, _ = try_predict(s, pol, seeds.sequence(cell.seed, seeds.CELL_PREDICTION),
                          pop.activation, pop.init, refined=False, mu_bar=flow.mu)
    nan = float("nan")  # no prediction (too large, or kernels not finite near the flow)
    e0 = initial_error(game.n_obs, cell.agents, pop.init, game.mu0)
    bound = reference_bound(s.alpha, constants, game.n_obs, cell.agents, e0)
    sizes = cell.batch.sizes(cell.agents)  # a schedule is written as its cycle "1/5"
    B: int | str = "/".join(map(str, sizes)) if cell.batch.kind == "schedule" else sizes[0]
    return CellRun(cell=cell, B=B, steps=s.T, J=J, bound_max=float(bound[-1]),
                   bound_mean=float(bound.mean()), values=values, returns=returns,
                   elapsed_s=time.perf_counter() - start,
                   c_max=nan if pred is None else pred.c_max,
                   c_max_se=nan if pred is None else pred.c_max_se,
                   c_mean=nan if pred is None else pred.c_mean)


def _run_cell(job: tuple[Spec, Any, int, Constants], cell: Cell) -> CellRun:
    """``run_cell`` with the sweep's fixed arguments first (picklable with ``partial``)."""
    spec, policy, T_policy, constants = job
    return run_cell(spec, policy, T_policy, cell, constants)


def boot_rng(cell: Cell) -> np.random.Generator:
    """The bootstrap generator of a cell (``seeds.CELL_BOOTSTRAP``)."""
    return seeds.generator(cell.seed, seeds.CELL_BOOTSTRAP)


def replica_rows(run: CellRun) -> pd.DataFrame:
    c = run.cell
    R = run.values.shape[0]
    return pd.DataFrame({
        "regime": c.label, "N": c.agents, "B": run.B, "steps": run.steps,
        "replica": np.arange(R), "e_max": run.values[:, 0], "e_mean": run.values[:, 1],
        "return": run.returns, "J": run.J, "return_gap": run.values[:, 2],
        "eps_n": run.values[:, 3], "eps_mf": run.values[:, 4], "seed": c.seed})


def cell_rows(run: CellRun) -> pd.DataFrame:
    """One row per metric: mean over replicas, bootstrap interval, reference bound."""
    c = run.cell
    boot = bootstrap_means(run.values, boot_rng(c))
    low, high = interval(boot)
    bounds = (run.bound_max, run.bound_mean, np.nan, np.nan, np.nan)
    root = np.sqrt(c.agents)
    nan = np.nan
    predicted = np.array([run.c_max / root, run.c_mean / root, nan, nan, nan])
    predicted_se = np.array([run.c_max_se / root, 0.0, nan, nan, nan])
    estimate = run.values.mean(axis=0)
    ratios = np.array([ratio_interval(float(e), float(lo), float(hi), float(p), float(se))
                       for e, lo, hi, p, se in zip(estimate, low, high, predicted,
                                                   predicted_se, strict=True)])
    return pd.DataFrame({
        "regime": c.label, "N": c.agents, "B": run.B, "steps": run.steps,
        "replicas": run.values.shape[0], "metric": list(METRICS),
        "estimate": estimate, "ci_low": low, "ci_high": high,
        "bound": bounds, "predicted": predicted, "predicted_se": predicted_se,
        "ratio": ratios[:, 0], "ratio_low": ratios[:, 1], "ratio_high": ratios[:, 2],
        "seed": c.seed})


# --------------------------------------------------------------------------------------------
# fits and verdicts
# --------------------------------------------------------------------------------------------
def fit_table(spec: Spec, replicas: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per regime and metric: slope of log(estimate) on log N with its bootstrap interval.

    The e_max row carries the regime's verdict (``tmfcli.analysis.bound.verdict``) and the
    worst ratio measured / bound over N; the other metrics are reported, not judged.
    """
    rows = []
    for cell_list in _by_regime(grid(spec)):
        label = cell_list[0].label
        N = np.array([c.agents for c in cell_list], dtype=float)
        boots, estimates = [], []
        for c in cell_list:
            mine = replicas[(replicas["regime"].astype(str) == label)
                            & (replicas["N"] == c.agents)]
            values = mine.sort_values("replica")[list(METRICS)].to_numpy(dtype=float)
            boots.append(bootstrap_means(values, boot_rng(c)))
            estimates.append(values.mean(axis=0))
        boot = np.stack(boots, axis=-1)     # (n_boot, metric, k)
        est = np.stack(estimates, axis=-1)  # (metric, k)
        regime_cells = cells[cells["regime"].astype(str) == label]
        steps = regime_cells.drop_duplicates("N").set_index("N").loc[N.astype(int), "steps"]
        allowance = max_allowance(N, steps.to_numpy(dtype=float))
        for m, metric in enumerate(METRICS):
            fit = fit_slope(N, est[m], boot[:, m, :])
            mine = regime_cells[regime_cells["metric"] == metric]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (mine["estimate"] / mine["bound"]).to_numpy(dtype=float)
            worst = float(np.max(ratio)) if metric in ("e_max", "e_mean") else np.nan
            judged = verdict(fit.ci_low, fit.ci_high, worst, allowance) \
                if metric == "e_max" else "n/a"
            last = mine.sort_values("N").iloc[-1] if len(mine) else None
            at_largest = [float(last[k]) if last is not None and k in last else np.nan
                          for k in ("ratio", "ratio_low", "ratio_high")]
            rows.append({"regime": label, "metric": metric, "slope": fit.slope,
                         "ci_low": fit.ci_low, "ci_high": fit.ci_high, "worst_ratio": worst,
                         "allowance": allowance if metric == "e_max" else np.nan,
                         "verdict": judged, "ratio": at_largest[0],
                         "ratio_low": at_largest[1],
                         "ratio_high": at_largest[2],
                         "constant_verdict": constant_verdict(at_largest[1], at_largest[2])
                         if metric == "e_max" else "n/a"})
    return pd.DataFrame(rows)


def _by_regime(cells: list[Cell]) -> list[list[Cell]]:
    out: dict[int, list[Cell]] = {}
    for c in cells:
        out.setdefault(c.regime, []).append(c)
    return list(out.values())


# --------------------------------------------------------------------------------------------
# the policy of the sweep
# --------------------------------------------------------------------------------------------
def sweep_constants(spec: Spec, policy: Any, T_policy: int) -> Constants:
    """Lipschitz constants of the game (analytic or sampled) and of the policy (0 if tabular)."""
    from tmfcli.model.policy import TabularPolicy

    game = setting(spec).game
    longest = max(setting(spec, agents=c.agents, batch=c.batch).T for c in grid(spec))
    times = tuple(int(t) for t in np.unique(np.linspace(0, longest - 1, 5).astype(int)))
    rng = seeds.generator(spec.seed, seeds.BOUND_CONSTANTS)
    lip, source = game_constants(game, rng, times)
    if isinstance(policy, TabularPolicy):
        L_pi, policy_source = 0.0, "tabular"
    else:
        policy_times = tuple(int(t) for t in np.unique(
            np.linspace(0, T_policy - 1, 5).astype(int)))
        L_pi = sampled_policy_lipschitz(policy.probs, game.n_obs, rng, policy_times)
        policy_source = "sampled"
    return Constants(L_P=lip.L_P, L_0=lip.L_0, L_pi=L_pi, source=source,
                     policy_source=policy_source)


# --------------------------------------------------------------------------------------------
# the sweep with its result directory
# --------------------------------------------------------------------------------------------
@dataclass
class Report:
    """The outcome of a sweep: its tables, constants, timings and whether every regime passed."""

    directory: Path
    cells: pd.DataFrame
    fits: pd.DataFrame
    constants: Constants
    policy: str
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    policy_converged: bool | None = None  # None unless the policy was solved
    stop_reason: str = ""

    @property
    def passed(self) -> bool:
        judged = self.fits[self.fits["metric"] == "e_max"]["verdict"]
        return bool(all(passed(v) for v in judged))


def sweep_hash(spec: Spec, key: str) -> str:
    """The hash of a sweep: the resolved spec, the command and the policy key."""
    return results.spec_hash(spec, f"{COMMAND} --policy {key}")


def reuse(key: str, directory: Path) -> Report | None:
    """The finished report in ``directory`` when it holds the sweep of hash ``key``."""
    data = results.read_manifest(directory)
    if data is None or not (directory / FITS).is_file() or not (directory / CELLS).is_file():
        return None
    if data.get("spec_hash") != key:
        return None
    try:
        fix = "rerun with --force to recompute it"
        return Report(directory=directory,
                      cells=user_files.result_table(directory / CELLS, fix,
                                                    dtype={"regime": str}),
                      fits=user_files.result_table(directory / FITS, fix,
                                                   keep_default_na=False, na_values=[""],
                                                   dtype={"regime": str}),
                      constants=Constants(**data.get("constants", {})),
                      policy=str(data.get("policy", "")),
                      timings=dict(data.get("timings", {})), reused=True,
                      policy_converged=data.get("policy_converged"),
                      stop_reason=str(data.get("policy_stop_reason", "")))
    except (ValueError, TypeError, OSError) as error:
        raise ResultsError(f"the result in {directory} cannot be read ({type(error).__name__})",
                           "rerun with --force to recompute it") from None


class Store:
    """The per-cell tables of a sweep's stage, rewritten atomically after every cell.

    Resuming reads them back strictly: the progress file must carry this sweep's hash and the
    tables must hold whole cells of this grid (every replica, every metric), else the rerun
    stops with a ``ResultsError`` rather than mixing in what it cannot trust.
    """

    def __init__(self, directory: Path, key: str, fresh: bool,
                 order: list[Cell] | None = None, replicas: int = 0) -> None:
        self.directory = directory
        self.key = key
        self.replicas = pd.DataFrame()
        self.cells = pd.DataFrame()
        self.elapsed: dict[str, float] = {}
        if not fresh:
            self._resume(order or [], replicas)

    def _resume(self, order: list[Cell], replicas: int) -> None:
        path = self.directory / PROGRESS
        rep, cel = self.directory / REPLICAS, self.directory / CELLS
        if not (path.is_file() and rep.is_file() and cel.is_file()):
            return
        fix = "rerun with --force to start the sweep again"
        data = results.read_manifest_file(path)
        if data.get("spec_hash") != self.key:
            return
        try:
            replica_table = user_files.result_table(rep, fix, dtype={"regime": str})
            cell_table = user_files.result_table(cel, fix, dtype={"regime": str})
            elapsed = {str(k): float(v) for k, v in (data.get("elapsed_s") or {}).items()}
        except (ValueError, TypeError, AttributeError, OSError, pd.errors.ParserError) as error:
            raise ResultsError(f"the partial sweep in {self.directory} cannot be read "
                               f"({type(error).__name__})", fix) from None
        if not set(METRICS) <= set(replica_table.columns) or \
                "predicted" not in cell_table.columns:  # written before a metric existed
            return
        known = {(c.label, c.agents) for c in order}
        try:
            counts = replica_table.groupby(["regime", "N"]).size()
            metrics = cell_table.groupby(["regime", "N"]).size()
            whole = set(counts.index) == set(metrics.index) <= known and \
                all(int(v) == replicas for v in counts) and \
                all(int(v) == len(METRICS) for v in metrics)
        except (KeyError, TypeError, ValueError):
            whole = False
        if not whole:
            raise ResultsError(f"the partial sweep in {self.directory} holds cells that do not "
                               "match this spec", fix)
        self.replicas, self.cells, self.elapsed = replica_table, cell_table, elapsed

    def done(self, cell: Cell) -> bool:
        if self.cells.empty:
            return False
        hit = (self.cells["regime"].astype(str) == cell.label) & (self.cells["N"] == cell.agents)
        return bool(hit.any())

    def add(self, run: CellRun, order: list[Cell]) -> None:
        rank = {(c.label, c.agents): i for i, c in enumerate(order)}
        self.replicas = _sorted(_append(self.replicas, replica_rows(run)), rank, ["replica"])
        self.cells = _sorted(_append(self.cells, cell_rows(run)), rank, ["metric"],
                             metric_order=True)
        self.elapsed[f"{run.cell.label}/{run.cell.agents}"] = round(run.elapsed_s, 3)
        results.write_csv(self.replicas, self.directory / REPLICAS)
        results.write_csv(self.cells, self.directory / CELLS)
        results.write_yaml({"status": "partial", "spec_hash": self.key,
                            "elapsed_s": self.elapsed}, self.directory / PROGRESS)


def _append(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    return rows if frame.empty else pd.concat([frame, rows], ignore_index=True)


def _sorted(frame: pd.DataFrame, rank: dict[tuple[str, int], int], within: list[str],
            metric_order: bool = False) -> pd.DataFrame:
    frame = frame.assign(regime=frame["regime"].astype(str))
    key = [rank[(r, int(n))] for r, n in zip(frame["regime"], frame["N"], strict=True)]
    extra = frame["metric"].map({m: i for i, m in enumerate(METRICS)}) if metric_order \
        else frame[within[0]]
    frame = frame.assign(_cell=key, _within=extra).sort_values(["_cell", "_within"],
                                                               kind="stable")
    return frame.drop(columns=["_cell", "_within"]).reset_index(drop=True)


@contextlib.contextmanager
def locked(stage: Path) -> Iterator[None]:
    """Hold an exclusive lock on a sweep's stage (two sweeps of one spec into one directory
    would interleave their cells); stale ``.part`` files of killed runs are removed."""
    import fcntl

    path = stage / ".lock"
    try:
        handle = open(path, "w")
    except OSError as error:
        raise results.write_error(error, path) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsError(f"another tmf bound-check is running this sweep into "
                               f"{results.display(stage)}",
                               "wait for it to finish, or choose another --out") from None
        for part in stage.glob(".*.part"):
            part.unlink(missing_ok=True)
        yield
        path.unlink(missing_ok=True)
    finally:
        handle.close()


def run_bound_check(spec: Spec, directory: Path, policy: str | None = None, workers: int = 1,
                    force: bool = False, on_progress: Progress | None = None,
                    scheduler: str | None = None) -> Report:
    """Sweep the grid (resuming finished cells), fit the slopes, write fits and manifest last;
    the sweep is staged beside ``directory`` and swapped in whole at the end.

    The cells run in ``workers`` local processes, or on the Dask cluster at ``scheduler``.
    """
    start = time.perf_counter()
    choice = choose_policy(spec, policy)
    key = sweep_hash(spec, choice.key)
    if not force:
        done = reuse(key, directory)
        if done is not None:
            return done
    results.claim(directory, COMMAND, key, force)
    from tmfcli.commands.executors import interruptible

    with interruptible():
        picked = choice.get(spec, on_progress)
        policy_s = time.perf_counter() - start
        constants = sweep_constants(spec, picked.policy, picked.steps)
        order = grid(spec)
        with results.new_result(directory, COMMAND, key, force,
                                stage=results.sweep_stage(directory, key),
                                own=STAGE_FILES) as stage, \
                locked(stage):
            store = Store(stage, key, fresh=force, order=order,
                          replicas=spec.bound_check.replicas)
            report = _sweep(spec, store, order, picked, constants, workers, on_progress, start,
                            policy_s, scheduler)
    report.directory = directory
    return report


def _sweep(spec: Spec, store: Store, order: list[Cell], picked: Any, constants: Constants,
           workers: int, on_progress: Progress | None, start: float,
           policy_s: float, scheduler: str | None = None) -> Report:
    """Run the missing cells into ``store`` and write fits, figure and manifest beside them."""
    chosen, label, T_policy = picked.policy, picked.description, picked.steps
    stage = store.directory
    key = store.key
    todo = [c for c in order if not store.done(c)]
    total = len(order)
    finished = total - len(todo)
    if on_progress is not None:
        on_progress("cells", finished, total)

    def finish(run: CellRun) -> None:
        nonlocal finished
        store.add(run, order)
        finished += 1
        if on_progress is not None:
            on_progress("cells", finished, total)

    # the longest cells first, so that two workers end together
    todo.sort(key=lambda c: -setting(spec, agents=c.agents, batch=c.batch).T)
    # cells in this process, a local pool or a Dask cluster (executors.grid_map), each of
    # which stops its workers at once on an interrupt
    from functools import partial

    from tmfcli.commands.executors import grid_map

    one = partial(_run_cell, (spec, chosen, T_policy, constants))
    with closing(grid_map(one, todo, workers, scheduler)) as outcomes:
        for _, run, error in outcomes:
            if error is not None:
                raise error
            finish(run)

    fits = fit_table(spec, store.replicas, store.cells)
    results.write_csv(fits, stage / FITS)
    try:
        bound_check_figure(store.cells, fits, stage / FIGURE)
    except OSError as error:
        raise results.write_error(error, stage / FIGURE) from None
    per_regime: dict[str, float] = {}
    for name, seconds in store.elapsed.items():
        regime = name.rsplit("/", 1)[0]
        per_regime[regime] = round(per_regime.get(regime, 0.0) + seconds, 3)
    timings = {"total_s": round(time.perf_counter() - start, 3), "policy_s": round(policy_s, 3),
               **{f"regime_{k}_s": v for k, v in per_regime.items()}}
    report = Report(directory=stage, cells=store.cells, fits=fits, constants=constants,
                    policy=label, timings=timings, policy_converged=picked.converged,
                    stop_reason=picked.stop_reason)
    e_max = fits[fits["metric"] == "e_max"]
    outcome = {
        "spec_hash": key,
        "policy": label,
        "policy_converged": picked.converged,
        "policy_stop_reason": picked.stop_reason,
        "policy_steps": T_policy,
        "constants": {"L_P": constants.L_P, "L_0": constants.L_0, "L_pi": constants.L_pi,
                      "source": constants.source, "policy_source": constants.policy_source},
        "verdicts": {str(r): str(v) for r, v in zip(e_max["regime"], e_max["verdict"],
                                                    strict=True)},
        "passed": report.passed,
        # the verdict on the linear-noise constant: reported, not part of ``passed``
        "constant_verdicts": {str(r): str(v) for r, v in zip(
            e_max["regime"], e_max["constant_verdict"], strict=True)},
        "constant_tolerance": TOLERANCE,
        "workers": workers,
        "scheduler": scheduler,
        "resumed_cells": total - len(todo),
        "timings": timings,
    }
    results.write_yaml(results.manifest(spec, COMMAND, **outcome), stage / results.MANIFEST)
    (stage / PROGRESS).unlink(missing_ok=True)
    return report


def bound_check_into(spec: Spec, directory: Path, options: Options,
                     on_progress: Progress | None = None) -> None:
    """``run_bound_check`` with the command line's options (the ``run`` of bound-check in
    ``command_registry.COMMANDS``)."""
    workers = options.workers if options.workers is not None else default_workers()
    run_bound_check(spec, directory, policy=options.policy, workers=workers,
                    force=options.force, on_progress=on_progress, scheduler=options.scheduler)
