"""The paper's three claims, each with a verdict computed from the numbers of a report.

1. **A unique equilibrium for any B** (solve runs, typically one per alpha, each with random
   restarts). Pass when every run has restarts and the largest flow spread (max_t L1 distance
   between the flows reached from different starts) is at most ``SPREAD_TOL``; fail when one
   exceeds it; not measurable without solve runs with restarts. The monotonicity probe and
   whether the dynamics depend on mu (Lasry-Lions needs them not to) are stated beside it.
2. **O(1/sqrt N) gap whatever B** (bound-check runs, in rounds and in steps). Every regime's
   e_max verdict is recomputed from ``fits.csv`` with ``tmfcli.analysis.bound.verdict``; a
   regime whose gap is below 1e-12 at every N has no fluctuation and is not measurable. Pass
   when every measurable regime passes. Beside it, the measured against the predicted constant
   (linear-noise approximation, MODEL.md section 10) per regime at its largest N, with the
   verdict on the constant (``tmfcli.analysis.fluctuations.constant_verdict``), reported,
   not judged (sweeps written before the prediction existed have none). eps_N is reported,
   not judged: at the largest N of each regime where the sweep's one policy is the regime's
   equilibrium (eps_mf <= 1e-6); elsewhere it follows eps_mf (docs/bound-check.md).
3. **TMF-PG performs about the same for B = 1 and B = N** (train runs). "Near-identical" is
   fixed before any run, per game, on tmf-pg's final exploitability (mean over seeds, 95%
   interval across seeds):
   (a) *the same at B = 1 and B = N*: the two 95% intervals overlap, or the means differ by at
       most ``SAME_TOL`` (the tolerance the training tests use against the exact yardstick;
       it also covers one seed, which has no interval); and
   (b) *it learns at every B*: the mean is at most ``REACH`` times the exploitability of the
       uniform policy at the same B, where every learner starts (``exploitability_uniform``),
       at B = 1 and at B = N: a run that stays near its start is not evidence of convergence.
   Pass when (a) and (b) hold in every game; tmf-pg-exact, mf-q and independent-pg are
   reported, not judged, each budget (outer iterations) on its own (``make paper`` adds
   tmf-pg-exact run to 1000 iterations at B = 1 and N: where the method converges in its class,
   as a share of the uniform policy's exploitability).
   Not measurable without tmf-pg runs at B = 1 and B = N. In a timed game (MODEL.md section 9)
   the exploitability over H rounds is the same quantity at every B, so it compares as it is.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from tmfcli.analysis.bound import verdict
from tmfcli.analysis.fluctuations import TOLERANCE, constant_verdict
from tmfcli.analysis.report import (
    Claim,
    Figure,
    Report,
    Run,
    Table,
    train_finals,
    train_table,
)

SPREAD_TOL = 1e-3  # claim 1: largest L1 flow distance between equilibria from random starts
SAME_TOL = 0.02    # claim 3: |exploitability(B=1) - exploitability(B=N)|, mean over seeds
REACH = 0.1        # claim 3: final exploitability <= REACH x the uniform policy's, at every B
ZERO = 1e-12       # claim 2: a gap below this at every N is round-off, not a fluctuation
EQUILIBRIUM = 1e-6  # claim 2: eps_mf below this: the sweep's policy is the regime's equilibrium


def _inputs(report: Report, kind: str) -> tuple[list[Run], tuple[Table, ...],
                                                 tuple[Figure, ...]]:
    """The runs of one kind, and the tables and figures of their section."""
    sections = [s for s in report.sections if s.kind == kind]
    return ([r for r in report.runs if r.kind == kind],
            tuple(t for s in sections for t in s.tables),
            tuple(f for s in sections for f in s.figures))


def claim_unique(report: Report) -> Claim:
    title = "a unique equilibrium for any B"
    runs, tables, figures = _inputs(report, "solve")
    if not runs:
        return Claim(1, title, "not measurable", "no tmf solve results given")
    u = [r.manifest.get("uniqueness") or {} for r in runs]
    without = [r.label for r, e in zip(runs, u, strict=True) if not e.get("restarts")]
    if without:
        return Claim(1, title, "not measurable", "no random restarts in " + ", ".join(without),
                     tables, figures)
    spreads = np.array([float(e.get("flow_spread", np.nan)) for e in u])
    worst = int(np.nanargmax(spreads)) if np.isfinite(spreads).any() else 0
    converged = sum(int(e.get("restarts_converged", 0)) for e in u)
    restarts = sum(int(e.get("restarts", 0)) for e in u)
    violations = sum(int(e.get("monotonicity_violations", 0)) for e in u)
    samples = sum(int(e.get("monotonicity_samples", 0)) for e in u)
    moving = sorted({r.label for r, e in zip(runs, u, strict=True)
                     if e.get("dynamics_depend_on_mu") == "yes"})
    evidence = (f"largest flow spread {spreads[worst]:.2g} ({runs[worst].label}) over "
                f"{len(runs)} settings, {converged}/{restarts} restarts at tolerance; "
                f"monotonicity probe: {violations}/{samples} sampled pairs violate it")
    if moving:
        evidence += "; dynamics depend on mu in " + ", ".join(moving) + \
            " (Lasry-Lions does not apply there: the spread is the evidence)"
    if not np.isfinite(spreads).all():
        return Claim(1, title, "not measurable", "a run has no flow spread: " + evidence,
                     tables, figures)
    settled = np.array([bool(r.manifest.get("converged")) and
                        int(e.get("restarts_converged", 0)) == int(e.get("restarts", 0))
                        for r, e in zip(runs, u, strict=True)])
    wide = spreads > SPREAD_TOL
    if (wide & settled).any():
        return Claim(1, title, "fail", f"equilibria at tolerance differ by more than "
                     f"{SPREAD_TOL:g}: " + evidence, tables, figures)
    if wide.any():
        unsettled = ", ".join(r.label for r, w in zip(runs, wide, strict=True) if w)
        return Claim(1, title, "not measurable", f"spread above {SPREAD_TOL:g} only where the "
                     f"solver did not reach its tolerance ({unsettled}): " + evidence,
                     tables, figures)
    return Claim(1, title, "pass", f"every spread <= {SPREAD_TOL:g}: " + evidence, tables,
                 figures)


def _live(run: Run, regime: str, metric: str) -> bool:
    cells = run.tables["cells.csv"]
    mine = cells[(cells["regime"].astype(str) == regime) & (cells["metric"] == metric)]
    return bool((mine["estimate"].to_numpy(dtype=float) > ZERO).any())


def claim_gap(report: Report) -> Claim:
    title = "an O(1/sqrt N) gap whatever B"
    runs, tables, figures = _inputs(report, "bound-check")
    if not runs:
        return Claim(2, title, "not measurable", "no tmf bound-check results given")
    passed: list[str] = []
    failed: list[str] = []
    dead: list[str] = []
    eps: list[str] = []
    slopes: list[float] = []  # e_max slopes of the measurable regimes
    for r in runs:
        fits = r.tables["fits.csv"]
        for f in fits.to_dict("records"):
            regime = str(f["regime"])
            name = f"{r.label} B={regime}"
            if f["metric"] == "eps_n":
                eps.append(_epsilon(r, regime, name))
                continue
            if f["metric"] != "e_max":
                continue
            if not _live(r, regime, "e_max"):
                dead.append(name)
                continue
            slopes.append(float(f["slope"]))
            allowance = float(f["allowance"]) if _finite(f.get("allowance")) else 0.0
            judged = verdict(float(f["ci_low"]), float(f["ci_high"]),
                             float(f["worst_ratio"]), allowance)
            (passed if judged.startswith("pass") else failed).append(f"{name} ({judged})")
    parts = [f"{len(passed)} regimes pass"]
    if failed:
        parts.append("fail: " + "; ".join(failed))
    if dead:
        parts.append("no fluctuation (gap 0, not measurable): " + ", ".join(dead))
    if slopes:
        parts.append(f"e_max slopes {min(slopes):.2f} .. {max(slopes):.2f}")
    at_equilibrium = [e for e in eps if not e.startswith("-")]
    if not eps:
        parts.append("eps_N not measured by these sweeps")
    else:
        parts.append("eps_N at the largest N where the sweep's policy is the regime's "
                     "equilibrium (eps_mf <= 1e-6): " + (", ".join(at_equilibrium) or "none"))
        others = len(eps) - len(at_equilibrium)
        if others:
            parts.append(f"{others} regimes where it is not (eps_mf > 0): eps_N follows eps_mf "
                         "there, reported in the table, not judged (docs/bound-check.md)")
    constants = constant_rows(runs)
    if not constants.empty:
        n_pass = int((constants["constant verdict"] == "pass").sum())
        n_judged = int((constants["constant verdict"] != "n/a").sum())
        parts.append(f"predicted constant (linear-noise approximation) within "
                     f"{TOLERANCE:.0%} of the measured one at the largest N in {n_pass} of "
                     f"{n_judged} regimes (reported, not judged): " + ", ".join(
                         f"{r['run']} B={r['regime']} {r['ratio']:.3g}"
                         for r in constants.to_dict("records") if r["ratio"] == r["ratio"]))
        tables = (*tables, Table(
            "claim-2-constants", "Measured against predicted constant sqrt(N) e_max at the "
            "largest N (c_max: linear-noise approximation, MODEL.md section 10; 95% intervals)",
            constants, (("measured", "measured_low", "measured_high"),
                        ("ratio", "ratio_low", "ratio_high")),
            brief=("run", "regime", "N", "predicted", "measured", "ratio",
                   "constant verdict")))
    why = "; ".join(parts)
    if not passed and not failed:
        return Claim(2, title, "not measurable", why, tables, figures)
    return Claim(2, title, "fail" if failed else "pass", why, tables, figures)


def constant_rows(runs: list[Run]) -> pd.DataFrame:
    """Per run and regime at its largest N: the predicted c_max, the measured sqrt(N) e_max
    with its interval, their ratio with its interval and the verdict on the constant."""
    rows = []
    for r in runs:
        cells = r.tables["cells.csv"]
        if "predicted" not in cells:
            continue
        e = cells[cells["metric"] == "e_max"]
        for regime, group in e.groupby(e["regime"].astype(str), sort=False):
            last = group.sort_values("N").iloc[-1]
            root = math.sqrt(float(last["N"]))
            low, high = float(last["ratio_low"]), float(last["ratio_high"])
            rows.append({"run": r.label, "regime": regime, "N": int(last["N"]),
                         "steps": int(last["steps"]),
                         "predicted": float(last["predicted"]) * root,
                         "measured": float(last["estimate"]) * root,
                         "measured_low": float(last["ci_low"]) * root,
                         "measured_high": float(last["ci_high"]) * root,
                         "ratio": float(last["ratio"]), "ratio_low": low,
                         "ratio_high": high, "constant verdict": constant_verdict(low, high)})
    return pd.DataFrame(rows)


def _epsilon(run: Run, regime: str, name: str) -> str:
    """eps_N with its interval at the largest N of a regime where the sweep's one policy is the
    regime's mean-field equilibrium (eps_mf <= EQUILIBRIUM at every N); "-" otherwise.

    Only there does the theory's O(1/sqrt N) apply: elsewhere eps_N tracks the policy's own
    mean-field exploitability eps_mf, which grows with the number of steps in rounds.
    """
    cells = run.tables["cells.csv"]
    mine = cells[cells["regime"].astype(str) == regime]
    mf = mine[mine["metric"] == "eps_mf"]["estimate"].to_numpy(dtype=float)
    if mf.size and not (np.abs(mf) <= EQUILIBRIUM).all():
        return "-"
    eps = mine[mine["metric"] == "eps_n"].sort_values("N")
    if eps.empty:
        return "-"
    last = eps.iloc[-1]
    return (f"{name}: {float(last['estimate']):.2g} [{float(last['ci_low']):.2g}, "
            f"{float(last['ci_high']):.2g}] at N = {int(last['N'])}")


def _finite(x: object) -> bool:
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _is_all(B: str, N: str) -> bool:
    return B == "all" or B == N


def claim_batch(report: Report) -> Claim:
    title = "TMF-PG about the same for B = 1 and B = N; mf-q and independent-pg beside it"
    runs, tables, figures = _inputs(report, "train")
    if not runs:
        return Claim(3, title, "not measurable", "no tmf train results given (claim 3 needs "
                     "tmf train)")
    finals = train_finals(runs)
    verdicts, parts = [], []
    for game, g in finals.groupby("game", sort=False):
        table = train_table(g)
        pg = table[table["algorithm"] == "tmf-pg"]
        one = pg[pg["B"].astype(str) == "1"]
        full = pg[[_is_all(str(b), str(n)) for b, n in zip(pg["B"], pg["N"], strict=True)]]
        if one.empty or full.empty:
            parts.append(f"{game}: tmf-pg lacks B=1 or B=N runs")
            continue
        a, b = (float(x["exploitability"].iloc[0]) for x in (one, full))
        lows = [float(x["exploitability_low"].iloc[0]) if "exploitability_low" in x else a
                for x in (one, full)]
        highs = [float(x["exploitability_high"].iloc[0]) if "exploitability_high" in x else b
                 for x in (one, full)]
        overlap = all(math.isfinite(v) for v in (*lows, *highs)) and max(lows) <= min(highs)
        same = overlap or abs(a - b) <= SAME_TOL
        uniform = [float(x["exploitability_uniform"].iloc[0]) if "exploitability_uniform" in x
                   else math.nan for x in (one, full)]
        share = [v / u if u > 0 else math.nan for v, u in zip((a, b), uniform, strict=True)]
        learns = all(math.isfinite(f) and f <= REACH for f in share)
        verdicts.append(same and learns)
        budgets = "iterations" in table and table["iterations"].nunique() > 1
        others = [f"{row['algorithm']}" + (f" ({row['iterations']} it.)" if budgets else "")
                  + f" B={row['B']}: {row['exploitability']:.3g}" +
                  (f" ({row['exploitability'] / row['exploitability_uniform']:.2g} of uniform)"
                   if budgets and row.get("exploitability_uniform", 0) > 0 else "")
                  for row in table.to_dict("records") if row["algorithm"] != "tmf-pg"]
        reach = (f"{share[0]:.2g} and {share[1]:.2g} of the uniform policy's ({uniform[0]:.3g}, "
                 f"{uniform[1]:.3g}): {'both <=' if learns else 'not both <='} {REACH:g}") \
            if all(math.isfinite(f) for f in share) else \
            "no exploitability_uniform in the summaries (rerun tmf train)"
        shown = [f"{m:.3g}" + (f" [{lo:.3g}, {hi:.3g}]" if math.isfinite(lo + hi) else "")
                 for m, lo, hi in zip((a, b), lows, highs, strict=True)]
        intervals = "intervals overlap" if overlap else "intervals apart" if \
            all(math.isfinite(v) for v in (*lows, *highs)) else "no interval with one seed"
        parts.append(f"{game}: tmf-pg exploitability {shown[0]} (B=1) vs {shown[1]} (B=N): "
                     f"{'same' if same else 'different'} ({intervals}, difference "
                     f"{abs(a - b):.3g} {'<=' if abs(a - b) <= SAME_TOL else '>'} "
                     f"{SAME_TOL:g}); {reach}" + ("; " + ", ".join(others) if others else ""))
    why = "; ".join(parts)
    if not verdicts:
        return Claim(3, title, "not measurable", why, tables, figures)
    return Claim(3, title, "pass" if all(verdicts) else "fail", why, tables, figures)


def paper_claims(report: Report) -> list[Claim]:
    """The three claims, each carrying the notes of the section it is measured from."""
    claims = []
    for claim, kind in ((claim_unique(report), "solve"), (claim_gap(report), "bound-check"),
                        (claim_batch(report), "train")):
        notes = tuple(n for s in report.sections if s.kind == kind for n in s.notes)
        claims.append(dataclasses.replace(claim, notes=notes))
    return claims

