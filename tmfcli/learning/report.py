"""The table of ``make train-experiments``: final exploitability and population-average return
(both x B / N, per round, for runs with ``train.per_round``), per (game, algorithm, B): mean and
across-seed standard deviation, read from result directories.

    python -m tmfcli.learning.report results/train-resource results/train-queue
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def collect(roots: list[Path]) -> pd.DataFrame:
    """One row per run: game, algorithm, B, seed and the final metrics of summary.csv."""
    rows = []
    for root in roots:
        for run in sorted(root.glob("*/summary.csv")):
            history = pd.read_csv(run.parent / "iterations.csv")
            summary = pd.read_csv(run).set_index("metric")["mean"]
            last = history.iloc[-1]
            scaled = "exploitability_per_round" in summary.index  # train.per_round: x B / N
            per_round = summary.get("exploitability_per_round", summary["exploitability"])
            alpha = int(last["batch"]) / int(last["agents"]) if scaled else 1.0
            rows.append({"game": root.name.removeprefix("train-"), "algorithm": last["algorithm"],
                         "B": int(last["batch"]), "seed": int(last["seed"]),
                         "exploitability_per_round": float(per_round),
                         "return_per_round": alpha * float(summary["return_avg"]),
                         "time_s": float(last["elapsed_s"])})
    return pd.DataFrame(rows)


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and across-seed sd per (game, algorithm, B)."""
    grouped = runs.groupby(["game", "algorithm", "B"])
    out = grouped.agg(seeds=("seed", "count"),
                      expl_mean=("exploitability_per_round", "mean"),
                      expl_sd=("exploitability_per_round", "std"),
                      return_mean=("return_per_round", "mean"),
                      return_sd=("return_per_round", "std"),
                      time_s=("time_s", "mean"))
    return out.reset_index()


def main(argv: list[str]) -> None:
    runs = collect([Path(a) for a in argv])
    if runs.empty:
        print("no results found")
        return
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(table(runs).to_string(index=False))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
