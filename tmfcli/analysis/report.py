"""``tmf report``: comparison tables and figures of result directories, from their files alone.

A *run* is one complete result directory: its manifest (what ran: ``command``, the resolved
spec, the outcome) and its tidy CSV tables. Nothing is recomputed: every number of a report is
read from those files, so a report can be rebuilt anywhere the directories are. Several runs of
one kind make one comparison table and share figures:

- solve: a row per run; exploitability against iteration (a line per run), the flow of each run;
- simulate: a row per run; N-agent bands (replica quantiles) over the mean-field flow, and the
  gap and eps_N against N when the runs span several N;
- bound-check: a row per run, regime and metric; e_max (and eps_N) against N with the fitted
  slopes, N^-1/2 and the reference bound;
- train: a row per algorithm and B (across seeds); exploitability and return against
  iteration, mean over seeds with their range as a band.

Which tables a kind of run must hold and which function builds its section are the
command's ``report`` in ``tmfcli.command_registry.COMMANDS``. This module is pure (tables in,
tables and figure files out); reading the directories is ``tmfcli.io.report_inputs``; the
paper's claims are ``tmfcli.analysis.report_claims``, which reads a built report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmfcli.analysis import plots
from tmfcli.analysis.fit import normal_interval
from tmfcli.command_registry import COMMANDS, load

BAND = (0.05, 0.95)  # replica quantiles of the N-agent bands


@dataclass(frozen=True)
class Run:
    """One result directory: where it is, its kind, its manifest and its tables by file name."""

    path: Path
    kind: str
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    label: str = ""

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.manifest.get("spec")
        return spec if isinstance(spec, dict) else {}


@dataclass(frozen=True)
class Table:
    """A comparison table: numeric and tidy in ``frame``; ``intervals`` (column, low, high)
    are shown as ``x [low, high]`` in the terminal and in Markdown."""

    id: str
    title: str
    frame: pd.DataFrame
    intervals: tuple[tuple[str, str, str], ...] = ()
    brief: tuple[str, ...] = ()  # the columns shown in a terminal (all in REPORT.md)

    def display(self) -> pd.DataFrame:
        """The table as strings, intervals merged into their column."""
        merged = {low for _, low, _ in self.intervals} | {high for _, _, high in self.intervals}
        out = pd.DataFrame(index=self.frame.index)
        for column in self.frame.columns:
            if column in merged:
                continue
            spec = next((iv for iv in self.intervals if iv[0] == column), None)
            values = self.frame[column]
            if spec is None:
                out[column] = [fmt(v) for v in values]
            else:
                low, high = self.frame[spec[1]], self.frame[spec[2]]
                out[column] = [with_interval(v, lo, hi)
                               for v, lo, hi in zip(values, low, high, strict=True)]
        return out

    def terminal(self) -> pd.DataFrame:
        """The display restricted to the ``brief`` columns present."""
        shown = self.display()
        keep = [c for c in self.brief if c in shown.columns]
        return shown[keep] if keep else shown


@dataclass(frozen=True)
class Figure:
    """A figure file written beside the report, its title and its caption line."""

    file: str
    title: str
    caption: str


@dataclass
class Section:
    kind: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """A claim of the paper with its verdict ("pass", "fail" or "not measurable") and why."""

    number: int
    title: str
    verdict: str
    why: str
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class Report:
    runs: list[Run]
    sections: list[Section]
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------
def fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float | np.floating):
        return "" if math.isnan(x) else f"{x:.3g}"
    return str(x)


def with_interval(x: Any, low: Any, high: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if low is None or high is None or any(isinstance(v, float) and math.isnan(v)
                                          for v in (low, high)):
        return fmt(x)
    return f"{fmt(x)} [{fmt(low)}, {fmt(high)}]"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "run"


# --------------------------------------------------------------------------------------------
# what a run is: labels and captions from the manifest's spec
# --------------------------------------------------------------------------------------------
def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data if not isinstance(data, list) else tuple(map(str, data))}


def label_runs(runs: Sequence[Run]) -> list[Run]:
    """Give every run a distinct label: its spec's name, plus the spec keys in which runs of
    the same name differ (e.g. ``unique (alpha=0.1)``), plus the directory when that is not
    enough."""
    names = [str(r.spec.get("name") or r.path.name) for r in runs]
    flat = [_flatten(r.spec) for r in runs]
    labels = []
    for i, name in enumerate(names):
        same = [j for j, n in enumerate(names) if n == name and runs[j].kind == runs[i].kind]
        label = name
        if len(same) > 1:
            keys = sorted({k for j in same for k in flat[j]
                           if len({flat[m].get(k) for m in same}) > 1 and k != "seed"})
            extra = [f"{k.rsplit('.', 1)[-1]}={_short(flat[i].get(k))}" for k in keys]
            if len({flat[m].get("seed") for m in same}) > 1:
                extra.append(f"seed={flat[i].get('seed')}")
            if extra:
                label = f"{name} ({', '.join(extra)})"
        labels.append(label)
    for i, label in enumerate(labels):  # identical specs: the directory tells them apart
        if sum(1 for j, other in enumerate(labels)
               if other == label and runs[j].kind == runs[i].kind) > 1:
            labels[i] = f"{label} [{runs[i].path}]"
    return [Run(r.path, r.kind, r.manifest, r.tables, label)
            for r, label in zip(runs, labels, strict=True)]


def _short(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(value) + "]"
    return str(value)


def population(spec: dict[str, Any]) -> str:
    """N and B, or alpha, as the spec gives them."""
    pop = spec.get("population") or {}
    if pop.get("alpha") is not None:
        return f"alpha={pop['alpha']}"
    N, B = pop.get("agents"), pop.get("batch")
    if N is None and B is None:
        return "alpha=1"
    if N is None:
        return f"B={_batch(B)}"
    return f"N={N}, B={_batch(B if B is not None else 'all')}"


def _batch(batch: Any) -> str:
    if isinstance(batch, dict) and "fraction" in batch:
        return f"{batch['fraction']}N"
    if isinstance(batch, list):
        return "[" + ",".join(map(str, batch)) + "]"
    return str(batch)


def horizon(spec: dict[str, Any], steps: Any = None) -> str:
    h = spec.get("horizon") or {}
    if h.get("rounds") is not None:
        text = f"{h['rounds']} rounds"
        return f"{text} ({steps} steps)" if steps is not None else text
    if h.get("steps") is not None:
        return f"{h['steps']} steps"
    return f"{steps} steps" if steps is not None else "game's horizon"


def game_text(spec: dict[str, Any]) -> str:
    game = spec.get("game") or {}
    params = game.get("params") or {}
    inner = ", ".join(f"{k}={_short(tuple(map(str, v)) if isinstance(v, list) else v)}"
                      for k, v in params.items())
    text = f"{game.get('name', '?')} ({inner or 'default parameters'})"
    if game.get("mu0") is not None:
        text += f", mu0={_short(tuple(map(str, game['mu0'])))}"
    return text


def caption(run: Run) -> str:
    """The caption line recording the spec of a run: game, parameters, N, B, horizon,
    replicas, seed (and what else the kind adds)."""
    return f"{run.label}: " + "; ".join(caption_parts(run))


def caption_parts(run: Run) -> list[str]:
    spec, m = run.spec, run.manifest
    parts = [game_text(spec)]
    if run.kind == "bound-check":
        bc = spec.get("bound_check") or {}
        parts.append(f"N in {_short(tuple(map(str, bc.get('agents', []))))}, "
                     f"B in {_short(tuple(map(_batch, bc.get('batch', []))))}")
        parts.append(f"horizon {horizon(spec)}")
        parts.append(f"{bc.get('replicas')} replicas per cell")
        parts.append(f"policy: {m.get('policy')}")
    elif run.kind == "train":
        train = spec.get("train") or {}
        parts.append(population(spec))
        parts.append(f"horizon {horizon(spec, m.get('steps'))}")
        parts.append(", ".join(f"{k}={v}" for k, v in train.items() if k != "seed"))
    else:
        parts.append(population(spec))
        parts.append(f"horizon {horizon(spec, m.get('steps'))}")
        if run.kind == "simulate":
            parts.append(f"{m.get('replicas')} replicas, policy: {m.get('policy')}")
        else:
            solver = spec.get("solver") or {}
            parts.append(f"{solver.get('algorithm')}, {solver.get('restarts', 0)} restarts")
    parts.append(f"discount {spec.get('discount')}")
    parts.append(f"seed {spec.get('seed', m.get('seed'))}")
    return [p for p in parts if p]


def obs_labels(spec: dict[str, Any], n_obs: int, frame: pd.DataFrame | None = None
               ) -> list[str]:
    """Names of the observations: the table's own ``obs_label`` column when it has one, else
    the game registry's labels, else o=0, o=1, ... (a game this version of tmf does not
    know)."""
    from tmfcli.errors import TmfError
    from tmfcli.model.games import make_game

    if frame is not None and "obs_label" in frame:
        named = frame.drop_duplicates("obs").sort_values("obs")
        if len(named) == n_obs:
            return [str(x) for x in named["obs_label"]]
    game = spec.get("game") or {}
    try:
        labels = list(make_game(str(game.get("name")), game.get("params") or {}).obs_labels)
    except (TmfError, TypeError, ValueError):
        labels = []
    return labels if len(labels) == n_obs else [f"o={k}" for k in range(n_obs)]


def _grid(frame: pd.DataFrame, value: str) -> np.ndarray:
    """Tidy rows (t, obs, value) as an array (T+1, O)."""
    return frame.pivot(index="t", columns="obs", values=value).sort_index().to_numpy(float)


# --------------------------------------------------------------------------------------------
# solve
# --------------------------------------------------------------------------------------------
def solve_section(runs: list[Run], out: Path, formats: Sequence[str]) -> Section:
    rows = []
    for r in runs:
        it = r.tables["iterations.csv"]
        last = it.iloc[-1]
        m = r.manifest
        u = m.get("uniqueness") or {}
        solver = r.spec.get("solver") or {}
        samples = u.get("monotonicity_samples", 0)
        rows.append({
            "run": r.label, "game": (r.spec.get("game") or {}).get("name"),
            "population": population(r.spec), "steps": m.get("steps"),
            "algorithm": solver.get("algorithm"), "iterations": int(last["iteration"]),
            "exploitability": float(last["exploitability"]), "J": float(last["J"]),
            "stop": str(m.get("stop_reason", "")).split(":")[0],
            "restarts": int(u.get("restarts", 0)),
            "restarts_converged": int(u.get("restarts_converged", 0)),
            "flow_spread": _float(u.get("flow_spread")),
            "policy_spread": _float(u.get("policy_spread")),
            "monotonicity_samples": int(samples),
            "monotonicity_violations": int(u.get("monotonicity_violations", 0)),
            "dynamics_depend_on_mu": u.get("dynamics_depend_on_mu"),
            "directory": str(r.path),
        })
    section = Section("solve", "Equilibria (tmf solve)")
    section.tables.append(Table("solve", "Equilibria: final exploitability, J, stop reason and "
                                "uniqueness evidence (spread: largest L1 distance between "
                                "equilibria from random starts)", pd.DataFrame(rows),
                                brief=("run", "exploitability", "J", "stop",
                                       "restarts_converged", "flow_spread",
                                       "monotonicity_violations")))
    series = [(r.label, r.tables["iterations.csv"].rename(columns={"exploitability": "y"}))
              for r in runs]
    name = "solve-exploitability"
    plots.curves_figure(series, out / f"{name}.png", "exploitability",
                        caption=_joint_caption(runs), formats=formats)
    section.figures.append(Figure(f"{name}.png", "Exploitability against iteration (log scale)",
                                  _joint_caption(runs)))
    for r in runs:
        flow = r.tables["flow.csv"]
        mu = _grid(flow, "mu")
        file = f"flow-{slug(r.label)}.png"
        cap = caption(r)
        plots.flow_figure(mu, obs_labels(r.spec, mu.shape[1], flow), out / file, caption=cap,
                          formats=formats)
        section.figures.append(Figure(file, f"Mean-field flow of the equilibrium: {r.label}",
                                      cap))
    return section


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _joint_caption(runs: Sequence[Run]) -> str:
    """The caption of a figure over several runs: what they share once, then per run what
    differs."""
    parts = [caption_parts(r) for r in runs]
    if len(runs) == 1:
        return caption(runs[0])
    common = [p for p in parts[0] if all(p in other for other in parts)]
    own = [f"{r.label}: " + ", ".join(p for p in mine if p not in common)
           for r, mine in zip(runs, parts, strict=True)]
    return "; ".join(common) + " | " + " | ".join(own)


# --------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------
SIM_METRICS = ("J", "return_avg", "return_minus_J", "gap_max", "gap_max_predicted", "gap_mean",
               "eps_n")


def simulate_section(runs: list[Run], out: Path, formats: Sequence[str]) -> Section:
    rows, over_N = [], []
    has_eps = any((r.tables["summary.csv"]["metric"] == "eps_n").any() for r in runs)
    for r in runs:
        m = r.manifest
        summary = r.tables["summary.csv"].set_index("metric")
        traj = r.tables["trajectory.csv"]
        lo, hi = m.get("batch_min"), m.get("batch_max")
        row: dict[str, Any] = {"run": r.label, "N": m.get("agents"),
                               "B": lo if lo == hi else f"{lo}..{hi}",
                               "steps": int(traj["t"].max()),
                               "replicas": int(traj["replica"].nunique())}
        for metric in SIM_METRICS:
            if metric == "eps_n" and not has_eps:
                continue
            columns = ((metric, "mean"),) if metric == "J" else (
                (metric, "mean"), (f"{metric}_low", "ci_low"), (f"{metric}_high", "ci_high"))
            for col, key in columns:
                row[col] = _float(summary.loc[metric, key]) if metric in summary.index \
                    else float("nan")
            if metric in summary.index and metric in ("gap_max", "eps_n"):
                over_N.append({"group": f"B={row['B']}" if lo == hi else str(row["B"]),
                               "N": m.get("agents"), "metric": metric,
                               "mean": row[metric], "ci_low": row[f"{metric}_low"],
                               "ci_high": row[f"{metric}_high"]})
        rows.append(row)
    metrics = [mm for mm in SIM_METRICS if mm != "eps_n" or has_eps]
    frame = pd.DataFrame(rows)
    section = Section("simulate", "N-agent simulations (tmf simulate)")
    section.tables.append(Table(
        "simulate", "N agents against the mean field: return, gap max_t/mean_t "
        "||mu_hat_t - mu_bar_t||_1" + (" and eps_N" if has_eps else "") + " (95% intervals)",
        frame, tuple((mm, f"{mm}_low", f"{mm}_high") for mm in metrics if mm != "J"),
        brief=("run", "N", "B", "return_minus_J", "gap_max", "gap_max_predicted", "eps_n")))
    if not has_eps:
        section.notes.append("eps_N (the N-agent deviation gain) is not in these summaries: "
                             "they were written by a tmf that does not measure it")
    for r in runs:
        traj = r.tables["trajectory.csv"]
        grouped = traj.groupby(["t", "obs"])["mu_hat"]
        low = grouped.quantile(BAND[0]).rename("v").reset_index()
        high = grouped.quantile(BAND[1]).rename("v").reset_index()
        bar = traj[traj["replica"] == traj["replica"].min()]
        mu_bar = _grid(bar, "mu_bar")
        file = f"bands-{slug(r.label)}.png"
        cap = caption(r)
        band = f"bands: {BAND[0]:.0%}-{BAND[1]:.0%} quantiles over replicas"
        predicted = None
        if "bands.csv" in r.tables:  # the linear-noise prediction (docs/fluctuations.md)
            pb = r.tables["bands.csv"]
            predicted = (_grid(pb, "pred_q05"), _grid(pb, "pred_q95"))
            band += ("; dashed: predicted 5%-95% (mu_bar + b/N +- 1.645 sd, linear-noise "
                     "approximation)")
        plots.flow_figure(mu_bar, obs_labels(r.spec, mu_bar.shape[1], bar), out / file,
                          caption=cap,
                          bands=(_grid(low, "v"), _grid(high, "v")), formats=formats,
                          band_label=band, predicted=predicted)
        section.figures.append(Figure(file, f"N-agent mu_hat bands over the mean-field flow: "
                                      f"{r.label}", f"{cap}; {band}"))
    table = pd.DataFrame(over_N)
    if not table.empty and table["N"].nunique() > 1:
        file = "simulate-gap-vs-N.png"
        cap = _joint_caption(runs)
        plots.gap_over_runs_figure(table, out / file, caption=cap, formats=formats)
        section.figures.append(Figure(file, "Simulated gap (and eps_N) against N, log-log, "
                                      "least-squares slopes", cap))
    return section


# --------------------------------------------------------------------------------------------
# bound-check
# --------------------------------------------------------------------------------------------
def bound_rows(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run, regime and fitted metric (e_max, e_mean, eps_n when measured)."""
    rows = []
    for r in runs:
        cells, fits = r.tables["cells.csv"], r.tables["fits.csv"]
        for f in fits.to_dict("records"):
            if f["metric"] == "return_gap":
                continue
            mine = cells[(cells["regime"].astype(str) == str(f["regime"]))
                         & (cells["metric"] == f["metric"])].sort_values("N")
            if mine.empty:
                continue
            big = mine.iloc[-1]
            rows.append({
                "run": r.label, "regime": str(f["regime"]), "metric": f["metric"],
                "N": f"{int(mine['N'].min())}..{int(mine['N'].max())}",
                "steps": f"{int(mine['steps'].min())}..{int(mine['steps'].max())}",
                "at largest N": float(big["estimate"]),
                "at largest N_low": float(big["ci_low"]),
                "at largest N_high": float(big["ci_high"]),
                "slope": _float(f["slope"]), "slope_low": _float(f["ci_low"]),
                "slope_high": _float(f["ci_high"]),
                "allowance": _float(f.get("allowance")),
                "worst ratio to bound": _float(f.get("worst_ratio")),
                "verdict": str(f.get("verdict", "")),
            })
    return pd.DataFrame(rows)


