"""Figures beside the tables, where a picture says more: written atomically as PNG.

matplotlib runs with the Agg backend (no display needed); figures are small and deterministic.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _save(fig: plt.Figure, path: Path) -> None:
    """Save to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part.png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, metadata={"Software": None})  # no version stamp: same bytes
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)


def bound_check_figure(cells: pd.DataFrame, fits: pd.DataFrame, path: Path) -> None:
    """e_max against N per regime (log-log, 95% intervals), its reference bound (dashed) and
    the slope -1/2 through the first point of each regime (dotted)."""
    e = cells[cells["metric"] == "e_max"]
    judged = fits[fits["metric"] == "e_max"]
    slopes = judged.set_index(judged["regime"].astype(str))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (regime, group) in enumerate(e.groupby(e["regime"].astype(str), sort=False)):
        color = f"C{i}"
        g = group.sort_values("N")
        N = g["N"].to_numpy(dtype=float)
        est = g["estimate"].to_numpy(dtype=float)
        err = np.vstack([est - g["ci_low"].to_numpy(dtype=float),
                         g["ci_high"].to_numpy(dtype=float) - est])
        fit = slopes.loc[regime]
        ax.errorbar(N, est, yerr=err, fmt="o-", color=color, capsize=3,
                    label=f"B = {regime}: slope {fit['slope']:.3f} ({fit['verdict']})")
        bound = g["bound"].to_numpy(dtype=float)
        shown = np.isfinite(bound) & (bound < 1e3 * est.max())
        if shown.any():
            ax.plot(N[shown], bound[shown], "--", color=color, alpha=0.6)
        ax.plot(N, est[0] * (N / N[0]) ** -0.5, ":", color="grey", alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("agents N")
    ax.set_ylabel("e_max = E max_t ||mu_hat_t - mu_bar_t||_1")
    ax.set_title("finite-population gap (dashed: reference bound, dotted: N^-1/2)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
