"""The ``tmf`` command line: load a spec, call one core function, write tables, summarise.

No numerics here. Core errors (``TmfError``) are turned into ``Error: ...`` and exit code 1 at
one place, ``main``; bad flags are usage errors (exit 2, from typer).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tmfcli import __version__
from tmfcli.errors import TmfError
from tmfcli.io import results
from tmfcli.io import spec as specs

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Temporal mean-field games: equilibria, N-agent simulation, finite-population bounds.\n\n"
    "Example:  tmf solve experiments/resource-demo.yaml --set population.batch=1",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML), see docs/spec.md",
                                         metavar="SPEC", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override a spec key, e.g. --set population.batch=1 (repeatable)",
    metavar="KEY=VALUE", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="result directory [default: results/<name>/<command>/]", metavar="DIR",
    show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="recompute even if DIR is up to date")]
PolicyOpt = Annotated[str | None, typer.Option(
    "--policy", help="a result directory of 'tmf solve' (policy.csv) or a population-aware "
    "policy directory, or 'uniform' [default: solve the spec's equilibrium first]",
    metavar="DIR|uniform", show_default=False)]


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Register a command whose core errors become ``Error: ...`` on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except TmfError as error:
            err.print(f"Error: {error.message()}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None

    app.command()(wrapper)
    return wrapper


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


@contextmanager
def progress(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr (shown on terminals only); yields update(phase, done, total)."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"
                   "/{task.total}"), TimeElapsedColumn(), console=err, transient=True,
                   disable=not err.is_terminal)
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"{label} {phase}", total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield update


def summary(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, fmt(value))
    out.print(table)


def load(spec_path: Path, overrides: list[str] | None) -> specs.Spec:
    return specs.load(spec_path, overrides or [])


def out_dir(spec: specs.Spec, given: Path | None, command: str) -> Path:
    return given if given is not None else Path("results") / spec.name / command


@command
def solve(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
          force: ForceOpt = False,
          restarts: Annotated[int | None, typer.Option(
              help="random restarts for the uniqueness evidence [default: solver.restarts]",
              min=0, show_default=False)] = None) -> None:
    """Solve the mean-field equilibrium and report its exploitability.

    Writes iterations.csv, policy.csv, flow.csv and manifest.yaml.

    Example:  tmf solve experiments/resource-demo.yaml --set solver.iterations=500
    """
    from tmfcli.commands.solve import solve as solve_equilibrium
    from tmfcli.io.policy_files import write_policy
    from tmfcli.model.policy import TabularPolicy

    if restarts is not None:  # part of the spec, so part of the result's hash
        overrides = [*(overrides or []), f"solver.restarts={restarts}"]
    spec = load(spec_path, overrides)
    target = out_dir(spec, out, "solve")
    if not force and results.is_up_to_date(target, spec, "solve"):
        err.print(f"{target} is up to date (same spec); use --force to recompute")
        show_manifest_summary(target)
        return
    with progress("solve") as update:
        eq = solve_equilibrium(spec, on_progress=update)
    ev = eq.evaluation
    run = eq.result
    history = run.history.assign(seed=spec.seed)
    results.write_csv(history, target / "iterations.csv")
    write_policy(TabularPolicy(ev.policy), target)
    results.write_csv(results.flow_table(ev.flow.mu), target / "flow.csv")
    outcome = {
        "stop_reason": run.stop_reason,
        "converged": run.converged,
        "iterations": run.iterations,
        "exploitability": ev.exploitability,
        "exploitability_reg": ev.exploitability_reg,
        "J": ev.J,
        "steps": eq.setting.T,
        "uniqueness": eq.evidence(),
        "timings": {"total_s": round(eq.elapsed_s, 3),
                    "solve_s": round(float(history["elapsed_s"].iloc[-1]), 3)},
    }
    results.write_yaml(results.manifest(spec, "solve", **outcome), target / results.MANIFEST)
    show_manifest_summary(target)


@command
def bound_check(spec_path: SpecArg, overrides: SetOpt = None, given_out: OutOpt = None,
                force: ForceOpt = False,
                policy: PolicyOpt = None,
                workers: Annotated[int | None, typer.Option(
                    help="worker processes [default: CPU count, at most 2]", min=1,
                    show_default=False)] = None) -> None:
    """Measure the O(1/sqrt N) finite-population gap over N and B, fit it, compare with the bound.

    Sweeps bound_check.agents x bound_check.batch with bound_check.replicas replicas per cell
    under one policy. Writes replicas.csv, cells.csv, fits.csv and manifest.yaml; an
    interrupted sweep resumes. Exit code 3 when a regime fails (docs/bound-check.md).

    Example:  tmf bound-check experiments/resource-bound.yaml --set bound_check.replicas=50
    """
    from tmfcli.commands.bound_check import default_workers, run_bound_check

    spec = load(spec_path, overrides)
    target = out_dir(spec, given_out, "bound-check")
    with progress("bound-check") as update:
        report = run_bound_check(spec, target, policy=policy, force=force, on_progress=update,
                                 workers=workers if workers is not None else default_workers())
    if report.reused:
        err.print(f"{target} is up to date (same spec and policy); use --force to recompute")
    fits = report.fits
    regimes = list(dict.fromkeys(fits["regime"].astype(str)))
    row = {(str(r["regime"]), r["metric"]): r for r in fits.to_dict("records")}

    def slope(r: dict[Any, Any]) -> str:
        return f"{r['slope']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"

    table = Table(title=f"tmf bound-check: {spec.name} (e_max = E max_t ||mu_hat_t - "
                  "mu_bar_t||_1)", title_justify="left")
    table.add_column("regime")
    table.add_column("slope e_max [95% CI]", no_wrap=True)
    table.add_column("allowed", no_wrap=True)
    table.add_column("worst e_max/bound")
    table.add_column("verdict", no_wrap=True)
    for regime in regimes:
        e = row[(regime, "e_max")]
        table.add_row(regime, slope(e), f"<= {-0.5 + e['allowance']:.3f}",
                      fmt(e["worst_ratio"]), str(e["verdict"]))
    out.print(table)
    other = Table(title="reported, not judged", title_justify="left")
    for column in ("regime", "slope e_mean [95% CI]", "slope return gap [95% CI]"):
        other.add_column(column, no_wrap=True)
    for regime in regimes:
        other.add_row(regime, slope(row[(regime, "e_mean")]),
                      slope(row[(regime, "return_gap")]))
    out.print(other)
    c = report.constants
    out.print(f"policy: {report.policy}; Lipschitz constants L_P={fmt(c.L_P)}, L_0={fmt(c.L_0)} "
              f"({c.source}), L_pi={fmt(c.L_pi)} ({c.policy_source})")
    if any("steeper" in str(v) for v in fits["verdict"]):
        out.print("steeper than -1/2 is expected in steps with small B: only B agents move per "
                  "step, so over a fixed number of steps the gap shrinks like sqrt(B)/N")
    if (fits["allowance"].fillna(0) > 0).any():
        out.print("allowed: a regime passes when the slope interval reaches -1/2 plus the "
                  "sqrt(log T) drift of a maximum over T(N) steps (0 when T does not grow "
                  "with N; docs/bound-check.md)")
    if any("flatter" in str(v) for v in fits["verdict"]):
        out.print("flatter than -1/2: compare the e_mean slope and larger N (docs/bound-check.md)")
    out.print(f"results: {target}")
    if not report.passed:
        raise typer.Exit(3)


def show_manifest_summary(target: Path) -> None:
    data = results.read_manifest(target) or {}
    u = data.get("uniqueness", {})
    samples = u.get("monotonicity_samples", 0)
    rows = [
        ("game", data.get("spec", {}).get("game", {}).get("name")),
        ("steps", data.get("steps")),
        ("exploitability", data.get("exploitability")),
        ("J", data.get("J")),
        ("stop reason", data.get("stop_reason")),
        ("monotone (sampled)", f"{samples - u.get('monotonicity_violations', 0)}/{samples} "
         f"pairs, largest form {fmt(u.get('monotonicity_largest'))}"),
        ("dynamics depend on mu", u.get("dynamics_depend_on_mu")),
        ("restarts converged", f"{u.get('restarts_converged')}/{u.get('restarts')}"),
        ("flow spread (L1, max t)", u.get("flow_spread")),
        ("policy spread (mu-weighted)", u.get("policy_spread")),
        ("results", str(target)),
    ]
    if data.get("spec", {}).get("entropy", 0) > 0:
        rows.insert(3, ("exploitability (regularised)", data.get("exploitability_reg")))
    summary(f"tmf solve: {data.get('spec', {}).get('name')}", rows)


@command
def simulate(spec_path: SpecArg, overrides: SetOpt = None, out: OutOpt = None,
             force: ForceOpt = False,
             policy: PolicyOpt = None,
             replicas: Annotated[int | None, typer.Option(
                 help="independent replicas [default: simulate.replicas]", min=1,
                 show_default=False)] = None) -> None:
    """Simulate N agents, B of them acting per step, and compare with the mean-field flow.

    Writes trajectory.csv, replicas.csv, summary.csv and manifest.yaml (docs/simulate.md).

    Example:  tmf simulate experiments/queue-simulate.yaml --replicas 200 --policy uniform
    """
    from tmfcli.commands import simulate as sim
    from tmfcli.commands.policy_choice import choose_policy
    from tmfcli.errors import SpecError
    from tmfcli.io.spec import setting

    if replicas is not None:
        overrides = [*(overrides or []), f"simulate.replicas={replicas}"]
    spec = load(spec_path, overrides)
    problem = setting(spec)
    if problem.agents is None:
        raise SpecError("population.agents", "missing (simulate needs a finite population)",
                        "add population.agents and population.batch", spec.source)
    target = out_dir(spec, out, "simulate")
    choice = choose_policy(spec, policy)
    key = f"simulate --policy {choice.key}"
    if not force and results.is_up_to_date(target, spec, key):
        err.print(f"{target} is up to date (same spec and policy); use --force to recompute")
    else:
        with progress("simulate") as update:
            chosen, description = choice.get(spec, on_progress=update)
            cmp = sim.compare(problem, chosen, spec.simulate.replicas, spec.seed,
                              spec.population.activation, spec.population.init,
                              on_step=lambda done, total: update("replicas", done, total))
        frames = sim.tables(cmp, spec.seed)
        for name, frame in frames.items():
            results.write_csv(frame, target / name)
        extra = sim.outcome(cmp, spec, frames, description)
        results.write_yaml(results.manifest(spec, key, **extra), target / results.MANIFEST)
    summary(f"tmf simulate: {spec.name}", sim.summary_rows(target))


@command
def games() -> None:
    """List the registered games with their parameters and defaults.

    Example:  tmf games
    """
    from tmfcli.model.games import GAMES
    from tmfcli.model.params import describe

    for name, cls in GAMES.items():
        game = cls()
        out.print(f"[bold]{name}[/bold]  (O={game.n_obs}, A={game.n_act}"
                  f"{f', default horizon {cls.default_horizon}' if cls.default_horizon else ''})"
                  f": {cls.summary}")
        for pname, default, doc in describe(cls) or [("(none)", "", "")]:
            out.print(f"    {pname:<10} {default:<14} {doc}", markup=False)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"tmf {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=version_callback,
                                               is_eager=True, help="show the version")] = False
         ) -> None:
    """Temporal mean-field games: equilibria, N-agent simulation, finite-population bounds."""


def main() -> None:
    """Entry point of the ``tmf`` console script."""
    app()
