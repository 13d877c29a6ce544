"""Figures a researcher can put in a paper, drawn from the tidy tables of a result directory.

Every figure is one column wide (3.4 in), uses the Okabe-Ito colour-blind-safe palette with a
distinct line style per series, mathtext axis labels, a legend outside the axes (it never covers
data) and a caption line at the bottom recording the spec (game, parameters, N, B, horizon,
replicas, seed). Fonts are fixed (DejaVu Sans, shipped with matplotlib), the style is reset to
matplotlib's defaults whatever the user's matplotlibrc says, and the files carry no date or
version stamp, so the same tables give the same bytes (PNG, SVG and PDF).

matplotlib runs with the Agg backend (no display needed); files are written atomically.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    LogFormatterSciNotation,
    NullFormatter,
)

from tmfcli.files import FILE_MODE

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
WIDTH = 3.4  # inches: one column of a two-column paper
CLIP = 10.0  # a reference bound more than CLIP times above the data is drawn clipped (a marker
             # at the top), so that a loose bound never squashes the data into a corner
ZERO = 1e-12  # a gap below this is round-off: the regime has no fluctuation

E_MAX = r"$\mathbb{E}\,\mathrm{max}_t\|\hat\mu_t-\bar\mu_t\|_1$"
E_MEAN = r"$\mathbb{E}\,\mathrm{mean}_t\|\hat\mu_t-\bar\mu_t\|_1$"
EPS_N = r"$\varepsilon_N$ (deviation gain)"
SHORT = {"eps_n": r"$\varepsilon_N$", "e_mean": "mean", "return_gap": "return"}
LABELS = {"e_max": E_MAX, "gap_max": E_MAX, "e_mean": E_MEAN, "gap_mean": E_MEAN,
          "eps_n": EPS_N, "return_gap": r"$\mathbb{E}\,|G-J|$"}

STYLE: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 6.5,
    "xtick.labelsize": 7, "ytick.labelsize": 7,
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5,
    "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "legend.frameon": False,
    "savefig.dpi": 200,
    "svg.hashsalt": "tmf", "svg.fonttype": "path",
    "pdf.fonttype": 42,
}
METADATA: dict[str, dict[str, Any]] = {  # no software version, no date: same inputs, same bytes
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}
FORMATS = tuple(METADATA)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def style(i: int) -> dict[str, Any]:
    """Colour, line style and marker of the i-th series (distinct also in black and white)."""
    return {"color": color(i), "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


@contextmanager
def figure(rows: int = 1, height: float = 2.4) -> Iterator[tuple[Figure, list[Axes]]]:
    """A one-column figure with ``rows`` stacked panels, in the fixed style."""
    with plt.style.context("default"), matplotlib.rc_context(STYLE):
        fig, axes = plt.subplots(rows, 1, figsize=(WIDTH, height * rows), layout="constrained",
                                 squeeze=False)
        try:
            yield fig, list(axes[:, 0])
        finally:
            plt.close(fig)


_CAPTIONS: ContextVar[bool] = ContextVar("captions", default=True)


@contextmanager
def captions(shown: bool) -> Iterator[None]:
    """Figures drawn inside the block carry their caption line (``tmf report --no-caption``:
    not burnt in; REPORT.md still gives it under each figure)."""
    token = _CAPTIONS.set(shown)
    try:
        yield
    finally:
        _CAPTIONS.reset(token)


def finish(fig: Figure, axes: Sequence[Axes], caption: str, ncols: int = 2) -> None:
    """Legend above the panels (outside the data) and the caption line below them."""
    caption = caption if _CAPTIONS.get() else ""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    if handles:
        if max(len(lab) for lab in labels) > 30:  # long labels: one column fits the width
            ncols = 1
        rows = math.ceil(len(labels) / ncols)
        if rows > 2:  # taller, so that the panels keep their height under a long legend
            fig.set_figheight(fig.get_figheight() + 0.14 * (rows - 2))
        fig.legend(handles, labels, loc="outside upper center", ncols=ncols)
    if caption:
        text = textwrap.fill(caption, 80)
        lines = text.count("\n") + 1
        if lines > 3:  # taller, so that a long caption does not squeeze the panels
            fig.set_figheight(fig.get_figheight() + 0.085 * (lines - 3))
        fig.supxlabel(text, fontsize=5.5, color="0.3")


def save(fig: Figure, path: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``path`` (its suffix is replaced) in every format, atomically; return the files."""
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part.{fmt}",
                                   dir=target.parent)
        os.fchmod(fd, FILE_MODE)  # as the tables: 0666 less the umask, not mkstemp's 0600
        os.close(fd)
        try:
            with matplotlib.rc_context(STYLE):
                # the canvas grows to hold every label (a long y label was cut off)
                fig.savefig(tmp, format=fmt, metadata=METADATA[fmt], bbox_inches="tight",
                            pad_inches=0.03)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(target)
    return written