def bound_section(runs: list[Run], out: Path, formats: Sequence[str]) -> Section:
    section = Section("bound-check", "Finite-population gap (tmf bound-check)")
    frame = bound_rows(runs)
    section.tables.append(Table(
        "bound-check", "Gap against N per regime: log-log slope (95% bootstrap interval), the "
        "allowance for a maximum over T(N) steps, worst ratio measured/bound, verdict (e_max "
        "is judged; e_mean and eps_N are reported)", frame,
        (("at largest N", "at largest N_low", "at largest N_high"),
         ("slope", "slope_low", "slope_high")),
        brief=("run", "regime", "metric", "slope", "verdict")))
    if not frame.empty and not (frame["metric"] == "eps_n").any():
        section.notes.append("eps_N is not in these sweeps: they were written by a tmf "
                             "bound-check that does not measure it")
    for r in runs:
        file = f"bound-{slug(r.label)}.png"
        cap = caption(r)
        notes = plots.bound_check_figure(r.tables["cells.csv"], r.tables["fits.csv"],
                                         out / file, caption=cap, formats=formats)
        section.figures.append(Figure(file, f"Gap against N: {r.label} (log-log; lines: "
                                      "fitted slopes; dotted: N^-1/2; dashed: reference "
                                      "bound)", "; ".join([cap, *notes])))
        section.notes += [f"{r.label}: {n}" for n in notes]
    return section


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
TRAIN_METRICS = ("exploitability", "return_avg", "eps_n", "exploitability_exact",
                 "exploitability_uniform")


