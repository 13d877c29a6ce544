"""``tmf validate``: check a spec and its game before running anything."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tmfcli.cli.common import SetOpt, SpecArg, command, fmt, load, summary

if TYPE_CHECKING:
    from tmfcli.io.spec_types import Spec


@command
def validate(spec_path: SpecArg, overrides: SetOpt = None) -> None:
    """Check a spec and its game: shapes, names, stochastic kernels, finite rewards.

    Kernels must be non-negative and sum to 1 for every (observation, action) at every probe
    distribution (vertices and random interior points); expressions of YAML games must not
    divide by zero or take the log of 0 there. Reports a sampled monotonicity probe and the
    Lipschitz constants (analytic or sampled). Writes nothing; exit 1 names the problem.
    Every command runs a quicker version of the same check before it starts (docs/games.md).

    Example:  tmf validate experiments/hybrid-work.yaml --set game.params.social=0
    """
    from tmfcli.commands.validate import validate as run_validation

    spec = load(spec_path, overrides)
    v = run_validation(spec)
    game, c, p = v.game, v.checked, v.probe
    values = getattr(game, "values", None)
    rows: list[tuple[str, object]] = [
        ("game", f"{game.name} (O={game.n_obs}, A={game.n_act})"),
        ("observations", ", ".join(game.obs_labels)),
        ("actions", ", ".join(game.act_labels)),
    ]
    if values:
        rows.append(("parameters", ", ".join(f"{k}={v:g}" for k, v in values.items())))
    rows += [
        ("steps", v.steps),
        ("probes checked", f"{c.probes} distributions x steps {', '.join(map(str, c.times))}"),
        ("kernels", f"non-negative (smallest {fmt(c.smallest_entry)}), rows sum to 1 "
                    f"(worst {c.worst_row_error:.1e})"),
        ("rewards", f"finite, in [{fmt(c.reward_low)}, {fmt(c.reward_high)}]"),
        ("dynamics depend on mu", "yes" if c.dynamics_vary else "no"),
        ("monotone (sampled)", f"{p.samples - p.violations}/{p.samples} pairs, largest form "
                               f"{fmt(p.largest)}"),
        ("Lipschitz L_P, L_0", f"{fmt(v.lipschitz.L_P)}, {fmt(v.lipschitz.L_0)} "
                               f"({v.lipschitz_source})"),
    ]
    if v.lipschitz_source == "analytic":
        rows.append(("sampled ratios", "not sampled (game too large)" if v.sampled is None
                     else f"{fmt(v.sampled.L_P)}, {fmt(v.sampled.L_0)} (<= the analytic "
                     "constants)"))
    rows.append(("solver", f"{spec.solver.algorithm} (docs/solvers.md)"))
    rows.append(("code it runs", code_it_runs(spec)))
    summary(f"tmf validate: {spec.name}: valid", rows)


def code_it_runs(spec: Spec) -> str:
    """Where trust begins (docs/games.md): the Python code a spec makes tmf run, if any."""
    from tmfcli.model.games import GAMES, plugins

    g = spec.game
    if g.module is not None:
        return f"Python: module {g.module} (factory {g.factory}), run as a Makefile runs " \
            "its commands: run this spec only if you trust that module"
    if g.define is not None:
        return "none (a YAML game: data and expressions)"
    if g.name in GAMES:
        return "none (tmf's own game)"
    found = plugins().get(g.name)
    return f"Python: plugin {g.name} ({found.value if found else '?'}): run this spec only " \
        "if you trust that package"