def loglog(ax: Axes, N: np.ndarray) -> None:
    """Log axes: x ticks at the measured N, written plainly; y labels on the decades only when
    the axis spans more than one (minor labels clutter a small figure)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = np.unique(np.asarray(N, dtype=float))
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.xaxis.set_major_formatter(FixedFormatter([str(int(n)) for n in ticks]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    bottom, top = ax.get_ylim()
    if top / bottom > 100:
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:  # under two decades: label some minor ticks too, or the axis may show one number
        ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False,
                                                             minor_thresholds=(2, 0.5)))


# --------------------------------------------------------------------------------------------
# gap against N: bound-check cells (and simulate summaries over N)
# --------------------------------------------------------------------------------------------
def _fit_line(N: np.ndarray, est: np.ndarray, slope: float) -> np.ndarray:
    """c N^slope with c from least squares in log space for the given slope."""
    keep = est > 0
    c = np.mean(np.log(est[keep]) - slope * np.log(N[keep]))
    return np.asarray(np.exp(c) * N ** slope)


def gap_panel(ax: Axes, cells: pd.DataFrame, fits: pd.DataFrame, metric: str) -> list[str]:
    """One metric of a bound-check against N per regime: 95% intervals, fitted slope, -1/2
    reference, the predicted c / sqrt(N) of the linear-noise approximation (when the cells
    have it) and the reference bound (clipped, with a marker, when more than ``CLIP`` times
    above the data).

    Legend entries name the regimes only (shared by the panels); the fitted slopes go to the
    returned notes (the caption), with what could not be drawn as such (a bound off scale or
    infinite).
    """
    e = cells[cells["metric"] == metric]
    f = fits[fits["metric"] == metric]
    f = f.set_index(f["regime"].astype(str))
    notes: list[str] = []
    if e.empty:
        return notes
    live = e[e["estimate"] > ZERO]
    if live.empty:
        ax.text(0.5, 0.5, f"{metric} = 0 at every N (nothing to fit)", transform=ax.transAxes,
                ha="center")
        return [f"{metric} is 0 in every cell"]
    high = float(np.nanmax(live["ci_high"].to_numpy(dtype=float)))
    low = float(np.nanmin(live["ci_low"].to_numpy(dtype=float)))
    floor = max(low, 1e-3 * high) if low > 0 else 1e-3 * high
    top = high * 2.5
    ref_anchor: tuple[float, float] | None = None
    clipped_at: list[tuple[np.ndarray, str]] = []  # drawn once the top of the axis is known
    slopes: list[str] = []
    predicted_drawn = False
    for i, (regime, group) in enumerate(e.groupby(e["regime"].astype(str), sort=False)):
        s = style(i)
        g = group.sort_values("N")
        N = g["N"].to_numpy(dtype=float)
        est = g["estimate"].to_numpy(dtype=float)
        err = np.vstack([est - g["ci_low"].to_numpy(dtype=float),
                         g["ci_high"].to_numpy(dtype=float) - est])
        fitted = f.loc[regime, ["slope", "ci_low", "ci_high"]].to_numpy(dtype=float) \
            if regime in f.index else np.full(3, np.nan)
        slope, lo, hi = (float(v) for v in fitted)
        if (est <= ZERO).all():
            why = "no fluctuation" if (np.abs(est) <= ZERO).all() else "nothing on a log axis"
            notes.append(f"B = {regime}: {metric} below {ZERO:g} at every N ({why}), not drawn")
            continue
        slopes.append(f"B={regime} {slope:.2f} [{lo:.2f}, {hi:.2f}]" if math.isfinite(slope)
                      else f"B={regime} not fitted")
        ax.errorbar(N, est, yerr=err, fmt=s["marker"], color=s["color"], capsize=2,
                    markersize=3.5, linestyle="none", label=f"B={regime}")
        if math.isfinite(slope) and (est > ZERO).all():
            ax.plot(N, _fit_line(N, est, slope), color=s["color"], linewidth=0.9)
        if ref_anchor is None and est[0] > ZERO:
            ref_anchor = (N[0], est[0])
        if "predicted" in g:
            pred = g["predicted"].to_numpy(dtype=float)
            ok = np.isfinite(pred) & (pred > 0)
            if ok.any():
                ax.plot(N[ok], pred[ok], color=s["color"], linestyle="-.", linewidth=0.9,
                        alpha=0.85)
                predicted_drawn = True
                top = max(top, float(pred[ok].max()) * 1.5)
        if "bound" not in g:
            continue
        bound = g["bound"].to_numpy(dtype=float)
        finite = np.isfinite(bound)
        shown = finite & (bound <= CLIP * high)
        clipped = finite & ~shown
        if shown.any():
            ax.plot(N[shown], bound[shown], linestyle=(0, (4, 2)), color=s["color"],
                    linewidth=0.8, alpha=0.7)
            top = max(top, float(bound[shown].max()) * 1.3)
        if clipped.any():
            ratio = float(np.max(bound[clipped] / np.maximum(est[clipped], 1e-300)))
            notes.append(f"B = {regime}: reference bound off scale (up to {ratio:.1e} x the "
                         "data), marked at the top")
            clipped_at.append((N[clipped], s["color"]))
        if np.isinf(bound).any():
            notes.append(f"B = {regime}: reference bound infinite (says nothing) at "
                         f"N = {', '.join(str(int(n)) for n in N[np.isinf(bound)])}")
    if clipped_at:  # room for the markers above everything drawn
        top *= 1.25 ** len(clipped_at) * 1.2
    ax.set_ylim(floor / 2.0, top)
    top = ax.get_ylim()[1]
    for k, (Ns, col) in enumerate(clipped_at):  # stacked, so that no marker hides another
        ax.plot(Ns, np.full(len(Ns), top / 1.15 / 1.25 ** k), marker="^", linestyle="none",
                color=col, markersize=3.5)
    if ref_anchor is not None:
        Nall = np.unique(e["N"].to_numpy(dtype=float))
        ax.plot(Nall, ref_anchor[1] * (Nall / ref_anchor[0]) ** -0.5, color="0.45",
                linestyle=":", linewidth=1.0, label=r"$N^{-1/2}$")
    ax.plot([], [], color="0.3", linewidth=0.9, label="fit")
    if predicted_drawn:
        ax.plot([], [], color="0.3", linestyle="-.", linewidth=0.9, label="predicted")
    ax.plot([], [], linestyle=(0, (4, 2)), color="0.3", linewidth=0.8, label="bound")
    if clipped_at:
        ax.plot([], [], marker="^", linestyle="none", color="0.3", label="bound off scale")
    loglog(ax, e["N"].to_numpy())
    ax.set_xlabel("agents $N$")
    ax.set_ylabel(LABELS.get(metric, metric))
    if slopes:
        name = {"eps_n": "eps_N", "e_mean": "e_mean"}.get(metric, metric)
        notes.insert(0, f"slopes {name} [95% CI]: " + ", ".join(slopes))
    return notes


def bound_check_figure(cells: pd.DataFrame, fits: pd.DataFrame, path: Path, caption: str = "",
                       formats: Sequence[str] = ("png",)) -> list[str]:
    """e_max (and eps_N when measured) against N per regime; returns the notes of the panels.

    A reference bound more than ``CLIP`` times above the largest interval is drawn as a marker
    at the top of the panel and named in the notes, never dropped silently.
    """
    metrics = ["e_max"] + (["eps_n"] if (cells["metric"] == "eps_n").any() else [])
    with figure(rows=len(metrics), height=2.5) as (fig, axes):
        notes = []
        for ax, metric in zip(axes, metrics, strict=True):
            notes += gap_panel(ax, cells, fits, metric)
        if "predicted" in cells:
            notes.append("predicted: c_max / sqrt(N), linear-noise approximation")
        full = "; ".join(n for n in [caption, *notes] if n)
        finish(fig, axes, full, ncols=4)
        save(fig, path, formats)
    return notes


def gap_over_runs_figure(summary: pd.DataFrame, path: Path, caption: str = "",
                         formats: Sequence[str] = ("png",)) -> None:
    """Simulated gaps of several runs against N (log-log, 95% intervals, fitted slope).

    ``summary`` has columns group, N, metric, mean, ci_low, ci_high (one row per run and
    metric); one series per (group, metric).
    """
    with figure() as (fig, axes):
        ax = axes[0]
        i = 0
        for (group, metric), g in summary.groupby(["group", "metric"], sort=False):
            g = g.sort_values("N")
            N = g["N"].to_numpy(dtype=float)
            m = g["mean"].to_numpy(dtype=float)
            if not (m > 0).all():
                continue
            err = np.vstack([m - g["ci_low"].to_numpy(dtype=float),
                             g["ci_high"].to_numpy(dtype=float) - m])
            s = style(i)
            slope = float(np.polyfit(np.log(N), np.log(m), 1)[0]) if len(set(N)) > 1 \
                else float("nan")
            name = "gap" if metric == "gap_max" else r"$\varepsilon_N$"
            ax.errorbar(N, m, yerr=np.abs(err), fmt=s["marker"], color=s["color"], capsize=2,
                        linestyle="none", label=f"{group} {name}: slope {slope:.2f}")
            if math.isfinite(slope):
                ax.plot(N, _fit_line(N, m, slope), color=s["color"], linestyle=s["linestyle"],
                        linewidth=1.0)
            i += 1
        Nall = np.unique(summary["N"].to_numpy(dtype=float))
        first = summary.sort_values("N").iloc[0]
        if first["mean"] > 0:
            ax.plot(Nall, first["mean"] * (Nall / Nall[0]) ** -0.5, color="0.45",
                    linestyle=":", label=r"$N^{-1/2}$ reference")
        loglog(ax, summary["N"].to_numpy())
        ax.set_xlabel("agents $N$")
        ax.set_ylabel(E_MAX + r", $\varepsilon_N$")
        finish(fig, axes, caption)
        save(fig, path, formats)


# --------------------------------------------------------------------------------------------
# curves over iterations
# --------------------------------------------------------------------------------------------
LEVEL_STYLE = (0, (5, 1.5, 1, 1.5, 1, 1.5))  # dash-dot-dot, thin: a reference value across a
# panel (no series uses it: ``LINESTYLES``)


def curves_figure(series: list[tuple[str, pd.DataFrame]], path: Path, ylabel: str,
                  caption: str = "", logy: bool = True, formats: Sequence[str] = ("png",),
                  band_label: str = "", x: str = "iteration", xlabel: str = "iteration",
                  logx: bool = False, level_label: str = "") -> None:
    """One line per series against column ``x`` (iteration, or e.g. B); ``frame`` has columns
    x, y and optionally low, high (a band) and ``level``, a value the curve is read against
    (e.g. the mean-field value J): a thin dash-dot-dot horizontal line in the series' colour,
    named once in the legend by ``level_label``. Non-positive values are left out of a log axis
    (marked in the caption). Against anything but iteration the points are marked.
    """
    with figure() as (fig, axes):
        ax = axes[0]
        dropped = levels = False
        for i, (label, frame) in enumerate(series):
            s = style(i)
            xs = frame[x].to_numpy(dtype=float)
            y = frame["y"].to_numpy(dtype=float)
            if logy:
                dropped |= bool((y <= 0).any())
                y = np.where(y > 0, y, np.nan)
            ax.plot(xs, y, color=s["color"], linestyle=s["linestyle"], label=label,
                    marker=None if x == "iteration" else s["marker"])
            if "low" in frame and "high" in frame:
                lo = frame["low"].to_numpy(dtype=float)
                hi = frame["high"].to_numpy(dtype=float)
                if logy:
                    lo = np.where(lo > 0, lo, np.nan)
                ax.fill_between(xs, lo, hi, color=s["color"], alpha=0.2, linewidth=0)
            level = float(frame["level"].iloc[0]) if "level" in frame and len(frame) else np.nan
            if np.isfinite(level) and not (logy and level <= 0):
                ax.axhline(level, color=s["color"], linestyle=LEVEL_STYLE, linewidth=0.7,
                           label="_level")
                levels = True
        if levels and level_label:  # one legend entry for every series' line
            ax.plot([], [], color="0.35", linestyle=LEVEL_STYLE, linewidth=0.7,
                    label=level_label)
        if logy:
            ax.set_yscale("log")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        notes = [caption]
        if band_label:
            notes.append(band_label)
        if dropped:
            notes.append("values <= 0 not drawn on the log axis")
        finish(fig, axes, "; ".join(n for n in notes if n))
        save(fig, path, formats)


# --------------------------------------------------------------------------------------------
# flows over time
# --------------------------------------------------------------------------------------------
def flow_figure(mu: np.ndarray, labels: Sequence[str], path: Path, caption: str = "",
                bands: tuple[np.ndarray, np.ndarray] | None = None,
                formats: Sequence[str] = ("png",), band_label: str = "",
                predicted: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """The mean-field flow mu (T+1, O) per observation against t; optional N-agent bands
    (low, high), each (T+1, O), shaded around it, and optional predicted bands (low, high)
    drawn as thin dashed lines of the same colour."""
    T1, O = mu.shape
    t = np.arange(T1)
    with figure() as (fig, axes):
        ax = axes[0]
        for o in range(O):
            s = style(o)
            ax.plot(t, mu[:, o], color=s["color"], linestyle=s["linestyle"], label=labels[o],
                    marker=s["marker"] if T1 <= 25 else None, markersize=2.5)
            if bands is not None:
                ax.fill_between(t, bands[0][:, o], bands[1][:, o], color=s["color"], alpha=0.25,
                                linewidth=0)
            if predicted is not None:
                for edge in predicted:
                    ax.plot(t, edge[:, o], color=s["color"], linestyle=(0, (3, 1.5)),
                            linewidth=0.7)
        ax.set_xlabel("step $t$")
        ax.set_ylabel(r"$\bar\mu_t(o)$" if bands is None else
                      r"$\bar\mu_t(o)$ (lines), $\hat\mu_t(o)$ (bands)")
        ax.set_ylim(-0.02, 1.02)
        finish(fig, axes, "; ".join(n for n in (caption, band_label) if n),
               ncols=min(4, max(1, O)))
        save(fig, path, formats)