# the value drawn on the return curves: what a train run knows (summary.csv's J), which is the
# equilibrium value only as the final exploitability goes to 0; a tmf solve of the same spec
# gives the equilibrium's J (its summary)
TRAIN_LEVEL = "J of the final policy (mean field)"
TRAIN_LEVEL_NOTE = ("J, the mean-field value of each series' final policy (summary.csv, mean "
                    "over seeds); it is the equilibrium value only where the final "
                    "exploitability is 0 (tmf solve of the same spec gives the equilibrium's J)")


def train_key(run: Run) -> tuple[str, str, str]:
    """(algorithm, N, B) of a training run: from its manifest, else its iterations table."""
    m, it = run.manifest, run.tables["iterations.csv"]

    def get(name: str, column: str) -> str:
        if m.get(name) is not None:
            return str(m[name])
        if column in it and len(it):
            return str(it[column].iloc[0])
        return "?"

    return get("algorithm", "algorithm"), get("agents", "agents"), get("batch", "batch")


def train_iterations(run: Run) -> int:
    """The outer iterations of a training run (runs of different budgets are not averaged)."""
    given = run.manifest.get("iterations")
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    return max(0, len(run.tables["iterations.csv"]) - 1)  # rows 0..I


def train_game(run: Run) -> str:
    return str((run.spec.get("game") or {}).get("name", "?"))


def train_finals(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run and seed: game, algorithm, iterations, N, B, seed and the final
    metrics of summary.csv."""
    rows = []
    for r in runs:
        algorithm, N, B = train_key(r)
        summary = r.tables["summary.csv"]
        seeds = summary["seed"].unique() if "seed" in summary else [r.spec.get("seed")]
        for seed in seeds:
            mine = summary[summary["seed"] == seed] if "seed" in summary else summary
            values = mine.set_index("metric")["mean"]
            row: dict[str, Any] = {"game": train_game(r), "algorithm": algorithm,
                                   "iterations": train_iterations(r), "N": N, "B": B,
                                   "seed": seed, "run": r.label}
            for metric in TRAIN_METRICS:
                row[metric] = float(values[metric]) if metric in values.index else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


def train_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Per (game, algorithm, iterations, N, B): seeds and, per metric, the mean over seeds
    with its 95% normal interval (mean +- 1.96 sd / sqrt(seeds); none with one seed)."""
    rows = []
    keys = ["game", "algorithm", "iterations", "N", "B"]
    for (game, algorithm, iterations, N, B), g in finals.groupby(keys, sort=False):
        row: dict[str, Any] = {"game": game, "algorithm": algorithm, "iterations": iterations,
                               "N": N, "B": B, "seeds": len(g)}
        for metric in TRAIN_METRICS:
            values = g[metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            mean, low, high = normal_interval(values) if len(values) else (np.nan,) * 3
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean, low, high
        rows.append(row)
    frame = pd.DataFrame(rows)
    empty = [m for m in TRAIN_METRICS if frame[m].isna().all()]
    return frame.drop(columns=[c for m in empty for c in (m, f"{m}_low", f"{m}_high")])


def train_curves(runs: Sequence[Run], column: str,
                 level: str | None = None) -> list[tuple[str, pd.DataFrame]]:
    """Per (algorithm, iterations, B): the mean of ``column`` over seeds at each iteration,
    with the range (min, max) over seeds as a band; with ``level``, that metric of summary.csv
    (mean over the runs and seeds of the series; nan when absent) as column ``level``."""
    Key = tuple[str, int, str, str, str]
    groups: dict[Key, list[pd.DataFrame]] = {}
    levels: dict[Key, list[float]] = {}
    several = len({train_game(r) for r in runs}) > 1
    budgets = len({train_iterations(r) for r in runs}) > 1
    for r in runs:
        it = r.tables["iterations.csv"]
        if column not in it:
            continue
        summary = r.tables.get("summary.csv")
        if level is not None and summary is not None and "metric" in summary:
            levels.setdefault((train_game(r), train_iterations(r), *train_key(r)), []).extend(
                summary.loc[summary["metric"] == level, "mean"].to_numpy(dtype=float))
        seeds = it["seed"] if "seed" in it else pd.Series(0, index=it.index)
        for _, g in it.groupby(seeds, sort=False):
            groups.setdefault((train_game(r), train_iterations(r), *train_key(r)),
                              []).append(g[["iteration", column]])
    series = []
    for (game, iterations, algorithm, _N, B), frames in groups.items():
        stacked = pd.concat(frames)
        agg = stacked.groupby("iteration")[column].agg(["mean", "min", "max"]).reset_index()
        agg = agg.rename(columns={"mean": "y", "min": "low", "max": "high"})
        if level is not None:
            known = levels.get((game, iterations, algorithm, _N, B), [])
            agg["level"] = float(np.mean(known)) if known else np.nan
        count = f"{len(frames)} seed{'s' if len(frames) > 1 else ''}"
        budget = f", {iterations} it." if budgets else ""
        series.append((f"{game + ' ' if several else ''}{algorithm}{budget}, B={B} ({count})",
                       agg))
    return series


def train_section(runs: list[Run], out: Path, formats: Sequence[str]) -> Section:
    section = Section("train", "Training (tmf train)")
    finals = train_finals(runs)
    section.tables.append(Table(
        "train", "Final exploitability, return and eps_N per algorithm and B, mean over seeds "
        "[95% interval across seeds]", train_table(finals),
        tuple((m, f"{m}_low", f"{m}_high") for m in TRAIN_METRICS),
        brief=("game", "algorithm", "iterations", "B", "seeds", "exploitability", "eps_n")))
    cap = _train_caption(runs)
    for column, ylabel, logy, name, level in (
            ("exploitability", "exploitability", True, "train-exploitability", None),
            ("return_avg", "population-average return (sampled)", False, "train-return",
             "J")):
        series = train_curves(runs, column, level)
        if not series:
            section.notes.append(f"no {column} column in iterations.csv: {name} not drawn")
            continue
        plots.curves_figure(series, out / f"{name}.png", ylabel, caption=cap, logy=logy,
                            formats=formats, band_label="bands: range over seeds",
                            level_label=TRAIN_LEVEL)
        title = f"Training curves: {column} per algorithm and B (mean over seeds, band: range)"
        if level is not None and any(np.isfinite(f["level"]).any() for _, f in series):
            title += "; dash-dot-dot lines: " + TRAIN_LEVEL_NOTE
        section.figures.append(Figure(f"{name}.png", title, cap))
    against_b = batch_series(train_table(finals), "exploitability")
    if against_b:
        plots.curves_figure(against_b, out / "train-vs-B.png", "final exploitability",
                            caption=cap, formats=formats, x="B", xlabel="agents acting per "
                            "step B", logx=True, band_label="bands: 95% interval across seeds")
        section.figures.append(Figure("train-vs-B.png", "Final exploitability against B per "
                                      "algorithm (mean over seeds, band: 95% interval)", cap))
    return section


def batch_series(table: pd.DataFrame, metric: str) -> list[tuple[str, pd.DataFrame]]:
    """Per (game, algorithm, iterations, N) with runs at two or more B: ``metric`` (mean and
    its interval columns of ``train_table``) against B as a number (``all`` is N), for a
    figure."""
    series = []
    several = table["game"].nunique() > 1
    budgets = "iterations" in table and table["iterations"].nunique() > 1
    keys = ["game", "algorithm", "iterations", "N"] if "iterations" in table else \
        ["game", "algorithm", "N"]
    for key, g in table.groupby(keys, sort=False):
        game, algorithm, N = key[0], key[1], key[-1]
        B = [float(str(N)) if str(b) == "all" else float(b) for b in g["B"]]
        if len(set(B)) < 2:
            continue
        frame = pd.DataFrame({"B": B, "y": g[metric].to_numpy(dtype=float)})
        if f"{metric}_low" in g:
            frame["low"] = g[f"{metric}_low"].to_numpy(dtype=float)
            frame["high"] = g[f"{metric}_high"].to_numpy(dtype=float)
        budget = f", {key[2]} it." if budgets else ""
        series.append((f"{str(game) + ' ' if several else ''}{algorithm}{budget}, N={N}",
                       frame.sort_values("B")))
    return series


def _train_caption(runs: Sequence[Run]) -> str:
    """The specs of training runs without their seeds, algorithms and B (they are the
    series)."""
    texts = []
    for r in runs:
        spec = r.spec
        train = {k: v for k, v in (spec.get("train") or {}).items()
                 if k not in ("seed", "algorithm") and v is not None}
        N = (spec.get("population") or {}).get("agents", r.manifest.get("agents"))
        texts.append("; ".join([game_text(spec), f"N={N}", f"horizon {horizon(spec)}",
                                ", ".join(f"{k}={v}" for k, v in train.items())]))
    return " | ".join(dict.fromkeys(texts))


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def build(runs: Sequence[Run], out: Path, formats: Sequence[str] = ("png",),
          notes: Sequence[str] = ()) -> Report:
    """Tables of every kind present (a section per command, in the order of
    ``command_registry.COMMANDS``, built by its ``report.section``), figures written into
    ``out``; the claims are added by the caller (``report_claims.paper_claims``)."""
    out.mkdir(parents=True, exist_ok=True)
    labelled = label_runs(runs)
    sections = []
    for kind, command in COMMANDS.items():
        mine = [r for r in labelled if r.kind == kind]
        if mine:
            sections.append(load(command.report.section)(mine, out, formats))
    return Report(runs=labelled, sections=sections, notes=list(notes))


def markdown_table(frame: pd.DataFrame) -> str:
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _figure_md(f: Figure) -> str:
    return f"![{f.title}]({f.file})\n\n*{f.title}.* {f.caption}\n"


def markdown(report: Report, title: str = "tmf report") -> str:
    """REPORT.md: the claims (when asked), then every section's tables and figures."""
    parts = [f"# {title}\n",
             "Built by `tmf report` from the files of these result directories alone "
             "(nothing recomputed):\n",
             *[f"- `{r.path}` ({r.kind}): {r.label}" for r in report.runs], ""]
    parts += [f"> {n}\n" for n in report.notes]
    if report.claims:
        parts.append("## The paper's claims\n")
        parts.append("| claim | verdict |\n|---|---|")
        parts += [f"| {c.number}. {c.title} | **{c.verdict}**: {c.why} |" for c in report.claims]
        parts.append("")
        for c in report.claims:
            parts.append(f"### Claim {c.number}: {c.title}\n")
            parts.append(f"**Verdict: {c.verdict}.** {c.why}\n")
            for t in c.tables:
                parts += [f"{t.title}.\n", markdown_table(t.display()), ""]
            parts += [f"> {n}\n" for n in c.notes]
            parts += [_figure_md(f) for f in c.figures]
    shown = {"solve", "bound-check", "train"} if report.claims else set()
    for s in report.sections:
        if s.kind in shown:  # already under its claim
            continue
        parts.append(f"## {s.title}\n")
        for t in s.tables:
            parts += [f"{t.title}.\n", markdown_table(t.display()), ""]
        parts += [f"> {n}\n" for n in s.notes]
        parts += [_figure_md(f) for f in s.figures]
    return "\n".join(parts).rstrip() + "\n"
